"""The public surface is what DESIGN.md names, and the layering holds."""

import ast
import importlib
import pathlib

import pytest

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


# Every name DESIGN.md gives, imported from where DESIGN.md puts it (issue 18: moving modules
# around must never move one of these).
DESIGN_NAMES = {
    "drafts": ["make_draft", "Draft", "DraftError", "draft_from_json", "pack_drafts", "is_packed_carrier",
               "media_draft", "Store", "StoreError", "OutputOf"],
    "drafts.journal": ["replay"],
    "drafts.sessions": ["SessionManager", "SessionEvent", "SessionError", "SessionNotFound",
                        "SessionUserMismatch", "SessionAlreadyClosed", "ActiveSessionExists"],
    "lenses": ["lens", "Lens", "Output", "Registry", "default_registry"],
    "lenses.media": ["probe", "proxy", "thumbnail", "audio", "ProxySpec"],
    "lenses.testing": ["json_values", "drafts", "carriers", "stores", "check_lens"],
    "derived": ["recompute_derived", "Caps", "DerivedState", "DerivedWarning", "BatchSummary", "plan_session",
                "BatchPlanSession", "SessionId", "SessionJob", "SessionJobId", "Memo", "Monitor",
                "SerialExecutor", "ProcessExecutor", "DaskExecutor", "ExecutionResult", "Workspace"],
}

# lenses.testing's public names before it became a package (issue 18): all still importable from it.
TESTING_NAMES = {"BUILTIN_LENS_PARAMS", "RULES", "LensCheckError", "LensCheckReport", "LensContractError",
                 "carriers", "check_lens", "drafts", "frames", "json_values", "keys", "object_drafts",
                 "scalars", "stores"}


@pytest.mark.parametrize("module", sorted(DESIGN_NAMES))
def test_every_design_name_imports_from_where_design_puts_it(module):
    imported = importlib.import_module(module)
    missing = [name for name in DESIGN_NAMES[module] if not hasattr(imported, name)]
    assert not missing, f"DESIGN.md puts {missing} in {module}, which lacks them"
    for name in DESIGN_NAMES[module]:
        exec(f"from {module} import {name}", {})  # the import statement users write works too


def test_lenses_testing_keeps_every_public_name():
    import lenses.testing

    assert set(lenses.testing.__all__) == TESTING_NAMES
    missing = [name for name in TESTING_NAMES if not hasattr(lenses.testing, name)]
    assert not missing, f"lenses.testing lacks {missing}"


def test_the_draftlens_console_script_resolves_to_the_command():
    from importlib.metadata import entry_points

    from derived.command.cli import main

    scripts = [ep for ep in entry_points(group="console_scripts") if ep.name == "draftlens"]
    assert len(scripts) == 1, f"expected one 'draftlens' console script, found {scripts}"
    assert scripts[0].value == "derived.command.cli:main"
    assert scripts[0].load() is main


def test_the_engine_never_imports_the_command():
    # derived/ is the engine; derived/command/ (the draftlens command and its parts) uses it, never
    # the other way round.
    for path in (ROOT / "derived").glob("*.py"):
        if path.name == "__main__.py":  # `python -m derived` runs the command
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                absolute = node.module or ""
                if node.level == 1:
                    absolute = f"derived.{absolute}" if absolute else "derived"
                    names = [f"{absolute}.{a.name}" for a in node.names] if not node.module else [absolute]
                else:
                    names = [absolute]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bad = [n for n in names if n == "derived.command" or n.startswith("derived.command.")]
            assert not bad, f"{path.relative_to(ROOT)} (the engine) imports {bad} (the command)"
