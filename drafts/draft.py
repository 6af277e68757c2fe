"""Drafts: immutable, content-addressed values, made only by ``make_draft``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs
import orjson
from pyrsistent import PMap, PVector, pmap

from .canonical import (
    DRAFT_MARK,
    _pmap_from_pairs,
    canonical_bytes,
    freeze_with_canon,
    frozen_scalar_map,
    path_of,
    thaw_canon,
)
from .errors import DraftError

__all__ = ["Draft", "make_draft", "make_draft_extending", "draft_from_json", "draft_id_of", "value_from_canon"]

# Bumped only if the canonical encoding ever changes: ids name the scheme too.
_ID_DOMAIN = b"draftlens.draft.v1\n"
_EMPTY = pmap()


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
    payload: Any
    meta: PMap

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

    def _canon_document(self) -> dict:
        return {
            "id": self.id,
            "payload": thaw_canon(self.payload, embed_drafts=True),
            "meta": thaw_canon(self.meta, embed_drafts=True),
        }

    def to_json(self, indent: bool = False) -> bytes:
        """Canonical JSON (sorted keys, nested drafts embedded whole)."""
        option = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
        return orjson.dumps(self._canon_document(), option=option)

    def thaw(self) -> tuple[Any, Any]:
        """Plain ``(payload, meta)`` copies, e.g. to edit and make a new draft."""
        from pyrsistent import thaw

        return thaw(self.payload), thaw(self.meta)


def _short(value: Any, limit: int = 120) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


_new_draft = object.__new__
_set = object.__setattr__


def draft_id_of(canon_payload: Any, canon_meta: Any) -> str:
    """The id of a draft whose canonical plain payload and meta are given."""
    try:
        data = canonical_bytes([canon_payload, canon_meta])
    except orjson.JSONEncodeError as exc:
        raise _explain_encode_error(canon_payload, canon_meta, exc) from None
    return hashlib.blake2b(_ID_DOMAIN + data, digest_size=16).hexdigest()


def _build(id_: str, payload: Any, meta: Any) -> Draft:
    d = _new_draft(Draft)
    _set(d, "id", id_)
    _set(d, "payload", payload)
    _set(d, "meta", meta)
    return d


def make_draft(payload: Any, meta: Mapping[str, Any] | None = None) -> Draft:
    """Check, deep-freeze and name a JSON-like value: the only way to make a Draft.

    >>> make_draft({"n": float("nan")})
    Traceback (most recent call last):
    ...
    drafts.errors.DraftError: payload['n']: nan is not allowed (use None for a missing value)
    """
    frozen_payload, canon_payload = freeze_with_canon(payload, "payload", Draft)
    if meta is None:
        frozen_meta, canon_meta = _EMPTY, {}
    elif isinstance(meta, Mapping):
        frozen_meta, canon_meta = freeze_with_canon(meta, "meta", Draft)
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
    frozen_payload, canon_payload = freeze_with_canon(payload, "payload", Draft)
    if meta:
        if not isinstance(meta, Mapping):
            raise DraftError(f"meta must be a mapping or None, got {type(meta).__name__}", "meta")
        frozen_meta, canon_meta = freeze_with_canon(meta, "meta", Draft)
        frozen = {k: v for k, v in frozen_meta.items() if k not in extra}
        canon = dict(canon_meta)
        for key, (value, plain) in extra.items():
            frozen[key] = value
            canon["$" + key if key[:1] == "$" else key] = plain
        return _build(draft_id_of(canon_payload, canon), frozen_payload, frozen_scalar_map(frozen))
    pairs = []
    canon = {}
    for key, (value, plain) in extra.items():
        pairs.append((key, value))
        canon["$" + key if key[:1] == "$" else key] = plain
    return _build(draft_id_of(canon_payload, canon), frozen_payload, _pmap_from_pairs(pairs))


def _explain_encode_error(payload: Any, meta: Any, exc: Exception) -> DraftError:
    for root, value in (("payload", payload), ("meta", meta)):
        found = _find_unencodable(value, [])
        if found is not None:
            return DraftError(f"{found[1]} ({exc})", path_of(root, found[0][::-1]))
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
    refused with DraftError.
    """
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DraftError(f"not valid JSON: {exc}") from None
    return _from_document(doc, "draft")


def _from_document(doc: Any, where: str) -> Draft:
    if not isinstance(doc, dict) or set(doc) != {"id", "payload", "meta"}:
        got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise DraftError(f"expected an object with keys ['id', 'meta', 'payload'], got {got}", where)
    payload = _unescape(doc["payload"], where + ".payload")
    meta = _unescape(doc["meta"], where + ".meta")
    if not isinstance(meta, dict):
        raise DraftError("meta must be an object", where + ".meta")
    draft = make_draft(payload, meta)
    if draft.id != doc["id"]:
        raise DraftError(
            f"id {doc['id']!r} does not match the content (content gives {draft.id!r}); "
            "the text was changed after it was written",
            where,
        )
    return draft


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
