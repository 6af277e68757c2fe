"""The committed expectations table of the corpus run: compare it, or write it from today's lenses.

``python -m tests.corpus.expect`` runs the four media lenses over every corpus
file the cache holds (see ``fetch``) and prints, per file, what each lens did
next to what ``expected.json`` says, and every failure's cause.

``--write`` replaces ``expected.json`` with the current behaviour (entries of
files the cache does not hold are kept as they are), so that after a lens
fix the table is refreshed and the diff is reviewed by hand. ``--report
FILE`` also writes the Markdown table with each failure's first line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.corpus.fetch import cache_dir, load_manifest
from tests.corpus.pipeline import LENSES, NOT_RUN, Outcome, cause, corpus_paths, labels, run_corpus

EXPECTED = Path(__file__).with_name("expected.json")


def load_expected(path: Path = EXPECTED) -> dict[str, dict[str, str | list[str]]]:
    """``{file id: {lens: "COMPLETED" | "FAILED:<class>" | "NOT_RUN"}}``; empty when the file does not exist.

    An entry may instead be a list of labels: outcomes seen to vary from run to
    run on that file (a lens bug to fix; tests/corpus/README.md says which and
    why). Any of them is accepted, and ``--write`` keeps the list while the
    current outcome is one of them.
    """
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def accepts(expected: str | list[str] | None, label: str) -> bool:
    """Does a table entry (one label, or a list of labels seen to vary) accept ``label``?"""
    return label in expected if isinstance(expected, list) else label == expected


def merged(before: dict[str, str | list[str]] | None, row: dict[str, str]) -> dict[str, str | list[str]]:
    """The new table row: today's labels, except that a list entry that accepts today's label stays."""
    before = before or {}
    return {lens: (before[lens] if isinstance(before.get(lens), list) and accepts(before[lens], label) else label)
            for lens, label in row.items()}


def dump_expected(table: dict[str, dict[str, str]], path: Path = EXPECTED) -> None:
    path.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n", encoding="utf-8")


def report(table: dict[str, dict[str, Outcome]], manifest: dict) -> str:
    """Markdown: one row per file (what it exercises, each lens's label), then each failure's cause."""
    exercises = {e["id"]: e["exercises"] for e in manifest["files"]}
    rows = ["| file | exercises | " + " | ".join(LENSES) + " |", "|---|---|" + "---|" * len(LENSES)]
    failures = []
    for name, row in sorted(table.items()):
        cells = [row[lens].label if lens in row else NOT_RUN for lens in LENSES]
        rows.append(f"| {name} | {exercises.get(name, '')} | " + " | ".join(cells) + " |")
        for lens in LENSES:
            if lens in row and row[lens].failure_class is not None:
                failures.append(f"- `{name}` {lens} ({row[lens].failure_class}): {cause(row[lens])}")
    return "\n".join(rows) + "\n\nFailure causes (first line of the message / FFmpeg's first error line):\n\n" + \
        "\n".join(failures) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.expect", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write expected.json from the current lenses")
    parser.add_argument("--report", type=Path, help="also write the Markdown outcome table here")
    args = parser.parse_args(argv)
    manifest = load_manifest()
    paths, missing = corpus_paths(manifest, cache_dir())
    if not paths:
        print(f"expect: the corpus cache {cache_dir()} holds none of the files; run python -m tests.corpus.fetch")
        return 1
    with tempfile.TemporaryDirectory(prefix="draftlens-corpus-run-") as outdir:
        table = run_corpus(paths, Path(outdir))
    current = labels(table)
    expected = load_expected()
    changed = 0
    for name, row in current.items():
        before = expected.get(name)
        same = before is not None and all(accepts(before.get(lens), row[lens]) for lens in LENSES)
        changed += not same
        print(f"{'  ' if same else '!!'} {name}: " + ", ".join(f"{lens}={row[lens]}" for lens in LENSES))
        if before is not None and not same:
            print("   expected: " + ", ".join(f"{lens}={before.get(lens)}" for lens in LENSES))
        for lens in LENSES:
            if lens in table[name] and table[name][lens].failure_class is not None:
                print(f"     {lens}: {cause(table[name][lens])}")
    if missing:
        print(f"expect: {len(missing)} file(s) not in the cache, kept as they were: {', '.join(missing)}")
    if args.report:
        args.report.write_text(report(table, manifest), encoding="utf-8")
    if args.write:
        kept = {name: row for name, row in expected.items() if name in set(missing)}
        dump_expected({**kept, **{name: merged(expected.get(name), row) for name, row in current.items()}})
        print(f"expect: wrote {EXPECTED} ({changed} file(s) changed)")
    else:
        print(f"expect: {changed} file(s) differ from {EXPECTED.name}" + (" (use --write to update)" if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
