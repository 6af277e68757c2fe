"""Module-level lenses for the durable-store tests (importable in a child process)."""

from __future__ import annotations

import os
from pathlib import Path

from lenses import lens
from lenses.result import COMPLETED, ExecutionResult


def _describe(draft, params, context=None):
    return {"engine": "test-engine", "outputs": [], "argv": ["write", draft.payload["name"]]}


@lens("test.writes", version="1", job_type="Video", describe=_describe)
def writes(draft, params, context=None):
    """A media-like job: writes one file into ``payload['dir']`` and returns an ExecutionResult.

    It logs each run (a line in ``dir/runs.log``) and, while ``dir/die-at-<name>`` exists, kills
    its own process (like SIGKILL) instead of finishing, so a test can stop a run mid-way.
    """
    folder = Path(draft.payload["dir"])
    name = draft.payload["name"]
    if (folder / f"die-at-{name}").exists():
        os._exit(9)
    with open(folder / "runs.log", "a") as log:
        log.write(name + "\n")
    out = folder / f"{name}.out"
    out.write_text(name)
    return ExecutionResult(job_id=None, status=COMPLETED, command=("write", name), engine="test-engine",
                           exit_code=0, outputs=[{"path": str(out), "size": out.stat().st_size}])
