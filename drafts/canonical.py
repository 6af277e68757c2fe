"""Deep freezing and the canonical form of JSON-like values, in one walk.

One walk over a value both checks it, builds its frozen (pyrsistent) form and
builds the plain form whose canonical bytes name it. The canonical form is
owned by draftlens (the README's "Ids and the canonical form" states every
rule; ``tests/golden/canonical.json`` pins a few hundred values and ids):

- ``null``, ``true``, ``false``; integers in decimal (64-bit range only);
- floats by ``format_float``: the shortest digits that read back to the same
  float, positional for decimal exponents -5..15 (``0.00001``, ``1.0``,
  ``1000000000000000.0``), otherwise ``d.ddde+N`` / ``d.ddde-N`` (``1e+16``,
  ``1e-6``); ``-0.0`` keeps its sign. A float never looks like an int;
- strings in UTF-8, escaping only ``"``, ``\\``, and U+0000..U+001F
  (``\\b \\t \\n \\f \\r`` short, the rest ``\\u00xx``, lowercase hex);
- objects with keys sorted by code point, no spaces anywhere;
- a nested draft is ``{"$draft": id}``; a user key that starts with ``$``
  gets one more ``$`` (``draft_from_json`` strips it again).

``encode_reference`` is that definition written out in plain Python; the
fast path (``canonical_bytes``) is orjson with every float pre-formatted by
``format_float`` (an ``orjson.Fragment``), and a property test holds the two
equal. So no orjson release can change an id: orjson writes floats
differently across releases (``1e16`` up to 3.11.6, ``1e+16`` later), and
here it never writes one. Nothing depends on ``hash()`` or on ``PMap`` order.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import orjson
from pyrsistent import PMap, PVector, pmap, pvector
from pyrsistent._pmap import PMap as _PMapType

from .errors import DraftError

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_DEPTH",
    "canonical_bytes",
    "encode_reference",
    "format_float",
    "freeze_with_canon",
    "frozen_scalar_map",
    "path_of",
    "thaw_canon",
]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
DRAFT_MARK = "$draft"

MAX_DEPTH = 100
"""Deepest a draft's JSON document (``to_json``) may nest, nested drafts embedded.

Each list or object is one level; a draft document is one level around its
payload and meta, and a nested draft adds its ``{"$draft": ...}`` wrapper and
its own document. Every operation (ids, ``to_json``, ``draft_from_json``,
pickling, the journal) works up to this depth, far inside orjson's limit of
255 levels and Python's recursion limit; ``make_draft`` refuses anything
deeper with a DraftError naming the path where the limit is crossed.
"""

if sys.float_repr_style != "short":  # pragma: no cover - every supported CPython build
    raise ImportError("draftlens needs a Python whose float repr is the shortest round-trip form")

_Fragment = orjson.Fragment


def format_float(value: float) -> str:
    """The canonical text of a finite float (see the module docstring for the rule).

    >>> [format_float(x) for x in (1.0, 0.1, 1e16, 1e15, 1e-5, 1e-6, -0.0, 1.5e300)]
    ['1.0', '0.1', '1e+16', '1000000000000000.0', '0.00001', '1e-6', '-0.0', '1.5e+300']
    """
    text = repr(value)
    if "e" not in text:
        # repr is positional for 1e-4 <= |x| < 1e16 (and zeros), in exactly this format
        return text
    return _reformat(value)


def _reformat(value: float) -> str:
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    # repr gives the shortest round-trip digits (float_repr_style "short");
    # only its layout is reworked here, so the digits never depend on a library.
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)  # value = 0.digits * 10**point
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    e = point - 1
    if -5 <= e <= 15:
        if point > 0:
            return f"{sign}{digits[:point]}{'0' * (point - len(digits))}.{digits[point:] or '0'}"
        return f"{sign}0.{'0' * -point}{digits}"
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{head}e{'+' if e > 0 else '-'}{-e if e < 0 else e}"


def _canon_float(value: float) -> Any:
    return _Fragment(format_float(value))

_pmap_new = pmap
_pvector = pvector
_PVEC = type(pvector())
_EMPTY_PMAP = pmap()


class _Bad(Exception):
    """Internal: carries a reason up the walk; each level adds its key."""

    def __init__(self, reason: str):
        self.reason = reason
        self.keys: list[Any] = []


def path_of(root: str, keys: list[Any]) -> str:
    return root + "".join(f"[{k!r}]" for k in reversed(keys))


def freeze_with_canon(value: Any, root: str, draft_type: type, room: int = MAX_DEPTH - 1) -> tuple[Any, Any]:
    """Return ``(frozen, canon)`` for a JSON-like value, or raise DraftError.

    ``canon`` is the plain data ``canonical_bytes`` encodes: floats are
    pre-formatted (``orjson.Fragment``, so it is not picklable), and where the
    input already is canonical plain data it is returned as is (no copy).
    ``room`` is how many levels of nesting the value may still use (a payload
    sits one level inside its draft's document; see ``MAX_DEPTH``).
    """
    try:
        return _walk(value, draft_type, room)
    except _Bad as bad:
        raise DraftError(bad.reason, path_of(root, bad.keys)) from None
    except RecursionError:
        raise DraftError(f"value is nested too deeply (limit: MAX_DEPTH = {MAX_DEPTH} levels)", root) from None


def _too_deep() -> _Bad:
    return _Bad(
        f"nesting here goes deeper than MAX_DEPTH = {MAX_DEPTH} levels of the draft's JSON document "
        "(nested drafts count with their whole document); flatten the value or refer to it by id"
    )


def _walk(value: Any, draft_type: type, room: int) -> tuple[Any, Any]:
    t = type(value)
    if t is str or value is None or t is bool:
        return value, value
    if t is int:
        if INT_MIN <= value <= INT_MAX:
            return value, value
        raise _Bad(f"integer {value} does not fit in 64 bits (store it as a string)")
    if t is float:
        if math.isfinite(value):
            return value, _Fragment(format_float(value))
        raise _Bad(f"{value!r} is not allowed (use None for a missing value)")
    if t is dict or t is _PMapType:
        return _walk_map(value, draft_type, room)
    if t is list or t is tuple or t is _PVEC or isinstance(value, PVector):
        return _walk_seq(value, draft_type, room)
    if t is draft_type:
        if value._document_depth() + 1 > room:
            raise _too_deep()
        return value, {DRAFT_MARK: value.id}
    # Subclasses of the JSON types (IntEnum, str subclasses, OrderedDict ...)
    # become the plain type, so their class never leaks into the id.
    if isinstance(value, bool):
        return _walk(bool(value), draft_type, room)
    if isinstance(value, int):
        return _walk(int(value), draft_type, room)
    if isinstance(value, float):
        return _walk(float(value), draft_type, room)
    if isinstance(value, str):
        return _walk(str(value), draft_type, room)
    if isinstance(value, Mapping):
        return _walk_map(value, draft_type, room)
    if isinstance(value, (bytes, bytearray, set, frozenset)):
        raise _Bad(f"{t.__name__} is not JSON-like (use a str or a list)")
    raise _Bad(f"{t.__name__} is not JSON-like (allowed: None, bool, int, float, str, list, dict, Draft)")


# Maps of up to this many entries are stored in one bucket: a lookup scans at
# most this many pairs, and a small draft costs a third of the memory.
SMALL_MAP = 8


_object_new = object.__new__
_set_size = _PMapType._size.__set__
_set_buckets = _PMapType._buckets.__set__


class _OneBucket(tuple):
    """The bucket vector of a small PMap: one bucket, held in a 1-tuple.

    PMap reads its buckets only by ``len``, index and iteration, and asks
    them for an ``evolver()`` before any change; handing it a real pvector
    evolver there keeps every PMap operation intact while a small map costs
    a 48-byte tuple instead of a ~330-byte pvector. The bucket itself is a
    tuple of ``(key, value)`` pairs, not a list: pyrsistent never changes a
    bucket in place (its evolver writes new lists), and a tuple of atomic
    pairs is one object the cyclic GC stops tracking, where a list is
    walked by every collection for as long as the map lives.
    """

    __slots__ = ()

    def evolver(self):
        return _pvector(self).evolver()


def _pmap_from_pairs(pairs: list | tuple) -> PMap:
    """A PMap from ``(key, value)`` pairs with distinct str keys.

    This is pyrsistent's own layout (``_pmap._turbo_mapping``), except that a
    small map keeps all its pairs in a single bucket. PMap's lookups, equality,
    hash, evolver and pickling do not depend on the bucket count or container;
    a property test pins every operation against ``pmap()``.
    """
    n = len(pairs)
    if n <= SMALL_MAP:
        if not n:
            return _EMPTY_PMAP
        # PMap.__new__ (Python) only sets these two slots; set them directly.
        m = _object_new(_PMapType)
        _set_size(m, n)
        _set_buckets(m, _OneBucket((tuple(pairs),)))
        return m
    size = 2 * n
    buckets: list = [None] * size
    for pair in pairs:
        index = hash(pair[0]) % size
        bucket = buckets[index]
        if bucket:
            bucket.append(pair)
        else:
            buckets[index] = [pair]
    return _PMapType(n, _pvector(buckets))


def _walk_map(value: Mapping, draft_type: type, room: int) -> tuple[Any, Any]:
    # One pass checks the values, collects the frozen pairs and builds the
    # canonical dict. A PMap whose values come back unchanged is reused as
    # is, so shared frozen parts (provenance) stay shared.
    if room < 1:
        raise _too_deep()
    room -= 1
    pairs = []
    canon = {}
    same = type(value) is dict
    reuse = type(value) is _PMapType
    for k, v in value.items():
        if type(k) is not str:
            if isinstance(k, str):
                k = str(k)
                same = reuse = False
            else:
                raise _Bad(f"key {k!r} is a {type(k).__name__}; keys must be str")
        tv = type(v)
        if tv is str or v is None or tv is bool or (tv is int and INT_MIN <= v <= INT_MAX):
            fv = cv = v
        else:
            try:
                fv, cv = _walk(v, draft_type, room)
            except _Bad as bad:
                bad.keys.append(k)
                raise
            if fv is not v:
                reuse = False
            if cv is not v:
                same = False
        if k and k[0] == "$":
            canon["$" + k] = cv
            same = False
        else:
            canon[k] = cv
        pairs.append((k, fv))
    if reuse:
        return value, canon
    return _pmap_from_pairs(pairs), (value if same else canon)


def _walk_seq(value: Any, draft_type: type, room: int) -> tuple[Any, Any]:
    if room < 1:
        raise _too_deep()
    room -= 1
    frozen = []
    canon = []
    same = type(value) is list or type(value) is tuple
    reuse = type(value) is _PVEC
    for i, v in enumerate(value):
        tv = type(v)
        if tv is str or v is None or tv is bool or (tv is int and INT_MIN <= v <= INT_MAX):
            fv = cv = v
        else:
            try:
                fv, cv = _walk(v, draft_type, room)
            except _Bad as bad:
                bad.keys.append(i)
                raise
            if fv is not v:
                reuse = False
            if cv is not v:
                same = False
        frozen.append(fv)
        canon.append(cv)
    if reuse:
        return value, canon
    return _pvector(frozen), (value if same else canon)


def frozen_scalar_map(plain: dict) -> PMap:
    """A PMap of a dict whose values are already frozen and valid (no checks).

    For data the engine itself writes (batch meta, meta of derived drafts).
    """
    return _pmap_from_pairs(list(plain.items()))


def canonical_bytes(canon: Any) -> bytes:
    """Canonical JSON bytes of canonical data (``freeze_with_canon``'s or ``thaw_canon``'s).

    Floats in it must already be pre-formatted (as those two leave them); a
    raw float would be written by orjson, whose format changes between
    releases. ``encode_reference`` accepts raw floats and is the definition.
    """
    return orjson.dumps(canon, option=orjson.OPT_SORT_KEYS)


def thaw_canon(value: Any, embed_drafts: bool) -> Any:
    """Frozen value -> canonical data (plain dicts and lists, floats pre-formatted).

    With ``embed_drafts`` a nested draft is written whole (for ``to_json``);
    otherwise by id (for hashing).
    """
    if isinstance(value, PMap):
        return {("$" + k if k[:1] == "$" else k): thaw_canon(v, embed_drafts) for k, v in value.items()}
    if isinstance(value, PVector):
        return [thaw_canon(v, embed_drafts) for v in value]
    if type(value) is float:
        return _Fragment(format_float(value))
    if hasattr(value, "_canon_document"):
        return {DRAFT_MARK: value._canon_document() if embed_drafts else value.id}
    return value


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _reference_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _reference_text(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return format_float(value)
    if type(value) is str:
        return _reference_string(value)
    if type(value) is list:
        return "[" + ",".join(_reference_text(v) for v in value) + "]"
    if type(value) is dict:
        return "{" + ",".join(f"{_reference_string(k)}:{_reference_text(value[k])}" for k in sorted(value)) + "}"
    raise TypeError(f"encode_reference takes plain canonical data, got {type(value).__name__}")


def encode_reference(plain: Any) -> bytes:
    """The canonical form's definition, in plain Python: slow, obvious, and the spec.

    ``plain`` is canonical plain data with raw floats: ``None``, ``bool``,
    ``int``, ``float``, ``str``, ``list`` and ``dict`` with ``str`` keys
    (a nested draft already written ``{"$draft": id}``, ``$`` keys already
    escaped). Keys sort by code point (``sorted`` on ``str``), which is also
    their UTF-8 byte order. A lone surrogate raises UnicodeEncodeError.

    >>> encode_reference({"b": [1, 1.0, 1e16, None], "a": "\\n\u00e9"}).decode()
    '{"a":"\\\\né","b":[1,1.0,1e+16,null]}'
    """
    return _reference_text(plain).encode("utf-8")
