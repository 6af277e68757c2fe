"""Resolve stored params against a lens's params class: one validation path, no hidden defaults.

The store holds params as frozen JSON-like data. ``resolve_params`` is the
only place that checks them, and the pipeline loader, ``Workspace.apply`` /
``set_params`` and the engine all call it, so they can never disagree. In
order it checks:

1. the params are a mapping (or an instance of the params class);
2. every key is a field of the params class (unknown keys name the allowed
   ones and the nearest match);
3. every field without a default is given;
4. each value fits the field's annotation: ``str``, ``int``, ``float``,
   ``bool``, ``None``, lists/tuples, mappings, ``Literal`` and unions of those
   (a str is never taken for a list: ``fields = "text"`` would otherwise
   become ``('t', 'e', 'x', 't')`` through a ``tuple`` converter);
5. the class's own converters and validators, then its ``validate()``.

Every failure is one ``ParamsError`` with ``path`` (the key path inside the
params, e.g. ``("templat",)``) and ``problem`` (one readable line), so a caller
can prefix its own location: ``lenses[1].params.templat: unknown param; ...``.
The resolved params, defaults filled in, are returned as JSON-like data: that
is what the plan shows and what caches are keyed by.

No cattrs, after trying it (26.2): it structures ``"text"`` into
``('t', 'e', 'x', 't')`` even for ``tuple[str, ...]`` (item 4 of issue 15),
coerces ``1`` to ``'1'`` for a ``str`` field, has no hook for unions such as
the media specs' ``int | float | str | None``, and reports exception groups
we would re-render into one line anyway; the params classes' own converters
and validators must run regardless. The checks above are what a pipeline
author needs, in about a hundred lines.
"""

from __future__ import annotations

import collections.abc
import difflib
import functools
import re
import types
import typing
from typing import Any

import attrs
from pyrsistent import thaw

from .errors import ParamsError
from .lens import Lens

__all__ = ["resolve_params", "params_to_data", "key_path", "did_you_mean"]


def params_to_data(params: Any) -> dict:
    """An attrs params instance as plain JSON-like data (tuples become lists)."""
    if params is None:
        return {}
    return attrs.asdict(params, recurse=True)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def key_path(path: tuple) -> str:
    """``("a", 2, "b")`` -> ``".a[2].b"``; ``()`` -> ``""`` (to append to a prefix such as ``params``).

    A key that is not a plain name is quoted, so the path stays one line:
    ``("a b", "\n")`` -> ``"['a b']['\\n']"``.
    """
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" if _PLAIN_KEY.fullmatch(str(p)) else f"[{p!r}]"
                   for p in path)


def did_you_mean(word: str, choices: Any) -> str:
    """``" (did you mean 'x'?)"`` for the nearest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(str(word), sorted(map(str, choices)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fail(lens: Lens, path: tuple, problem: str) -> ParamsError:
    problem = " ".join(problem.split())  # one line, whatever a validator put in it
    return ParamsError(f"lens {lens.id!r}: params{key_path(path)}: {problem}", lens_id=lens.id, path=path,
                       problem=problem)


def resolve_params(lens: Lens, stored: Any) -> tuple[Any, dict]:
    """``(params instance or None, resolved plain data)``, or raise ParamsError.

    ``stored``: frozen or plain JSON-like mapping, an instance of the lens's
    params class, or None (no params). Errors: ``ParamsError`` with ``path``
    and ``problem`` (see the module docstring for the order of the checks).
    """
    data = thaw(stored) if stored is not None else {}
    if attrs.has(type(data)):
        data = params_to_data(data)
    if not isinstance(data, dict):
        raise _fail(lens, (), f"must be a mapping, got {type(data).__name__}")
    cls = lens.params
    if cls is None:
        if data:
            raise _fail(lens, (sorted(data)[0],), f"lens {lens.id!r} takes no params; got {', '.join(map(repr, sorted(data)))}")
        return None, {}
    fields = {a.alias: a for a in attrs.fields(cls) if a.init}
    allowed = ", ".join(sorted(fields))
    unknown = sorted(set(data) - set(fields))
    if unknown:
        others = f" (also unknown: {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else ""
        raise _fail(lens, (unknown[0],),
                    f"unknown param{did_you_mean(unknown[0], fields)}{others}; allowed: {allowed}")
    missing = [name for name, a in fields.items() if a.default is attrs.NOTHING and name not in data]
    if len(missing) == 1:
        raise _fail(lens, (missing[0],), f"required param missing; allowed: {allowed}")
    if missing:
        raise _fail(lens, (), f"required params missing: {', '.join(missing)}; allowed: {allowed}")
    hints = _hints(cls)
    for name, value in data.items():
        hint = hints.get(fields[name].name)
        if hint is not None:
            problem = _type_problem(value, hint, (name,))
            if problem is not None:
                raise _fail(lens, *problem)
    try:
        instance = cls(**data)
    except Exception as exc:  # noqa: BLE001 - any validator error is a params error, re-raised with its field
        try:
            where = _which_field(cls, data, exc)
        except Exception:  # noqa: BLE001 - a class the replay cannot rebuild: report on the params as a whole
            where = ((), _plain(exc))
        raise _fail(lens, *where) from None
    validate = getattr(instance, "validate", None)
    if callable(validate):
        try:
            validate()
        except (TypeError, ValueError) as exc:
            raise _fail(lens, (), _plain(exc)) from None
    return instance, params_to_data(instance)


# -- types from annotations -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _hints(cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation; empty when the annotations cannot be resolved.

    An annotation naming something the module cannot resolve (a forward
    reference to a name defined later, say) leaves the types to the class's
    own validators rather than failing every call of the lens.
    """
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError, AttributeError):
        return {}


_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection)
_MAPPINGS = (dict, collections.abc.Mapping)


def _name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_name(a) for a in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    base = origin or hint
    if base in _SEQUENCES:
        return "a list"
    if base in _MAPPINGS:
        return "a table"
    return getattr(base, "__name__", str(base))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_problem(value: Any, hint: Any, path: tuple) -> tuple[tuple, str] | None:
    """``(path, problem)`` if ``value`` does not fit ``hint``; None if it fits or the hint is not checked."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or isinstance(hint, (typing.TypeVar, str)):
        return None
    if origin in (typing.Union, types.UnionType):
        if any(_type_problem(value, a, path) is None for a in args):
            return None
        return path, f"expected {_name(hint)}, got {type(value).__name__} {_shown(value)}"
    if origin is typing.Literal:
        return None if value in args else (path, f"expected {_name(hint)}, got {_shown(value)}")
    base = origin or hint
    if hint is type(None):
        return None if value is None else (path, f"expected null, got {type(value).__name__} {_shown(value)}")
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif base is str:
        ok = isinstance(value, str)
    elif base in _SEQUENCES:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            hint_text = f" (write [{value!r}] for a list of one)" if isinstance(value, str) else ""
            return path, f"expected a list, got {type(value).__name__} {_shown(value)}{hint_text}"
        return _items_problem(value, base, args, path)
    elif base in _MAPPINGS:
        if not isinstance(value, dict):
            return path, f"expected a table, got {type(value).__name__} {_shown(value)}"
        if len(args) == 2:
            for key, item in value.items():
                problem = _type_problem(item, args[1], (*path, key))
                if problem is not None:
                    return problem
        return None
    else:
        return None  # a class of the lens's own (a nested spec, a Draft): its own checks decide
    return None if ok else (path, f"expected {_name(hint)}, got {type(value).__name__} {_shown(value)}")


def _items_problem(value: list | tuple, base: Any, args: tuple, path: tuple) -> tuple[tuple, str] | None:
    if base is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            return path, f"expected a list of {len(args)} items, got {len(value)}"
        pairs = zip(value, args, strict=True)
    elif args:
        pairs = ((item, args[0]) for item in value)
    else:
        return None
    for index, (item, item_hint) in enumerate(pairs):
        problem = _type_problem(item, item_hint, (*path, index))
        if problem is not None:
            return problem
    return None


# -- which field a validator refused ---------------------------------------------------------------------


def _plain(exc: BaseException) -> str:
    """An exception as one readable line (attrs' validators put the Attribute repr in ``args``)."""
    if isinstance(exc, TypeError) and len(exc.args) == 4 and isinstance(exc.args[1], attrs.Attribute):
        _msg, _attribute, expected, value = exc.args
        names = expected if isinstance(expected, tuple) else (expected,)
        wanted = " or ".join(getattr(n, "__name__", str(n)) for n in names)
        return f"expected {wanted}, got {type(value).__name__} {_shown(value)}"
    if len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    return f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}"


def _which_field(cls: type, data: dict, exc: BaseException) -> tuple[tuple, str]:
    """``(path, problem)`` for a failed ``cls(**data)``.

    Replays the class's converters and validators field by field, in the
    order attrs runs them, to find the first field that refuses its value.
    If every field passes on its own, the error came from a check across
    fields (``__attrs_post_init__``) and concerns the params as a whole.
    """
    fields = [a for a in attrs.fields(cls) if a.init]
    values: dict[str, Any] = {}
    for a in attrs.fields(cls):
        if a.alias in data:
            value = data[a.alias]
        elif isinstance(a.default, attrs.Factory):
            value = a.default.factory() if not a.default.takes_self else None
        else:
            value = a.default
        if a.converter is not None and a.alias in data:
            try:
                value = a.converter(value)
            except Exception as conv_exc:  # noqa: BLE001 - this field's converter refused the value
                return (a.alias,), _strip_prefix(cls, a.name, _plain(conv_exc))
        values[a.name] = value
    shell = cls.__new__(cls)
    for name, value in values.items():
        object.__setattr__(shell, name, value)
    for a in fields:
        if a.validator is None or a.alias not in data:
            continue
        try:
            a.validator(shell, a, values[a.name])
        except Exception as field_exc:  # noqa: BLE001 - the first field that refuses is the one to name
            return (a.alias,), _strip_prefix(cls, a.name, _plain(field_exc))
    return (), _plain(exc)


def _strip_prefix(cls: type, name: str, problem: str) -> str:
    """``"ProxySpec.codec must be ..."`` -> ``"must be ..."``: the key path already says where."""
    for prefix in (f"{cls.__name__}.{name} ", f"{name} ", f"'{name}' "):
        if problem.startswith(prefix):
            return problem[len(prefix):]
    return problem
