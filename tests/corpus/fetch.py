"""Fetch the real-media corpus: third-party media files found inside packages.

``python -m tests.corpus.fetch`` (or ``python tests/corpus/fetch.py``) reads
``manifest.json`` beside this file and makes every file it lists available
under ``<cache>/files/<id>``. The cache is ``$DRAFTLENS_CORPUS`` if set, else
``~/.cache/draftlens-corpus``.

For each package the manifest pins (registry, name, exact version), the script
asks that registry's ordinary client for exactly that version, in a temporary
folder:

* PyPI sdist: ``pip download --no-deps --no-binary :all: NAME==VERSION``
* PyPI wheel: ``pip download --no-deps --only-binary :all: NAME==VERSION``
* npm tarball: ``npm pack NAME@VERSION``
* Debian package: ``apt-get download NAME=VERSION`` (after one
  ``apt-get update`` if that fails and we are root), read with ``dpkg-deb``

and copies out only the listed members, each checked against the manifest's
sha256 and size before it is written (atomically) into the cache. A file
already in the cache with the right sha256 is never fetched again, so a second
run downloads nothing.

A registry that cannot be reached, a client that is missing, a version that is
gone or a member whose bytes differ is *reported* and skipped: the script still
exits 0 (``--strict`` makes it exit 1 when any file is missing), because the
tests that use the corpus skip the files the cache does not hold. The last
line of output is always one summary line::

    corpus: 73/73 files ready in /root/.cache/draftlens-corpus (0 fetched, 73 cached, 0 unavailable)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = [
    "MANIFEST",
    "cache_dir",
    "load_manifest",
    "file_path",
    "cached_ok",
    "fetch",
    "main",
]

MANIFEST = Path(__file__).with_name("manifest.json")
DEFAULT_CACHE = Path("~/.cache/draftlens-corpus")
CLIENT_TIMEOUT = 300  # seconds for one registry client call (download of one package)


def cache_dir() -> Path:
    """The corpus cache: ``$DRAFTLENS_CORPUS`` or ``~/.cache/draftlens-corpus`` (not created here)."""
    configured = os.environ.get("DRAFTLENS_CORPUS")
    return Path(configured).expanduser() if configured else DEFAULT_CACHE.expanduser()


def load_manifest(path: Path = MANIFEST) -> dict:
    """The manifest: ``{"packages": {key: {registry, name, version, kind, licence}}, "files": [...]}``.

    Each file entry has ``id`` (its file name in the cache), ``package`` (a key
    of ``packages``), ``path`` (the member inside the package), ``size``
    (bytes), ``sha256`` and ``exercises`` (what it tests). Raises ValueError
    naming the entry when one refers to an unknown package or repeats an id.
    """
    manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    seen: set[str] = set()
    for entry in manifest["files"]:
        if entry["package"] not in manifest["packages"]:
            raise ValueError(f"{path}: file {entry['id']!r} names unknown package {entry['package']!r}")
        if entry["id"] in seen or "/" in entry["id"]:
            raise ValueError(f"{path}: file id {entry['id']!r} is repeated or contains '/'")
        seen.add(entry["id"])
    return manifest


def file_path(entry: dict, cache: Path | None = None) -> Path:
    """Where the cache keeps one manifest file: ``<cache>/files/<id>``."""
    return (cache or cache_dir()) / "files" / entry["id"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_ok(entry: dict, cache: Path | None = None) -> bool:
    """Does the cache hold this file with the manifest's size and sha256?"""
    path = file_path(entry, cache)
    try:
        if path.stat().st_size != entry["size"]:
            return False
        return _sha256(path.read_bytes()) == entry["sha256"]
    except OSError:
        return False


# ---------------------------------------------------------------- registries


class Unavailable(Exception):
    """A package could not be had: the message says which client said what."""


def _run(argv: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise Unavailable(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"`{' '.join(argv)}` gave no answer in {CLIENT_TIMEOUT} s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise Unavailable(f"`{' '.join(argv)}` exited {done.returncode}: {' | '.join(lines[-3:])}")


def _one_file(folder: Path) -> Path:
    files = [p for p in folder.iterdir() if p.is_file()]
    if len(files) != 1:
        raise Unavailable(f"expected one downloaded file in {folder}, found {[p.name for p in files]}")
    return files[0]


def _download_pypi(package: dict, folder: Path) -> Path:
    binary = ["--only-binary", ":all:"] if package["kind"] == "wheel" else ["--no-binary", ":all:"]
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
          *binary, f"{package['name']}=={package['version']}", "-d", str(folder)], folder)
    return _one_file(folder)


def _download_npm(package: dict, folder: Path) -> Path:
    _run(["npm", "pack", "--silent", f"{package['name']}@{package['version']}"], folder)
    return _one_file(folder)


def _download_debian(package: dict, folder: Path) -> Path:
    argv = ["apt-get", "download", "-q", f"{package['name']}={package['version']}"]
    try:
        _run(argv, folder)
    except Unavailable:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            raise
        _run(["apt-get", "update", "-qq"], folder)  # stale or missing package lists: refresh once, retry
        _run(argv, folder)
    return _one_file(folder)


DOWNLOADERS: dict[str, Callable[[dict, Path], Path]] = {
    "pypi": _download_pypi,
    "npm": _download_npm,
    "debian": _download_debian,
}


def _members(package: dict, archive: Path, wanted: set[str]) -> dict[str, bytes]:
    """The wanted members' bytes; nothing is extracted onto the disk."""
    found: dict[str, bytes] = {}
    try:
        if package["kind"] == "wheel":
            with zipfile.ZipFile(archive) as zf:
                for name in wanted & set(zf.namelist()):
                    found[name] = zf.read(name)
            return found
        if package["kind"] == "deb":
            data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True,
                                  check=True, timeout=CLIENT_TIMEOUT).stdout
            tar = tarfile.open(fileobj=io.BytesIO(data))
        else:
            tar = tarfile.open(archive)
        with tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    found[member.name] = tar.extractfile(member).read()
    except FileNotFoundError:
        raise Unavailable("dpkg-deb is not installed") from None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, subprocess.SubprocessError) as exc:
        raise Unavailable(f"cannot read {archive.name}: {exc}") from None
    return found


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


# ---------------------------------------------------------------- the run


def fetch(manifest: dict, cache: Path, say: Callable[[str], None] = print,
          downloaders: dict[str, Callable[[dict, Path], Path]] | None = None) -> dict[str, list[str]]:
    """Bring every manifest file into ``cache``; returns ``{"cached", "fetched", "unavailable"}`` id lists.

    Never raises for a registry problem: each package that cannot be had is
    reported through ``say`` with the client's own words, and its files are
    listed as unavailable. A member whose sha256 or size differs from the
    manifest is unavailable too (and not written).
    """
    downloaders = downloaders or DOWNLOADERS
    outcome: dict[str, list[str]] = {"cached": [], "fetched": [], "unavailable": []}
    missing: dict[str, list[dict]] = {}
    for entry in manifest["files"]:
        if cached_ok(entry, cache):
            outcome["cached"].append(entry["id"])
        else:
            missing.setdefault(entry["package"], []).append(entry)
    for key, entries in missing.items():
        package = manifest["packages"][key]
        label = f"{package['registry']}:{package['name']}=={package['version']}"
        try:
            download = downloaders.get(package["registry"])
            if download is None:
                raise Unavailable(f"no client for registry {package['registry']!r}")
            with tempfile.TemporaryDirectory(prefix="draftlens-corpus-") as folder:
                archive = download(package, Path(folder))
                members = _members(package, archive, {e["path"] for e in entries})
        except Unavailable as exc:
            say(f"corpus: {label} unavailable ({exc}); {len(entries)} file(s) skipped")
            outcome["unavailable"].extend(e["id"] for e in entries)
            continue
        for entry in entries:
            data = members.get(entry["path"])
            if data is None:
                say(f"corpus: {label} has no member {entry['path']!r}; {entry['id']} skipped")
            elif len(data) != entry["size"] or _sha256(data) != entry["sha256"]:
                say(f"corpus: {label} member {entry['path']!r} has sha256 {_sha256(data)} and "
                    f"{len(data)} bytes, the manifest pins {entry['sha256']} and {entry['size']}; "
                    f"{entry['id']} skipped")
            else:
                _write_atomically(file_path(entry, cache), data)
                outcome["fetched"].append(entry["id"])
                continue
            outcome["unavailable"].append(entry["id"])
        say(f"corpus: {label}: {sum(e['id'] in outcome['fetched'] for e in entries)}/{len(entries)} file(s) fetched")
    return outcome


def summary(outcome: dict[str, list[str]], total: int, cache: Path) -> str:
    ready = len(outcome["cached"]) + len(outcome["fetched"])
    return (f"corpus: {ready}/{total} files ready in {cache} ({len(outcome['fetched'])} fetched, "
            f"{len(outcome['cached'])} cached, {len(outcome['unavailable'])} unavailable)")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.fetch", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache folder (default: $DRAFTLENS_CORPUS or ~/.cache/draftlens-corpus)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file is unavailable")
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help=argparse.SUPPRESS)
    args = parser.parse_args(list(argv) if argv is not None else None)
    cache = (args.cache or cache_dir()).expanduser().resolve()
    manifest = load_manifest(args.manifest)
    outcome = fetch(manifest, cache)
    print(summary(outcome, len(manifest["files"]), cache), flush=True)
    return 1 if args.strict and outcome["unavailable"] else 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a script: python tests/corpus/fetch.py
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
