"""Pipeline files: a TOML description of sources, lens instances, caps and where to run.

```toml
[pipeline]
output = "out"                 # run.json and report.html go here (relative to this file)
executor = "serial"            # serial | processes:N | dask:ADDRESS
lens_modules = ["mylenses"]    # optional: modules with lenses of your own (this folder first on the path)

[caps]                         # optional; any of the four Caps fields
max_frames_evaluated = 1000

[[sources]]                    # media files: one media draft per file, packed into a carrier
id = "clips"
glob = ["media/*.mov", "media/*.mp4"]

[[sources]]                    # or inline drafts, packed into a carrier
id = "notes"
drafts = [{ text = "hello" }]

[[lenses]]
id = "probe"                   # the lens instance id
lens = "media.probe"           # the lens id
input = "clips"                # a source id, another lens instance id, or omitted (a source lens)
[lenses.params]                # optional; the lens's params (media specs inline)
```

A relative ``output_directory`` in params is taken relative to the pipeline
file; ``draftlens run`` creates it.

Every key is checked when the file is loaded, before anything runs: an
unknown key or a wrong type, a lens id no registry holds ("did you mean"),
params that do not fit the lens's params class (``lenses.params``, the same
check the engine makes), a media spec the engine refuses, and a glob or file
that matches nothing are errors naming the key path and what was expected.
The lenses are the built-ins, those of installed packages (entry-point group
``draftlens.lenses``) and those of ``lens_modules``. Nothing else is read from
the environment.
"""

from __future__ import annotations

import glob as globlib
import logging
import os
import tomllib
from pathlib import Path
from typing import Any

import attrs

from drafts import OutputOf, Store, pack_drafts
from drafts.errors import DraftError, StoreError
from lenses.errors import ParamsError, UnknownLensError
from lenses.params import key_path, resolve_params
from lenses.registry import Registry

from ..caps import Caps
from ..lensmodules import LensModuleError, entry_point_lenses, import_lens_modules, registry_with

__all__ = ["Pipeline", "PipelineError", "load_pipeline", "parse_executor", "pipeline_output"]


log = logging.getLogger("draftlens.pipeline")


class PipelineError(ValueError):
    """The pipeline file is not valid; the message names the key path.

    ``problems`` holds one line per problem (load-time checks of lenses and
    params report every instance at once); ``str()`` joins them with newlines.
    """

    def __init__(self, message: str, problems: tuple[str, ...] | None = None):
        super().__init__(message)
        self.problems = tuple(problems) if problems else (message,)


@attrs.frozen
class Pipeline:
    path: Path
    store: Store
    caps: Caps
    executor: str
    output: Path
    sources: tuple[tuple[str, str, int], ...]  # (source id, carrier draft id, frame count)
    registry: Registry = attrs.field(eq=False, repr=False, factory=Registry)
    lens_modules: tuple[str, ...] = ()

    def output_directories(self) -> tuple[Path, ...]:
        """The media specs' output directories (``run`` creates them; ``plan`` never does)."""
        found = []
        for instance in self.store.lens_instances.values():
            params = instance.params
            directory = params.get("output_directory") if hasattr(params, "get") else None
            if isinstance(directory, str) and Path(directory) not in found:
                found.append(Path(directory))
        return tuple(found)


_TOP = {"pipeline", "caps", "sources", "lenses"}
_PIPELINE = {"output": str, "executor": str, "name": str, "lens_modules": list}
_SOURCE = {"id": str, "glob": (str, list), "drafts": list}
_LENS = {"id": str, "lens": str, "input": str, "params": dict}


def _check_keys(table: dict, allowed: dict | set, where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise PipelineError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    if isinstance(allowed, dict):
        for key, kind in allowed.items():
            if key in table and not isinstance(table[key], kind):
                names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise PipelineError(f"{where}.{key}: expected {names}, got {type(table[key]).__name__}")


def _tables(doc: dict, key: str, allowed: dict):
    """``(key path, table)`` for each table of an array of tables, keys checked."""
    tables = doc.get(key, [])
    if not isinstance(tables, list):
        raise PipelineError(f"{key}: expected an array of tables ([[{key}]])")
    for i, table in enumerate(tables):
        where = f"{key}[{i}]"
        if not isinstance(table, dict):
            raise PipelineError(f"{where}: expected a table")
        _check_keys(table, allowed, where)
        yield where, table


def parse_executor(spec: str, where: str = "executor") -> str:
    """Check ``serial`` | ``processes:N`` | ``dask:ADDRESS``; returns it unchanged."""
    if spec == "serial":
        return spec
    kind, _, arg = spec.partition(":")
    if kind == "processes" and arg.isdigit() and int(arg) >= 1:
        return spec
    if kind == "dask" and arg:
        return spec
    raise PipelineError(f"{where}: expected 'serial', 'processes:N' (N >= 1) or 'dask:ADDRESS', got {spec!r}")


def load_pipeline(path: str | Path, registry: Registry | None = None) -> Pipeline:
    """Read and check a pipeline file and build its store (media files are fingerprinted).

    ``registry`` (default: the built-in lenses) is copied and extended with
    the lenses of installed packages and of ``[pipeline] lens_modules``; the
    result is ``Pipeline.registry``. Every check of the module docstring runs
    here; errors: ``PipelineError`` naming the key path.
    """
    path = Path(path).resolve()
    doc = _read_document(path)
    _check_keys(doc, _TOP, "(top level)")
    settings = _pipeline_table(doc)
    _check_keys(settings, _PIPELINE, "pipeline")
    executor = parse_executor(settings.get("executor", "serial"), "pipeline.executor")
    output = _output_of(path, settings)
    modules = tuple(settings.get("lens_modules", ()))
    registry = _registry(modules, path.parent, registry)

    caps_table = doc.get("caps", {})
    if not isinstance(caps_table, dict):
        raise PipelineError("caps: expected a table")
    caps_fields = {a.name: int for a in attrs.fields(Caps)}
    _check_keys(caps_table, caps_fields, "caps")
    for key, value in caps_table.items():
        if isinstance(value, int) and value >= 2**63:  # Caps itself names negative values
            raise PipelineError(f"caps.{key}: {value} is out of range (at most {2**63 - 1})")
    try:
        caps = Caps(**caps_table)
    except ValueError as exc:
        raise PipelineError(f"caps: {exc}") from None

    store = Store.empty()
    inputs: dict[str, Any] = {}
    sources = []
    for where, table in _tables(doc, "sources", _SOURCE):
        if "id" not in table:
            raise PipelineError(f"{where}.id: required (a name lens instances use as input)")
        if ("glob" in table) == ("drafts" in table):
            raise PipelineError(f"{where}: give exactly one of 'glob' (media files) or 'drafts' (inline values)")
        source_id = table["id"]
        if source_id in inputs:
            raise PipelineError(f"{where}.id: {source_id!r} is already used")
        if "glob" in table:
            frames = _media_frames(path.parent, table["glob"], f"{where}.glob")
        else:
            frames = table["drafts"]
        try:
            carrier = pack_drafts(frames, {"source": source_id})
        except DraftError as exc:
            raise PipelineError(f"{where}.drafts: {exc}") from None
        store = store.add_draft(carrier)
        inputs[source_id] = carrier.id
        sources.append((source_id, carrier.id, len(frames)))

    where_of: dict[str, str] = {}
    for where, table in _tables(doc, "lenses", _LENS):
        for required in ("id", "lens"):
            if required not in table:
                raise PipelineError(f"{where}.{required}: required")
        instance_id = table["id"]
        if instance_id in inputs:
            raise PipelineError(f"{where}.id: {instance_id!r} is already used by a source or lens")
        name = table.get("input")
        if name is None:
            source = None
        elif name in store.lens_instances:
            source = OutputOf(name)
        elif name in inputs:
            source = inputs[name]
        else:
            known = sorted(inputs) + sorted(store.lens_instances)
            raise PipelineError(f"{where}.input: {name!r} is neither a source nor an earlier lens (known: {known})")
        params = table.get("params")
        if params is not None and isinstance(params.get("output_directory"), str):
            # Relative to the pipeline file, like every other path in it.
            params = {**params, "output_directory": os.path.normpath(path.parent / params["output_directory"])}
        try:
            store = store.add_lens_instance(instance_id, table["lens"], source, params)
        except StoreError as exc:
            raise PipelineError(f"{where}: {exc}") from None
        inputs[instance_id] = OutputOf(instance_id)
        where_of[instance_id] = where
    problems = _lens_problems(store, registry, where_of)
    if problems:
        raise PipelineError("\n".join(problems), problems)
    log.info("loaded %s: %d sources, %d lens instances", path, len(sources), len(store.lens_instances))
    return Pipeline(path, store, caps, executor, output, tuple(sources), registry, modules)


def _output_of(path: Path, settings: dict) -> Path:
    output = settings.get("output", "draftlens-out")
    if not isinstance(output, str):
        raise PipelineError(f"pipeline.output: expected str, got {type(output).__name__}")
    return (path.parent / output).resolve()


def pipeline_output(path: str | Path) -> Path:
    """The folder ``[pipeline] output`` names (run.json, report.html, the evaluation cache), without
    loading the pipeline: nothing is fingerprinted or imported. Raises PipelineError like ``load_pipeline``.
    """
    path = Path(path).resolve()
    return _output_of(path, _pipeline_table(_read_document(path)))


def _read_document(path: Path) -> dict:
    """The pipeline file's TOML document; PipelineError naming the file if it is missing, not UTF-8
    or not TOML (TOML files are UTF-8: toml.io, "Spec")."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such pipeline file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: not valid TOML: {exc}") from None


def _pipeline_table(doc: dict) -> dict:
    """The ``[pipeline]`` table (empty if absent); PipelineError if ``pipeline`` is not a table."""
    settings = doc.get("pipeline", {})
    if not isinstance(settings, dict):
        raise PipelineError("pipeline: expected a table")
    return settings


def _registry(modules: tuple, folder: Path, base: Registry | None) -> Registry:
    """The built-ins (or ``base``), installed packages' lenses, then ``lens_modules``, this folder first."""
    for i, name in enumerate(modules):
        if not isinstance(name, str):
            raise PipelineError(f"pipeline.lens_modules[{i}]: expected str, got {type(name).__name__}")
    try:
        groups = entry_point_lenses() + import_lens_modules(modules, folder, "pipeline.lens_modules")
        return registry_with(groups, base)
    except LensModuleError as exc:
        raise PipelineError(str(exc)) from None


def _lens_problems(store: Store, registry: Registry, where_of: dict[str, str]) -> list[str]:
    """Every lens id and params problem, each one line with its key path (the engine's own checks)."""
    problems = []
    for instance_id, instance in store.lens_instances.items():
        where = where_of[instance_id]
        try:
            lens = registry.get(instance.lens_id)
        except UnknownLensError as exc:
            mine = "" if exc.suggestion else "; a lens of your own? list its module in [pipeline] lens_modules"
            problems.append(f"{where}.lens: {exc}{mine}")
            continue
        try:
            resolve_params(lens, instance.params)
        except ParamsError as exc:
            problems.append(f"{where}.params{key_path(exc.path)}: {exc.problem}")
    return problems


def _media_frames(base: Path, patterns: str | list, where: str) -> list:
    from drafts.media import media_draft

    single = isinstance(patterns, str)
    if single:
        patterns = [patterns]
    files: set[str] = set()
    for j, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            raise PipelineError(f"{where}[{j}]: expected str, got {type(pattern).__name__}")
        # Only the pattern is a pattern: the pipeline's own folder is literal ("Wedding [2024]/", "Day[1]/").
        found = globlib.glob(os.path.join(globlib.escape(str(base)), pattern), recursive=True)
        matched = [f for f in found if Path(f).is_file()]
        if not matched:  # a typo, or a card that is not mounted: never a silent run over nothing
            at = where if single else f"{where}[{j}]"
            raise PipelineError(f"{at}: {pattern!r} matches no file in {base} (a typo, or a card not mounted?)")
        log.debug("%s: %r matched %d files", where, pattern, len(matched))
        files.update(matched)
    # Sorted: the frame order must not depend on the directory listing order.
    return [media_draft(p) for p in sorted(f for f in files if Path(f).is_file())]
