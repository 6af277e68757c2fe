"""Fuzzed pipeline files: only PipelineError comes out of ``load_pipeline`` (issue 17, item 8).

Documents are built from the pipeline vocabulary with values of every TOML
type in every place, written as TOML, and loaded; the loader may accept a
document or refuse it with a PipelineError (exit 2 in the command), never
raise anything else. ``draftlens plan`` on the same text exits 0 or 2 with no
traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derived.command.pipeline import PipelineError, load_pipeline

KEYS = ["pipeline", "caps", "sources", "lenses", "output", "executor", "name", "lens_modules", "id", "glob",
        "drafts", "lens", "input", "params", "max_frames_evaluated", "codec", "container", "resolution",
        "naming_template", "output_directory", "template", "field", "fields", "text", "x"]
scalars = (st.text(max_size=8) | st.sampled_from(["serial", "processes:2", "dask:", "text.upper", "media.proxy",
                                                    "notes", "up", "*.mp4", "../x", "/abs", "{source_name}", ""])
           | st.integers(-3, 2000) | st.booleans() | st.floats(allow_nan=False, allow_infinity=False, width=32))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4), max_leaves=10)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=5)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, int) else repr(float(value))
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def toml_document(doc: dict) -> str:
    return "".join(f"{json.dumps(key)} = {toml_value(value)}\n" for key, value in doc.items())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents)
def test_any_document_loads_or_is_a_pipeline_error(tmp_path, doc):
    path = tmp_path / "pipeline.toml"
    path.write_text(toml_document(doc), encoding="utf-8")
    try:
        load_pipeline(path)
    except PipelineError as exc:
        assert str(exc)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents, cut=st.integers(0, 400))
def test_the_command_never_shows_a_traceback_for_a_pipeline_file(tmp_path, doc, cut):
    path = tmp_path / "pipeline.toml"
    path.write_text(toml_document(doc)[:cut] if cut % 3 == 0 else toml_document(doc), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "derived", "plan", str(path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr



@pytest.mark.parametrize("reader", ["load_pipeline", "pipeline_output"])
def test_a_pipeline_file_that_is_not_utf8_or_whose_pipeline_is_no_table_is_a_pipeline_error(tmp_path, reader):
    from derived.command import pipeline

    read = getattr(pipeline, reader)
    path = tmp_path / "pipeline.toml"
    path.write_bytes(b'[pipeline]\noutput = "caf\xe9"\n')  # Latin-1; TOML is UTF-8
    with pytest.raises(PipelineError, match=r"pipeline\.toml: not valid TOML: 'utf-8' codec can't decode byte 0xe9"):
        read(path)
    path.write_text("pipeline = 3\n")
    with pytest.raises(PipelineError, match="^pipeline: expected a table$"):
        read(path)
