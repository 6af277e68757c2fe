"""Drafts: immutable, content-addressed values, made only by ``make_draft``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs
import orjson
from pyrsistent import PMap, PVector, pmap
from pyrsistent._pmap import PMap as _PMapType

from .canonical import (
    DRAFT_MARK,
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    _pmap_from_pairs,
    canonical_bytes,
    format_float,
    freeze_with_canon,
    frozen_scalar_map,
    path_of,
    thaw_canon,
)
from .engine_meta import RECIPE_DEPTH, EngineMeta, meta_of_recipe
from .errors import DraftError

__all__ = [
    "ID_SCHEME",
    "Draft",
    "check_output",
    "check_payload",
    "output_drafts",
    "frames_output_drafts",
    "draft_from_json",
    "draft_id_of",
    "engine_meta",
    "frozen_payload",
    "make_draft",
    "make_draft_extending",
    "value_from_canon",
]

ID_SCHEME = "draftlens.draft.v1"
"""The name of how ids are made: BLAKE2b-128 of this name, a newline and the
canonical bytes of ``[payload, meta]`` (``drafts.canonical``). It changes only
if the canonical form ever does; journals record it (see drafts.journal)."""
_ID_DOMAIN = ID_SCHEME.encode() + b"\n"
_EMPTY = pmap()
_dumps = orjson.dumps
# orjson hands back its bytes in an allocation of at least 4 KiB, whatever
# their length. Bytes that are kept (a payload's, for as long as its call's
# outcome lives: a whole batch, or in the memo) are copied to their own size
# with b"%b" % (data,) first (measured: 4,098 -> 51 bytes for {"n": 1}).
_join = b"".join
_SORTED = orjson.OPT_SORT_KEYS
# A payload or meta sits one level inside its draft's document.
_ROOM = MAX_DEPTH - 1


@attrs.frozen(init=False, eq=False, repr=False)
class Draft:
    """An immutable value with a content-derived ``id``.

    Equal ids mean equal drafts; ``payload`` and ``meta`` are deep-frozen
    (``PMap`` / ``PVector``). Create one with ``make_draft``:

    >>> d = make_draft({"text": "hi"})
    >>> d.payload["text"]
    'hi'
    >>> d == make_draft({"text": "hi"})
    True
    """

    id: str
    # ``payload`` (the property below): a frozen value, or for a lens output
    # whose payload is a flat map of strings, ints, None and bools, a private
    # dict copy of it (``check_payload``), no one else's to change, which
    # becomes the PMap when ``payload`` is first read.
    _payload: Any
    # ``meta`` (the property below): a frozen PMap, or for a lens output of a
    # batch the engine's recipe for it (``drafts.engine_meta``), a tuple of
    # strings and ints that becomes the frozen map when ``meta`` is first read.
    # Tuples and dicts of atomic values are objects the cyclic GC does not
    # track, so a recompute's outputs leave one tracked object each
    # (benchmarks/README.md).
    _meta: Any
    # Levels of this draft's JSON document (``to_json``), worked out when first
    # asked for (nesting it in another draft): -1 until then. Not part of equality.
    _depth: int = attrs.field(default=-1, repr=False)

    @property
    def payload(self) -> Any:
        """The frozen payload (``PMap``, ``PVector`` or a scalar), always the same object once read."""
        payload = self._payload
        if type(payload) is dict:
            payload = _pmap_from_pairs(sorted(payload.items()))
            _set_payload(self, payload)
        return payload

    @property
    def meta(self) -> PMap:
        """The frozen meta mapping (``PMap``), always the same object once read."""
        meta = self._meta
        if type(meta) is tuple:
            # Two threads reading at once may each build it; the maps are equal
            # and the draft keeps one of them.
            meta = meta_of_recipe(meta)
            _set_meta(self, meta)
        return meta

    # ``d.payload = x`` raises FrozenInstanceError (attrs' __setattr__). Only
    # ``object.__setattr__`` reaches these setters, exactly as it reached the
    # slots these properties stand for; lenses.testing's check_lens catches a
    # lens that does it.
    @payload.setter
    def payload(self, value: Any) -> None:
        _set_payload(self, value)

    @meta.setter
    def meta(self, value: Any) -> None:
        _set_meta(self, value)

    def __init__(self, *args, **kwargs):
        raise TypeError("Draft cannot be constructed directly; use make_draft(payload, meta)")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Draft:
            return NotImplemented
        return self.id == other.id

    def __ne__(self, other: object) -> bool:
        if type(other) is not Draft:
            return NotImplemented
        return self.id != other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        body = _short(thaw_canon(self.payload, embed_drafts=False))
        meta = f", meta={_short(thaw_canon(self.meta, False))}" if self.meta else ""
        return f"Draft(id={self.id[:12]!r}…, payload={body}{meta})"

    def _repr_html_(self) -> str:
        import html

        return (
            f"<div><b>Draft</b> <code>{html.escape(self.id)}</code>"
            f"<pre>{html.escape(self.to_json(indent=True).decode())}</pre></div>"
        )

    def _document_depth(self) -> int:
        depth = self._depth
        if depth < 0:
            meta, payload = self._meta, self._payload
            meta_depth = RECIPE_DEPTH if type(meta) is tuple else _value_depth(meta)
            depth = 1 + max(1 if type(payload) is dict else _value_depth(payload), meta_depth)
            _set(self, "_depth", depth)
        return depth

    def _canon_document(self) -> dict:
        return {
            "id": self.id,
            "payload": thaw_canon(self.payload, embed_drafts=True),
            "meta": thaw_canon(self.meta, embed_drafts=True),
        }

    def to_json(self, indent: bool = False) -> bytes:
        """Canonical JSON (sorted keys, nested drafts embedded whole, floats as in ``drafts.canonical``)."""
        option = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
        return orjson.dumps(self._canon_document(), option=option)

    def thaw(self) -> tuple[Any, Any]:
        """Plain ``(payload, meta)`` copies, e.g. to edit and make a new draft."""
        from pyrsistent import thaw

        return thaw(self.payload), thaw(self.meta)


def _value_depth(value: Any) -> int:
    if isinstance(value, (PMap, PVector)):
        children = value.values() if isinstance(value, PMap) else value
        return 1 + max((_value_depth(v) for v in children), default=0)
    if type(value) is Draft:
        return 1 + value._document_depth()
    return 0


def _short(value: Any, limit: int = 120) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


_new_draft = object.__new__
_set = object.__setattr__
# Draft's slots, set directly (what object.__setattr__ does, without the lookup).
_set_id = Draft.id.__set__
_set_payload = Draft._payload.__set__
_set_meta = Draft._meta.__set__
_set_depth = Draft._depth.__set__


def draft_id_of(canon_payload: Any, canon_meta: Any) -> str:
    """The id of a draft whose canonical plain payload and meta are given."""
    try:
        data = canonical_bytes([canon_payload, canon_meta])
    except orjson.JSONEncodeError as exc:
        raise _explain_encode_error(canon_payload, canon_meta, exc) from None
    return hashlib.blake2b(_ID_DOMAIN + data, digest_size=16).hexdigest()


def _build(id_: str, payload: Any, meta: Any) -> Draft:
    d = _new_draft(Draft)
    _set_id(d, id_)
    _set_payload(d, payload)
    _set_meta(d, meta)
    _set_depth(d, -1)
    return d


def make_draft(payload: Any, meta: Mapping[str, Any] | None = None) -> Draft:
    """Check, deep-freeze and name a JSON-like value: the only way to make a Draft.

    >>> make_draft({"n": float("nan")})
    Traceback (most recent call last):
    ...
    drafts.errors.DraftError: payload['n']: nan is not allowed (use None for a missing value)
    """
    frozen_payload, canon_payload = freeze_with_canon(payload, "payload", Draft, _ROOM)
    if meta is None:
        frozen_meta, canon_meta = _EMPTY, {}
    elif isinstance(meta, Mapping):
        frozen_meta, canon_meta = freeze_with_canon(meta, "meta", Draft, _ROOM)
    else:
        raise DraftError(f"meta must be a mapping or None, got {type(meta).__name__}", "meta")
    return _build(draft_id_of(canon_payload, canon_meta), frozen_payload, frozen_meta)


def make_draft_extending(payload: Any, meta: Mapping[str, Any] | None, extra: dict[str, tuple[Any, Any]]) -> Draft:
    """``make_draft(payload, {**meta, **extra})`` for meta the caller has already frozen.

    ``extra`` maps a meta key to ``(frozen, canon)``: the engine's provenance
    (one frozen map shared by every output of an instance) and batch meta.
    ``payload`` and ``meta`` are checked exactly as ``make_draft`` checks them;
    a property test pins the result equal to ``make_draft``'s. This is what
    keeps a recompute near 100k outputs/s (see benchmarks/README.md).
    """
    frozen_payload, canon_payload = freeze_with_canon(payload, "payload", Draft, _ROOM)
    if meta:
        if not isinstance(meta, Mapping):
            raise DraftError(f"meta must be a mapping or None, got {type(meta).__name__}", "meta")
        frozen_meta, canon_meta = freeze_with_canon(meta, "meta", Draft, _ROOM)
        return _extended(frozen_payload, canon_payload, frozen_meta, canon_meta, extra)
    return _extended(frozen_payload, canon_payload, None, None, extra)


def _extended(frozen_payload: Any, canon_payload: Any, frozen_meta: Any, canon_meta: Any, extra: dict) -> Draft:
    frozen, canon = _merged_meta(frozen_meta, canon_meta, extra)
    return _build(draft_id_of(canon_payload, canon), frozen_payload, frozen)


def _merged_meta(frozen_meta: Any, canon_meta: Any, extra: dict) -> tuple[PMap, dict]:
    """``(frozen, canon)`` of ``{**meta, **extra}``; ``extra`` maps a key to ``(frozen, canon)``."""
    if frozen_meta:
        frozen = {k: v for k, v in frozen_meta.items() if k not in extra}
        canon = dict(canon_meta)
        for key, (value, plain) in extra.items():
            frozen[key] = value
            canon["$" + key if key[:1] == "$" else key] = plain
        return frozen_scalar_map(frozen), canon
    pairs = []
    canon = {}
    for key, (value, plain) in extra.items():
        pairs.append((key, value))
        canon["$" + key if key[:1] == "$" else key] = plain
    return _pmap_from_pairs(pairs), canon


def check_output(payload: Any, meta: Mapping[str, Any] | None) -> tuple[Any, bytes, Any]:
    """Check one lens output as ``make_draft`` would, without naming it yet.

    Returns ``(held payload, its canonical bytes, frozen meta or None)``
    (``check_payload`` says what "held" is) for ``output_drafts``; raises
    DraftError naming the path of the first bad value. This is how a worker
    validates outputs where the lens ran: what it sends back is frozen
    JSON-like data and bytes, always picklable.
    """
    held, payload_bytes = check_payload(payload)
    if not meta:
        return held, payload_bytes, None
    if not isinstance(meta, Mapping):
        raise DraftError(f"meta must be a mapping or None, got {type(meta).__name__}", "meta")
    return held, payload_bytes, freeze_with_canon(meta, "meta", Draft, _ROOM)[0]


# Every id's hash starts with the scheme's line: outputs copy a hasher that has
# read it (a copy costs less than a new hasher, whose many options are parsed).
_new_id_hash = hashlib.blake2b(_ID_DOMAIN, digest_size=16).copy


def _id_of_message(message: bytes) -> str:
    """The id of a draft whose canonical ``[payload,meta]`` bytes are ``message``."""
    h = _new_id_hash()
    h.update(message)
    return h.hexdigest()


def check_payload(payload: Any) -> tuple[Any, bytes]:
    """``(held payload, its canonical bytes)``, checked as ``make_draft`` checks a payload.

    The held payload is the frozen value, or, for a flat map of strings,
    ints, None and bools, a dict copy of it (no one else holds it, so no one
    changes it), which ``frozen_payload`` (and ``Draft.payload``) turn into
    the PMap. A copy costs about 400 instructions where sorting the pairs
    into a tuple cost 3,000 (callgrind, one key), and a dict of atomic values
    is, like such a tuple, not tracked by the cyclic GC. The bytes are a copy
    of their own size (orjson's are not). Raises
    DraftError naming the path of the first bad value (a lone surrogate
    included: it is found by encoding). The bytes are what an output
    draft's id is spliced from (``output_drafts``); held payload and bytes
    are plain immutable data, so they travel back from a worker.

    >>> check_payload({"n": 1, "a": None})
    ({'n': 1, 'a': None}, b'{"a":null,"n":1}')
    >>> check_payload({"n": [1.0]})[1]
    b'{"n":[1.0]}'
    """
    tp = type(payload)
    if tp is dict or tp is _PMapType:
        # A flat map of strings, ints, None and bools (most lens outputs) is
        # held as a dict copy, checked after it is made (the lens keeps its
        # own dict); anything else takes the full walk. (A Python loop: per
        # entry it costs less than checking types with map() in C.)
        held = payload.copy() if tp is dict else dict(payload.items())
        for k, v in held.items():
            tv = type(v)
            if type(k) is not str or k[:1] == "$" or not (
                tv is str or v is None or tv is bool or (tv is int and INT_MIN <= v <= INT_MAX)
            ):
                break
        else:
            try:
                data = _dumps(held, option=_SORTED)
            except orjson.JSONEncodeError as exc:
                raise _explain_encode_error(held, {}, exc) from None
            return held, b"%b" % (data,)  # a copy of its own size (see _dumps)
    frozen, canon = freeze_with_canon(payload, "payload", Draft, _ROOM)
    try:
        data = _dumps(canon, option=_SORTED)
    except orjson.JSONEncodeError as exc:
        raise _explain_encode_error(canon, {}, exc) from None
    return frozen, b"%b" % (data,)


def engine_meta(lens_id: str, lens_version: str, instance_id: str, batch_id: str | None = None) -> EngineMeta:
    """The engine meta of one lens instance's outputs (``drafts.engine_meta``), for ``output_drafts``."""
    return EngineMeta(lens_id, lens_version, instance_id, batch_id)


def frozen_payload(held: Any) -> Any:
    """The frozen payload of a held one (``check_payload``): a flat dict becomes its PMap."""
    return _pmap_from_pairs(sorted(held.items())) if type(held) is dict else held


def output_drafts(
    outputs: Any, engine: EngineMeta, frame_index: int | None = None, source_id: str | None = None
) -> list[Draft]:
    """The drafts of one lens call's checked outputs, the engine's meta added.

    ``outputs``: ``check_output`` tuples ``(held payload, payload bytes or
    None, frozen user meta or None)`` in variant order. With ``frame_index`` (a batched call) each output
    gets ``meta["batch"]`` with that frame, ``source_id`` and its variant
    index, besides ``meta["provenance"]``.

    Each draft equals ``make_draft(payload, {**meta, "provenance": ...,
    "batch": ...})`` — id, payload, meta, JSON — and a property test pins it.
    An output without meta of its own is named from spliced bytes
    (``drafts.engine_meta``) and, in a batch, keeps its meta as a recipe
    until first read. Raises DraftError (``output N: `` and the path) for an
    output that cannot be named: a lone surrogate in its meta (found only
    when encoding), or an output that was never checked.
    """
    made = []
    append = made.append
    if not engine.spliceable:
        for variant, out in enumerate(outputs):
            batch = None if frame_index is None else engine.batch_plain(frame_index, source_id, variant)
            append(_general_output(out, engine, batch, variant))
        return made
    if frame_index is None:
        after = engine.single_bytes()
        shared = engine.single_meta
        for variant, out in enumerate(outputs):
            held, payload_bytes, meta = out
            if payload_bytes is not None and meta is None:
                append(_build(_id_of_message(b"[" + payload_bytes + after), held, shared))
            else:
                append(_general_output(out, engine, None, variant))
        return made
    return frames_output_drafts((outputs,), engine, frame_index, (source_id,))[0]


def frames_output_drafts(
    frames: Any, engine: EngineMeta, first_index: int, source_ids: Any
) -> tuple[list[Draft], list[int]]:
    """``output_drafts`` of consecutive frames of a batch: ``(their drafts in order, count per frame)``.

    ``frames[k]`` holds the checked outputs of frame ``first_index + k``,
    whose source draft id is ``source_ids[k]``; the drafts are those
    ``output_drafts`` gives frame by frame (it is this, for one frame).
    One loop for a whole chunk, since most of a recompute's time is spent
    per output (benchmarks/README.md). Raises DraftError as
    ``output_drafts`` does, for the first frame that has such an output.
    """
    made: list[Draft] = []
    counts: list[int] = []
    append = made.append
    if not engine.spliceable:
        for k, outputs in enumerate(frames):
            for variant, out in enumerate(outputs):
                batch = engine.batch_plain(first_index + k, source_ids[k], variant)
                append(_general_output(out, engine, batch, variant))
            counts.append(len(outputs))
        return made, counts
    batch, source_key, kind, tail = engine.batch_parts
    key = engine.key
    new_hash = _new_id_hash
    variants = _VARIANT_BYTES
    for frame_index, outputs, source_id in zip(range(first_index, first_index + len(frames)), frames, source_ids, strict=True):
        frame = b"%d" % frame_index
        source = b"null" if source_id is None else _dumps(source_id)
        for variant, out in enumerate(outputs):
            held, payload_bytes, meta = out
            if payload_bytes is not None and meta is None:
                h = new_hash()
                h.update(_join((b"[", payload_bytes, batch, frame, source_key, source, kind,
                                variants[variant] if variant < 16 else b"%d" % variant, tail)))
                d = _new_draft(Draft)
                _set_id(d, h.hexdigest())
                _set_payload(d, held)
                _set_meta(d, (key, frame_index, source_id, variant))
                _set_depth(d, -1)
                append(d)
            else:
                append(_general_output(out, engine, engine.batch_plain(frame_index, source_id, variant), variant))
        counts.append(len(outputs))
    return made, counts


_VARIANT_BYTES = tuple(b"%d" % v for v in range(16))


def _general_output(out: tuple, engine: EngineMeta, batch: dict | None, index: int) -> Draft:
    """``output_drafts`` for an output with meta of its own (or not checked yet): meta merged and frozen now."""
    try:
        return _merged_output(out, engine, batch)
    except DraftError as exc:
        raise DraftError(f"output {index}: {exc}") from None


def _merged_output(out: tuple, engine: EngineMeta, batch: dict | None) -> Draft:
    held, payload_bytes, meta = out
    if payload_bytes is None:
        held, payload_bytes = check_payload(frozen_payload(held))
    canon_meta = None
    if meta is not None:
        if not isinstance(meta, Mapping):
            raise DraftError(f"meta must be a mapping or None, got {type(meta).__name__}", "meta")
        meta, canon_meta = freeze_with_canon(meta, "meta", Draft, _ROOM)
    extra = {"provenance": (engine.provenance, engine.provenance_plain)}
    if batch is not None:
        extra["batch"] = (frozen_scalar_map(batch), batch)
    frozen, canon = _merged_meta(meta, canon_meta, extra)
    try:
        meta_bytes = _dumps(canon, option=_SORTED)
    except orjson.JSONEncodeError as exc:
        raise _explain_encode_error({}, canon, exc) from None
    return _build(_id_of_message(b"[" + payload_bytes + b"," + meta_bytes + b"]"), held, frozen)


def _explain_encode_error(payload: Any, meta: Any, exc: Exception) -> DraftError:
    for root, value in (("payload", payload), ("meta", meta)):
        found = _find_unencodable(value, [])
        if found is not None:
            # _find_unencodable lists keys innermost first, as path_of expects.
            return DraftError(f"{found[1]} ({exc})", path_of(root, found[0]))
    return DraftError(f"value cannot be encoded: {exc}")


def _find_unencodable(value: Any, keys: list) -> tuple[list, str] | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return keys, "string is not valid Unicode (lone surrogate)"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for k, v in items:
        if isinstance(k, str):
            try:
                k.encode("utf-8")
            except UnicodeEncodeError:
                return [k, *keys], "key is not valid Unicode (lone surrogate)"
        found = _find_unencodable(v, [k, *keys])
        if found is not None:
            return found
    return None


def draft_from_json(text: str | bytes) -> Draft:
    """Rebuild a draft from ``Draft.to_json()`` output, checking its id.

    A text whose id does not match its content (edited, truncated, forged) is
    refused with DraftError, and so is one nested more than MAX_NESTING deep
    (no draft can be: make_draft's canonical encoding stops there).
    """
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DraftError(f"not valid JSON: {exc}") from None
    check_nesting(doc, "draft")
    return _from_document(doc, "draft")


# orjson encodes at most 255 levels, so make_draft cannot make anything deeper;
# a document nested deeper is refused before the recursive decoder sees it.
MAX_NESTING = 255


def check_nesting(doc: Any, where: str) -> None:
    """DraftError if decoded JSON ``doc`` nests lists/objects more than MAX_NESTING deep (iterative)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise DraftError(f"nested more than {MAX_NESTING} levels deep (no draft can be), refused", where)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _from_document(doc: Any, where: str) -> Draft:
    if not isinstance(doc, dict) or set(doc) != {"id", "payload", "meta"}:
        got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise DraftError(f"expected an object with keys ['id', 'meta', 'payload'], got {got}", where)
    payload = _unescape(doc["payload"], where + ".payload")
    meta = _unescape(doc["meta"], where + ".meta")
    if not isinstance(meta, dict):
        raise DraftError("meta must be an object", where + ".meta")
    draft = make_draft(payload, meta)
    if draft.id != doc["id"] and doc["id"] == _orjson_3_11_6_id(draft):
        raise DraftError(
            f"id {doc['id']!r} was made by a draftlens whose ids depended on orjson (<= 3.11.6 writes the "
            f"float 1e16 as '1e16'); under id scheme {ID_SCHEME!r} (floats written '1e+16') the same content "
            f"is {draft.id!r}. The content is intact: make the draft again (make_draft) to name it",
            where,
        )
    if draft.id != doc["id"]:
        raise DraftError(
            f"id {doc['id']!r} does not match the content (content gives {draft.id!r}); "
            "the text was changed after it was written",
            where,
        )
    return draft


def _orjson_3_11_6_id(draft: Draft) -> str:
    """The id an older draftlens gave ``draft`` with orjson <= 3.11.6 (exponents without '+').

    Only asked when a text's id does not match, to say why instead of "changed".
    """

    def plain(value: Any) -> Any:
        if isinstance(value, PMap):
            return {("$" + k if k[:1] == "$" else k): plain(v) for k, v in value.items()}
        if isinstance(value, PVector):
            return [plain(v) for v in value]
        if type(value) is float:
            return orjson.Fragment(format_float(value).replace("e+", "e"))
        if type(value) is Draft:
            return {DRAFT_MARK: value.id}
        return value

    data = canonical_bytes([plain(draft.payload), plain(draft.meta)])
    return hashlib.blake2b(_ID_DOMAIN + data, digest_size=16).hexdigest()
def value_from_canon(value: Any, where: str = "value") -> Any:
    """Plain data back from ``thaw_canon(frozen, embed_drafts=True)`` output parsed as JSON.

    ``$$`` keys lose their escape and embedded drafts are rebuilt (their ids
    checked: DraftError naming ``where`` if one does not match its content).
    """
    return _unescape(value, where)


def _unescape(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        if DRAFT_MARK in value:
            if len(value) != 1:
                raise DraftError(f"a {DRAFT_MARK!r} object must have no other keys", where)
            return _from_document(value[DRAFT_MARK], where + "." + DRAFT_MARK)
        out = {}
        for k, v in value.items():
            if k[:1] == "$":
                if k[:2] != "$$":
                    raise DraftError(f"key {k!r} is not canonical (user keys starting with '$' are written '$$…')", where)
                k = k[1:]
            out[k] = _unescape(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, list):
        return [_unescape(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def is_draft(value: Any) -> bool:
    return type(value) is Draft


# PVector/PMap are re-exported for type hints in sibling modules.
_ = (PVector,)
