"""drafts.media: media drafts name a file by path, size and content fingerprint."""

from __future__ import annotations

import os
import pickle

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drafts import DraftError, make_draft
from drafts import media as media_module
from drafts.media import MediaError, fingerprint_file, media_draft


def test_media_draft_has_path_size_fingerprint(tmp_path):
    path = tmp_path / "clip.mov"
    path.write_bytes(b"abc")
    draft = media_draft(path)
    assert dict(draft.payload) == {
        "path": str(path),
        "size": 3,
        "fingerprint": "blake3:" + blake3.blake3(b"abc").hexdigest(),
    }
    assert draft == make_draft(dict(draft.payload))  # an ordinary draft, made by make_draft


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    (tmp_path / "a.wav").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert media_draft("a.wav").payload["path"] == str(tmp_path / "a.wav")


@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_the_id_follows_the_bytes(tmp_path_factory, first, second):
    path = tmp_path_factory.mktemp("m") / "f.bin"
    path.write_bytes(first)
    a = media_draft(path)
    assert media_draft(path) == a
    path.write_bytes(second)
    b = media_draft(path)
    assert (a == b) == (first == second)


def test_fingerprint_streams_files_larger_than_one_read(tmp_path):
    data = os.urandom((1 << 20) * 2 + 12345)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert fingerprint_file(path) == (len(data), "blake3:" + blake3.blake3(data).hexdigest())


def test_unreadable_things_raise_media_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.mov"
    with pytest.raises(MediaError, match=f"{missing}: no such file") as info:
        media_draft(missing)
    assert isinstance(info.value, DraftError) and isinstance(info.value, ValueError)
    assert info.value.file_path == str(missing)
    with pytest.raises(MediaError, match="is a directory"):
        media_draft(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(MediaError, match="not a regular file"):
        media_draft(fifo)  # must not block waiting for a writer
    with pytest.raises(MediaError, match="not bytes"):
        media_draft(b"/tmp/x.mov")
    again = pickle.loads(pickle.dumps(MediaError("/x", "gone")))
    assert str(again) == "/x: gone" and again.file_path == "/x"


def test_a_file_changing_while_it_is_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "growing.mov"
    path.write_bytes(b"0123456789")
    real_stat = os.stat

    def stat_after_append(p, *args, **kwargs):
        with open(path, "ab") as f:
            f.write(b"more")
        return real_stat(p, *args, **kwargs)

    monkeypatch.setattr(media_module.os, "stat", stat_after_append)
    with pytest.raises(MediaError, match="changed while it was being fingerprinted"):
        fingerprint_file(path)
