"""Where lenses of your own come from: modules you name, and installed packages.

- ``import_lens_modules(names, search_path)`` imports modules by name (with
  ``search_path``, e.g. a pipeline's folder, first on the import path) and
  returns every ``Lens`` each defines at module level.
- Installed packages offer lenses through the entry-point group
  ``draftlens.lenses``; an entry point names a module (every module-level
  ``Lens`` in it), one ``Lens``, or an iterable of them::

      [project.entry-points."draftlens.lenses"]
      mylenses = "mypackage.lenses"

- ``registry_with(...)``: the built-in lenses plus all of those, in that order;
  two different lenses with one id are an error naming both origins.
- ``lens_origin(lens)``: what a journal records so that a replay can import the
  lens's module again (``None`` for the built-in lenses).

Lenses pickle by reference (module and name), so the module must stay
importable: worker processes inherit the import path, Dask workers need the
module installed (or on their path) too.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from lenses import default_registry
from lenses.errors import DuplicateLensError
from lenses.lens import Lens
from lenses.registry import Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "LensModuleError",
    "entry_point_lenses",
    "import_lens_modules",
    "lens_origin",
    "lenses_in_module",
    "registry_with",
]

ENTRY_POINT_GROUP = "draftlens.lenses"
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_BUILTIN_PREFIX = "lenses."

log = logging.getLogger("draftlens.lenses")


class LensModuleError(ValueError):
    """A lens module or entry point could not be imported, held no lens, or clashed with another lens."""


def lenses_in_module(module: ModuleType) -> tuple[Lens, ...]:
    """Every ``Lens`` bound at module level, in attribute-name order, each once."""
    found: list[Lens] = []
    for name in sorted(vars(module)):
        value = vars(module)[name]
        if isinstance(value, Lens) and value not in found:
            found.append(value)
    return tuple(found)


def _import(name: str, where: str, search_path: Path | None) -> ModuleType:
    if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name):
        raise LensModuleError(
            f"{where}: expected a module name such as 'mylenses' (for mylenses.py next to the pipeline) "
            f"or 'package.lenses', got {name!r}"
        )
    if search_path is not None and str(search_path) not in sys.path:
        sys.path.insert(0, str(search_path))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and not (name == exc.name or name.startswith(exc.name + ".")):
            raise LensModuleError(f"{where}: importing {name!r} failed: ModuleNotFoundError: {exc}") from None
        looked = f"{search_path} and the installed packages" if search_path is not None else "the import path"
        raise LensModuleError(f"{where}: no module {name!r} (looked in {looked})") from None
    except Exception as exc:  # noqa: BLE001 - any error in the user's module is reported with its location
        raise LensModuleError(f"{where}: importing {name!r} failed: {type(exc).__name__}: {exc}"
                              f"{_raised_at(exc)}") from None


def _raised_at(exc: BaseException) -> str:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    return f" (at {last.tb_frame.f_code.co_filename}:{last.tb_lineno})"


def import_lens_modules(names: Iterable[str], search_path: Path | None = None,
                        where: str = "lens_modules") -> tuple[tuple[str, tuple[Lens, ...]], ...]:
    """``((module name, its lenses), ...)``; a module that defines no lens is an error.

    ``where`` names the list in messages (``pipeline.lens_modules``).
    Errors: ``LensModuleError`` naming ``where[i]`` and what went wrong
    (not found, the exception the module raised and where, no lens in it).
    """
    out = []
    for i, name in enumerate(names):
        module = _import(name, f"{where}[{i}]", search_path)
        found = lenses_in_module(module)
        if not found:
            raise LensModuleError(
                f"{where}[{i}]: module {name!r} ({getattr(module, '__file__', '?')}) defines no lens at module "
                "level (decorate a module-level function with @lens)"
            )
        log.debug("imported %s from %s: %s", name, getattr(module, "__file__", "?"), [x.id for x in found])
        out.append((name, found))
    return tuple(out)


def entry_point_lenses() -> tuple[tuple[str, tuple[Lens, ...]], ...]:
    """``((entry point description, its lenses), ...)`` of the group ``draftlens.lenses``, sorted by name."""
    out = []
    points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
    for point in points:
        dist = getattr(point.dist, "name", None) or "?"
        where = f"entry point {point.name} = {point.value!r} (group {ENTRY_POINT_GROUP}, distribution {dist})"
        try:
            loaded = point.load()
        except Exception as exc:  # noqa: BLE001 - a broken installed package is named, not hidden
            raise LensModuleError(f"{where}: {type(exc).__name__}: {exc}{_raised_at(exc)}") from None
        if isinstance(loaded, ModuleType):
            found = lenses_in_module(loaded)
        elif isinstance(loaded, Lens):
            found = (loaded,)
        elif isinstance(loaded, Iterable) and all(isinstance(x, Lens) for x in loaded):
            found = tuple(loaded)
        else:
            found = ()
        if not found:
            raise LensModuleError(f"{where}: expected a module with lenses, a Lens or a list of Lens, "
                                  f"got {type(loaded).__name__}")
        log.debug("%s: %s", where, [x.id for x in found])
        out.append((where, found))
    return tuple(out)


def registry_with(groups: Iterable[tuple[str, tuple[Lens, ...]]], base: Registry | None = None) -> Registry:
    """A copy of ``base`` (default: the built-ins) with every lens of ``groups`` registered.

    Registering the very same lens twice is fine; another lens under a taken
    id raises ``LensModuleError`` naming both.
    """
    registry = (base or default_registry).copy()
    for where, found in groups:
        for one in found:
            try:
                registry.register(one)
            except DuplicateLensError:
                held = registry.get(one.id)
                raise LensModuleError(
                    f"{where}: lens {one.id!r} ({one.fn.__module__}.{one.fn.__qualname__}) clashes with "
                    f"{held.fn.__module__}.{held.fn.__qualname__}, which already has that id; rename one of them"
                ) from None
    return registry


def lens_origin(lens: Lens) -> dict[str, Any] | None:
    """``{"module": name, "path": folder}`` to import ``lens`` again, or None for a built-in lens.

    ``path`` is the folder the module's top-level package was found in (so a
    replay can put it first on the import path), or None if it is unknown.
    """
    module = lens.fn.__module__
    if module.startswith(_BUILTIN_PREFIX) or module == "lenses":
        return None
    loaded = sys.modules.get(module)
    path = None
    file = getattr(loaded, "__file__", None)
    if file:
        depth = module.count(".") + (1 if Path(file).name == "__init__.py" else 0)
        path = str(Path(file).resolve().parents[depth])
    return {"module": module, "path": path}
