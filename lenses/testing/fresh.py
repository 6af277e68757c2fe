"""Re-running a lens in a fresh Python process with another hash seed (``deterministic``).

``_run_fresh_process`` sends the examples to ``python -c`` running
``_fresh_process_main``, which calls the lens again and writes each outcome's
signature; a lens whose outputs depend on set/dict order, ``hash()`` or
per-process state gives other signatures there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import orjson

from drafts import draft_from_json

from ..lens import FrameContext, Lens, _lookup
from .ambient import _ambient
from .calls import _INSTANCE, _call, _engine_params
from .rules import LensCheckError


def _other_hash_seed() -> str:
    current = os.environ.get("PYTHONHASHSEED")
    return "20241" if current != "20241" else "20242"


def _run_fresh_process(lens: Lens, request: dict) -> list:
    paths = [os.path.abspath(p or os.curdir) for p in sys.path]
    env = {**os.environ, "PYTHONHASHSEED": _other_hash_seed(), "PYTHONPATH": os.pathsep.join(paths)}
    with tempfile.TemporaryDirectory(prefix="draftlens-check-") as tmp:
        out_path = os.path.join(tmp, "results.json")
        request = {**request, "out": out_path}
        code = "from lenses.testing.fresh import _fresh_process_main; _fresh_process_main()"
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code], input=orjson.dumps(request), capture_output=True, env=env,
                timeout=600, check=False,
            )
        except subprocess.TimeoutExpired:
            raise LensCheckError(f"lens {lens.id!r}: the fresh-process run took over 600 s") from None
        if proc.returncode != 0 or not os.path.exists(out_path):
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-8:]
            msg = (f"lens {lens.id!r}: the fresh Python process that re-runs the lens failed "
                   f"(exit code {proc.returncode}):\n" + "\n".join(tail))
            raise LensCheckError(msg)
        with open(out_path, "rb") as f:
            return orjson.loads(f.read())


def _fresh_process_main() -> None:
    """Entry point of the fresh process: run the examples, write their signatures."""
    request = orjson.loads(sys.stdin.buffer.read())
    lens = _lookup(*request["lens"])
    context = FrameContext(_INSTANCE, None, None) if request["context"] else None
    out = []
    for data, text in request["examples"]:
        draft = draft_from_json(text) if text is not None else None
        with _ambient(0, lens):
            outcome, _ = _call(lens, _engine_params(lens, data), draft, context)
        out.append([outcome.signature(), outcome.describe()])
    with open(request["out"], "wb") as f:
        f.write(orjson.dumps(out))
