"""Built-in pure lenses a REPL user reaches for first.

All are map-only: each looks at one draft (one frame) and yields outputs.
"""

from __future__ import annotations

import string
from typing import Any

import attrs
from pyrsistent import PMap, PVector

from drafts.canonical import canonical_bytes, thaw_canon

from .lens import lens

__all__ = ["source_values", "pick_fields", "rename_fields", "split_list", "format_text", "upper_text"]

_str_tuple = attrs.field(converter=tuple, validator=attrs.validators.deep_iterable(attrs.validators.instance_of(str)))


def _payload_map(draft: Any, lens_id: str) -> PMap:
    if draft is None or not isinstance(draft.payload, PMap):
        got = "no draft" if draft is None else type(draft.payload).__name__
        raise TypeError(f"{lens_id} needs a draft whose payload is an object, got {got}")
    return draft.payload


def _field_of(payload: PMap, field: str, kind: type, kind_name: str) -> Any:
    """``payload[field]`` if it is a ``kind``; TypeError naming the field and what came otherwise."""
    value = payload.get(field)
    if not isinstance(value, kind):
        raise TypeError(f"payload[{field!r}] must be a {kind_name}, got {type(value).__name__}")
    return value


@attrs.frozen
class SourceParams:
    """``values``: the payloads to emit, in order."""

    values: tuple = attrs.field(converter=tuple)


@lens("core.source", version="1", params=SourceParams, batch_behavior="disable")
def source_values(draft: Any, params: SourceParams):
    """Emit one output per entry of ``params.values`` (use it with input None).

    >>> list(source_values(None, SourceParams(values=[{"n": 1}, {"n": 2}])))
    [{'n': 1}, {'n': 2}]
    """
    yield from params.values


@attrs.frozen
class PickParams:
    """``fields`` to keep; ``strict``: a missing field is an error (else skipped)."""

    fields: tuple[str, ...] = _str_tuple
    strict: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


@lens("fields.pick", version="1", params=PickParams)
def pick_fields(draft: Any, params: PickParams):
    """Keep only some fields of an object payload."""
    payload = _payload_map(draft, "fields.pick")
    missing = [f for f in params.fields if f not in payload]
    if missing and params.strict:
        raise KeyError(f"fields {missing} not in payload (keys: {sorted(payload)}); set strict=false to skip them")
    yield {f: payload[f] for f in params.fields if f in payload}


@attrs.frozen
class RenameParams:
    """``mapping``: old field name -> new field name."""

    mapping: dict = attrs.field(
        validator=attrs.validators.deep_mapping(
            attrs.validators.instance_of(str), attrs.validators.instance_of(str), attrs.validators.instance_of(dict)
        )
    )


@lens("fields.rename", version="1", params=RenameParams)
def rename_fields(draft: Any, params: RenameParams):
    """Rename fields of an object payload; fields not named are kept."""
    payload = _payload_map(draft, "fields.rename")
    targets = [params.mapping.get(k, k) for k in payload]
    if len(set(targets)) != len(targets):
        raise ValueError(f"renaming {dict(params.mapping)} would merge fields of {sorted(payload)}")
    yield {params.mapping.get(k, k): v for k, v in payload.items()}


@attrs.frozen
class SplitParams:
    """``field``: the list to split; ``keep_others``: copy the other fields into each variant."""

    field: str = attrs.field(validator=attrs.validators.instance_of(str))
    keep_others: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


@lens("list.split", version="1", params=SplitParams)
def split_list(draft: Any, params: SplitParams):
    """One output (variant) per element of ``payload[field]``, in list order."""
    payload = _payload_map(draft, "list.split")
    for item in _field_of(payload, params.field, PVector, "list"):
        yield payload.set(params.field, item) if params.keep_others else item


def _check_template(_inst, _attr, template: str) -> None:
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, got {type(template).__name__}")
    for _, name, spec, _conv in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"template field {{{name}}} must be a plain field name (no '.', '[' or positions)")
        if spec and "{" in spec:
            raise ValueError(f"template field {{{name}}} has a nested format spec; not allowed")


@attrs.frozen
class FormatParams:
    """``template``: ``str.format`` text with ``{field}`` names; ``into``: the output field."""

    template: str = attrs.field(validator=_check_template)
    into: str = attrs.field(default="text", validator=attrs.validators.instance_of(str))


def _formattable(value: Any) -> Any:
    """Scalars format as themselves; objects, lists and drafts as canonical JSON.

    ``str()`` of a map would follow its iteration order, so equal drafts could
    render different text; canonical JSON (sorted keys, drafts by id) cannot.
    """
    if isinstance(value, (PMap, PVector)) or hasattr(value, "_canon_document"):
        return canonical_bytes(thaw_canon(value, embed_drafts=False)).decode()
    return value


@lens("text.format", version="2", params=FormatParams)
def format_text(draft: Any, params: FormatParams):
    """Render a template from the payload's fields into ``payload[into]``.

    Only plain ``{name}`` fields are allowed, so a template can never reach
    attributes or items of the values it formats. Object and list values render
    as canonical JSON, so equal drafts always give equal text.

    >>> from drafts import make_draft
    >>> draft = make_draft({"clip": "a", "size": {"w": 2, "h": 1}})
    >>> next(format_text(draft, FormatParams("{clip} {size}")))["text"]
    'a {"h":1,"w":2}'
    """
    payload = _payload_map(draft, "text.format")
    values = {k: _formattable(v) for k, v in payload.items()}
    try:
        text = params.template.format_map(values)
    except KeyError as exc:
        raise KeyError(f"template names field {exc.args[0]!r}, payload has {sorted(payload)}") from None
    yield payload.set(params.into, text)


@attrs.frozen
class UpperParams:
    """``field``: the str field to upper-case."""

    field: str = attrs.field(default="text", validator=attrs.validators.instance_of(str))


@lens("text.upper", version="1", params=UpperParams)
def upper_text(draft: Any, params: UpperParams):
    """Upper-case one str field of an object payload."""
    payload = _payload_map(draft, "text.upper")
    yield payload.set(params.field, _field_of(payload, params.field, str, "str").upper())
