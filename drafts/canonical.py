"""Deep freezing and canonical encoding of JSON-like values, in one walk.

One walk over a value both checks it, builds its frozen (pyrsistent) form and
builds the plain form whose canonical bytes name it. Canonical bytes are
orjson with sorted keys, so they are the same in every process and on every
machine; nothing depends on ``hash()`` or on ``PMap`` iteration order.

Nested drafts are encoded by id (``{"$draft": id}``). To keep that marker
unambiguous, every user key that starts with ``$`` gets one more ``$`` in the
canonical form; ``draft_from_json`` strips it again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from pyrsistent import PMap, PVector, pmap, pvector
from pyrsistent._pmap import PMap as _PMapType

from .errors import DraftError

__all__ = ["freeze_with_canon", "frozen_scalar_map", "canonical_bytes", "thaw_canon", "path_of", "INT_MIN", "INT_MAX"]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
DRAFT_MARK = "$draft"

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


def freeze_with_canon(value: Any, root: str, draft_type: type) -> tuple[Any, Any]:
    """Return ``(frozen, canon)`` for a JSON-like value, or raise DraftError.

    ``canon`` is plain data that orjson can encode; where the input already is
    canonical plain data it is returned as is (no copy).
    """
    try:
        return _walk(value, draft_type)
    except _Bad as bad:
        raise DraftError(bad.reason, path_of(root, bad.keys)) from None
    except RecursionError:
        raise DraftError("value is nested too deeply", root) from None


def _walk(value: Any, draft_type: type) -> tuple[Any, Any]:
    t = type(value)
    if t is str or value is None or t is bool:
        return value, value
    if t is int:
        if INT_MIN <= value <= INT_MAX:
            return value, value
        raise _Bad(f"integer {value} does not fit in 64 bits (store it as a string)")
    if t is float:
        if math.isfinite(value):
            return value, value
        raise _Bad(f"{value!r} is not allowed (use None for a missing value)")
    if t is dict or t is _PMapType:
        return _walk_map(value, draft_type)
    if t is list or t is tuple or t is _PVEC or isinstance(value, PVector):
        return _walk_seq(value, draft_type)
    if t is draft_type:
        return value, {DRAFT_MARK: value.id}
    # Subclasses of the JSON types (IntEnum, str subclasses, OrderedDict ...)
    # become the plain type, so their class never leaks into the id.
    if isinstance(value, bool):
        return _walk(bool(value), draft_type)
    if isinstance(value, int):
        return _walk(int(value), draft_type)
    if isinstance(value, float):
        return _walk(float(value), draft_type)
    if isinstance(value, str):
        return _walk(str(value), draft_type)
    if isinstance(value, Mapping):
        return _walk_map(value, draft_type)
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
    a 48-byte tuple instead of a ~330-byte pvector.
    """

    __slots__ = ()

    def evolver(self):
        return _pvector(self).evolver()


def _pmap_from_pairs(pairs: list) -> PMap:
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
        _set_buckets(m, _OneBucket((pairs,)))
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


def _walk_map(value: Mapping, draft_type: type) -> tuple[Any, Any]:
    # One pass checks the values, collects the frozen pairs and builds the
    # canonical dict. A PMap whose values come back unchanged is reused as
    # is, so shared frozen parts (provenance) stay shared.
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
                fv, cv = _walk(v, draft_type)
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


def _walk_seq(value: Any, draft_type: type) -> tuple[Any, Any]:
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
                fv, cv = _walk(v, draft_type)
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
    """Canonical JSON bytes of plain canonical data (sorted keys, no spaces)."""
    return orjson.dumps(canon, option=orjson.OPT_SORT_KEYS)


def thaw_canon(value: Any, embed_drafts: bool) -> Any:
    """Frozen value -> plain canonical data.

    With ``embed_drafts`` a nested draft is written whole (for ``to_json``);
    otherwise by id (for hashing).
    """
    if isinstance(value, PMap):
        return {("$" + k if k[:1] == "$" else k): thaw_canon(v, embed_drafts) for k, v in value.items()}
    if isinstance(value, PVector):
        return [thaw_canon(v, embed_drafts) for v in value]
    if hasattr(value, "_canon_document"):
        return {DRAFT_MARK: value._canon_document() if embed_drafts else value.id}
    return value
