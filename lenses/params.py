"""Resolve stored params against a lens's params class: no hidden defaults.

The store holds params as frozen JSON-like data. Resolution builds the lens's
attrs params class from them (unknown keys and missing fields are errors, the
class's own validators run, and a ``validate()`` method, if any, is called),
and records the resolved params, defaults filled in, as JSON-like data: that
is what the plan shows and what caches are keyed by.
"""

from __future__ import annotations

from typing import Any

import attrs
from pyrsistent import thaw

from .errors import ParamsError
from .lens import Lens

__all__ = ["resolve_params", "params_to_data"]


def params_to_data(params: Any) -> dict:
    """An attrs params instance as plain JSON-like data (tuples become lists)."""
    if params is None:
        return {}
    return attrs.asdict(params, recurse=True)


def resolve_params(lens: Lens, stored: Any) -> tuple[Any, dict]:
    """``(params instance or None, resolved plain data)``, or raise ParamsError."""
    data = thaw(stored) if stored is not None else {}
    if attrs.has(type(data)):
        data = params_to_data(data)
    if not isinstance(data, dict):
        raise ParamsError(f"lens {lens.id!r}: params must be a mapping, got {type(data).__name__}")
    cls = lens.params
    if cls is None:
        if data:
            raise ParamsError(f"lens {lens.id!r} takes no params, got {sorted(data)}")
        return None, {}
    fields = {a.name: a for a in attrs.fields(cls) if a.init}
    allowed = sorted(a.alias for a in fields.values())
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ParamsError(f"lens {lens.id!r}: unknown params {unknown}; allowed: {allowed}")
    missing = sorted(a.alias for a in fields.values() if a.default is attrs.NOTHING and a.alias not in data)
    if missing:
        raise ParamsError(f"lens {lens.id!r}: missing required params {missing}; allowed: {allowed}")
    try:
        instance = cls(**data)
        validate = getattr(instance, "validate", None)
        if callable(validate):
            validate()
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"lens {lens.id!r}: invalid params: {exc}") from None
    return instance, params_to_data(instance)
