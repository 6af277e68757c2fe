"""The four media lenses over real third-party media files (tests/corpus).

``python -m tests.corpus.fetch`` fills the cache (CI does it first); files the
cache does not hold are skipped with the reason. For every file: each lens's
outcome is the one ``tests/corpus/expected.json`` records (refresh it with
``python -m tests.corpus.expect --write`` and review the diff), every
COMPLETED output decodes from start to end with the bundled FFmpeg without an
error, and every FAILED result has a failure class and a message.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageio_ffmpeg
import pytest

from derived import ProcessExecutor
from lenses.result import COMPLETED, FAILED, FAILURE_CLASSES
from tests.corpus.expect import accepts, load_expected
from tests.corpus.fetch import cache_dir, load_manifest
from tests.corpus.pipeline import (
    LENSES,
    NOT_RUN,
    cause,
    corpus_paths,
    decode_errors,
    labels,
    run_corpus,
)

MANIFEST = load_manifest()
FILE_IDS = [entry["id"] for entry in MANIFEST["files"]]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """One recompute of the four lenses over every cached corpus file: ``(table, missing ids)``."""
    paths, missing = corpus_paths(MANIFEST, cache_dir())
    if not paths:
        pytest.skip(f"the corpus cache {cache_dir()} holds none of the {len(FILE_IDS)} files "
                    f"(run `python -m tests.corpus.fetch`; set DRAFTLENS_CORPUS to use another folder)")
    with ProcessExecutor(2) as executor:  # FFmpeg runs one thread per job: two jobs fill two cores
        return run_corpus(paths, tmp_path_factory.mktemp("corpus"), executor=executor), set(missing)


def _row(corpus_run, file_id):
    table, missing = corpus_run
    if file_id in missing:
        pytest.skip(f"{file_id} is not in the corpus cache {cache_dir()} (fetch it: python -m tests.corpus.fetch)")
    return table[file_id]


@pytest.mark.corpus
@pytest.mark.ffmpeg
@pytest.mark.parametrize("file_id", FILE_IDS)
def test_each_lens_does_what_the_table_says(corpus_run, file_id):
    row = _row(corpus_run, file_id)
    expected = load_expected().get(file_id)
    assert expected is not None, f"{file_id} has no entry in tests/corpus/expected.json (run: python -m tests.corpus.expect --write)"
    got = labels({file_id: row})[file_id]
    assert all(accepts(expected.get(lens), got[lens]) for lens in LENSES), "\n".join(
        f"{file_id} {lens}: expected {expected.get(lens)}, got {got[lens]}"
        + (f" ({row[lens].message.splitlines()[0]})" if lens in row and row[lens].message else "")
        for lens in LENSES if not accepts(expected.get(lens), got[lens]))


@pytest.mark.corpus
@pytest.mark.ffmpeg
@pytest.mark.parametrize("file_id", FILE_IDS)
def test_every_completed_output_decodes_and_every_failure_says_why(corpus_run, file_id):
    row = _row(corpus_run, file_id)
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    for lens, outcome in row.items():
        assert outcome.status in (COMPLETED, FAILED), (file_id, lens, outcome.status)
        if outcome.status == FAILED:
            assert outcome.failure_class in FAILURE_CLASSES, (file_id, lens, outcome.failure_class)
            assert outcome.first_line, f"{file_id} {lens}: FAILED/{outcome.failure_class} without a message"
            if outcome.first_line.startswith("FFmpeg exited with code"):  # the cause is FFmpeg's own error line
                assert cause(outcome) != outcome.first_line, f"{file_id} {lens}: no FFmpeg error line: {outcome.message}"
            assert outcome.outputs == (), f"{file_id} {lens}: a FAILED result lists outputs {outcome.outputs}"
            continue
        assert outcome.failure_class is None and outcome.outputs, (file_id, lens, outcome)
        if lens == "probe":
            assert outcome.outputs == (os.path.abspath(Path(cache_dir(), "files", file_id)),)
            continue
        for path in outcome.outputs:
            assert os.path.getsize(path) > 0, f"{file_id} {lens}: empty output {path}"
            errors = decode_errors(path, ffmpeg)
            assert not errors, f"{file_id} {lens}: {path} does not decode cleanly: {errors}"
    if row.get("probe") is not None and row["probe"].status == FAILED:
        assert "thumbnail" not in row, f"{file_id}: a thumbnail job ran on a failed probe"


def test_the_table_lists_exactly_the_manifest_files_with_known_outcomes():
    expected = load_expected()
    assert sorted(expected) == sorted(FILE_IDS), "expected.json and manifest.json list different files"
    allowed = {COMPLETED, NOT_RUN} | {f"{FAILED}:{c}" for c in FAILURE_CLASSES}
    for file_id, row in expected.items():
        assert sorted(row) == sorted(LENSES), (file_id, row)
        for lens, entry in row.items():
            alternatives = entry if isinstance(entry, list) else [entry]
            assert alternatives and set(alternatives) <= allowed, (file_id, lens, entry)
            assert not isinstance(entry, list) or len(entry) > 1, (file_id, lens, "a list lists alternatives")
        assert accepts(row["thumbnail"], NOT_RUN) == (not accepts(row["probe"], COMPLETED)), (file_id, row)
