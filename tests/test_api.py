"""The public surface is what DESIGN.md names, and the layering holds."""

import ast
import pathlib

import derived
import drafts
import lenses

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_drafts_exports():
    assert set(drafts.__all__) == {"LensInstance"} | {
        "Draft", "DraftError", "OutputOf", "Store", "StoreError", "draft_from_json", "is_packed_carrier",
        "make_draft", "pack_drafts", "media_draft", "MediaError",
    }
    assert all(hasattr(drafts, n) for n in drafts.__all__)


def test_lenses_exports():
    assert set(lenses.__all__) == {"Lens", "Output", "Registry", "default_registry", "lens"} | {
        "DuplicateLensError", "LensError", "ParamsError", "UnknownLensError",
    }
    assert all(hasattr(lenses, n) for n in lenses.__all__)


def test_derived_exports():
    assert set(derived.__all__) == {
        "BatchSummary", "Caps", "DerivedState", "DerivedWarning", "ExecutionResult", "recompute_derived",
        "plan_session", "BatchPlanSession", "SessionId", "SessionJobId", "SessionJob", "Memo", "Monitor",
        "SerialExecutor", "ProcessExecutor", "DaskExecutor", "Workspace",
    }
    assert all(hasattr(derived, n) for n in derived.__all__)


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_data_flows_one_way():
    for path in (ROOT / "drafts").rglob("*.py"):
        assert not _imports(path) & {"lenses", "derived"}, f"{path} must not import lenses/derived"
    for path in (ROOT / "lenses").rglob("*.py"):
        assert "derived" not in _imports(path), f"{path} must not import derived"


def test_the_recompute_stages_import_one_way():
    # plan -> schedule -> assemble: a stage never imports one that comes after it, nor recompute.
    later = {"derived/plan.py": {"schedule", "assemble", "recompute"},
             "derived/assemble.py": {"schedule", "recompute", "executors"},
             "derived/schedule.py": {"recompute"},
             "derived/order.py": {"plan", "schedule", "assemble", "recompute"}}
    for rel, banned in later.items():
        text = (ROOT / rel).read_text()
        for name in banned:
            assert f"from .{name} import" not in text and f"derived.{name}" not in text.replace(
                f"``derived.{name}``", ""), f"{rel} imports {name}"


CORE = ["drafts/canonical.py", "drafts/draft.py", "drafts/carrier.py", "drafts/store.py", "lenses/lens.py",
        "lenses/params.py", "lenses/builtins.py", "derived/recompute.py", "derived/evaluate.py",
        "derived/plan.py", "derived/schedule.py", "derived/assemble.py", "derived/state.py", "derived/caps.py", "derived/ids.py"]


def test_the_evaluation_core_imports_no_clock_randomness_or_processes():
    for rel in CORE:
        bad = _imports(ROOT / rel) & {"subprocess", "time", "random", "uuid", "datetime", "os"}
        assert not bad, f"{rel} imports {bad}"
