"""Pipeline files: a TOML description of sources, lens instances, caps and where to run.

```toml
[pipeline]
output = "out"                 # run.json and report.html go here (relative to this file)
executor = "serial"            # serial | processes:N | dask:ADDRESS

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

Every key is checked: an unknown key or a wrong type is an error naming the
key path and what was expected. Nothing is read from the environment.
"""

from __future__ import annotations

import glob as globlib
import os
import tomllib
from pathlib import Path
from typing import Any

import attrs

from drafts import OutputOf, Store, pack_drafts
from drafts.errors import DraftError, StoreError

from .caps import Caps

__all__ = ["Pipeline", "PipelineError", "load_pipeline", "parse_executor"]


class PipelineError(ValueError):
    """The pipeline file is not valid; the message names the key path."""


@attrs.frozen
class Pipeline:
    path: Path
    store: Store
    caps: Caps
    executor: str
    output: Path
    sources: tuple[tuple[str, str, int], ...]  # (source id, carrier draft id, frame count)

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
_PIPELINE = {"output": str, "executor": str, "name": str}
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


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and check a pipeline file and build its store (media files are fingerprinted)."""
    path = Path(path).resolve()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such pipeline file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: not valid TOML: {exc}") from None
    _check_keys(doc, _TOP, "(top level)")
    settings = doc.get("pipeline", {})
    if not isinstance(settings, dict):
        raise PipelineError("pipeline: expected a table")
    _check_keys(settings, _PIPELINE, "pipeline")
    executor = parse_executor(settings.get("executor", "serial"), "pipeline.executor")
    output = (path.parent / settings.get("output", "draftlens-out")).resolve()

    caps_table = doc.get("caps", {})
    if not isinstance(caps_table, dict):
        raise PipelineError("caps: expected a table")
    caps_fields = {a.name: int for a in attrs.fields(Caps)}
    _check_keys(caps_table, caps_fields, "caps")
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
    return Pipeline(path, store, caps, executor, output, tuple(sources))


def _media_frames(base: Path, patterns: str | list, where: str) -> list:
    from drafts.media import media_draft

    if isinstance(patterns, str):
        patterns = [patterns]
    files: set[str] = set()
    for j, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            raise PipelineError(f"{where}[{j}]: expected str, got {type(pattern).__name__}")
        # Only the pattern is a pattern: the pipeline's own folder is literal ("Wedding [2024]/", "Day[1]/").
        files.update(globlib.glob(os.path.join(globlib.escape(str(base)), pattern), recursive=True))
    # Sorted: the frame order must not depend on the directory listing order.
    return [media_draft(p) for p in sorted(f for f in files if Path(f).is_file())]
