"""The source fingerprint is the same BLAKE3 digest however it is computed (issue 18).

Big files are hashed on every core in larger reads (``drafts.media``); the
digest must stay byte-identical to the one-thread, 1 MiB-read digest of
before, at every size — empty, around the read size, around the size where
threading starts — or every media draft id would change.
"""

from __future__ import annotations

import os

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drafts import media as media_module
from drafts.media import fingerprint_file

MIB = 1 << 20


def one_thread_digest(path: str) -> str:
    """The fingerprint as it was computed before issue 18: one thread, 1 MiB reads."""
    hasher = blake3.blake3()
    with open(path, "rb") as fh:
        while chunk := fh.read(MIB):
            hasher.update(chunk)
    return "blake3:" + hasher.hexdigest()


def _file(directory, size: int, seed: int = 0) -> str:
    path = os.path.join(str(directory), f"f{size}_{seed}.bin")
    block = bytes((i * 131 + seed * 7 + 1) % 256 for i in range(65536))
    with open(path, "wb") as fh:
        for start in range(0, size, len(block)):
            fh.write(block[:min(len(block), size - start)])
    return path


@pytest.mark.parametrize("size", [
    0, 1, 1023, 1024, 1025, MIB - 1, MIB, MIB + 1,
    media_module.THREADED_FROM - 1, media_module.THREADED_FROM, media_module.THREADED_FROM + 1,
    media_module.THREADED_FROM + media_module._BIG_CHUNK + 17,
])
def test_the_digest_is_the_one_thread_digest_at_every_size(tmp_path, size):
    path = _file(tmp_path, size)
    got_size, fingerprint = fingerprint_file(path)
    assert got_size == size
    assert fingerprint == one_thread_digest(path)
    if size <= 4 * MIB:
        with open(path, "rb") as fh:
            assert fingerprint == "blake3:" + blake3.blake3(fh.read()).hexdigest()


def test_the_empty_file_has_blake3s_empty_digest(tmp_path):
    assert fingerprint_file(_file(tmp_path, 0)) == (0, "blake3:" + blake3.blake3(b"").hexdigest())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 70_000), threaded_from=st.integers(0, 40_000), chunk=st.integers(1, 9000),
       seed=st.integers(0, 5))
def test_threaded_reads_of_any_size_give_the_same_digest(tmp_path_factory, monkeypatch, size, threaded_from, chunk,
                                                          seed):
    """Small thresholds and reads, so every boundary of the threaded read loop is crossed."""
    path = _file(tmp_path_factory.mktemp("fp"), size, seed)
    with monkeypatch.context() as patch:
        patch.setattr(media_module, "THREADED_FROM", threaded_from)
        patch.setattr(media_module, "_BIG_CHUNK", chunk)
        patch.setattr(media_module, "_CHUNK", chunk)
        assert fingerprint_file(path) == (size, one_thread_digest(path))


def test_a_big_file_is_hashed_on_every_core(tmp_path, monkeypatch):
    made = []
    real = blake3.blake3

    def spy(*args, **kwargs):
        made.append(kwargs.get("max_threads", 1))
        return real(*args, **kwargs)

    monkeypatch.setattr(media_module.blake3, "blake3", spy)
    monkeypatch.setattr(spy, "AUTO", real.AUTO, raising=False)
    fingerprint_file(_file(tmp_path, media_module.THREADED_FROM))
    fingerprint_file(_file(tmp_path, 10))
    assert made == [real.AUTO, 1]
