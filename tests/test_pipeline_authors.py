"""Issue 15: pipeline authors' own lenses in pipeline files, and mistakes caught before anything runs.

One test (or more) per numbered failing input of the issue; each would fail with the fix reverted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derived import Caps, Workspace, recompute_derived
from derived.command.cli import _demo_refusal, main
from derived.command.pipeline import PipelineError, load_pipeline
from derived.command.report import render_report
from drafts import Store, make_draft, pack_drafts
from lenses import Registry, default_registry, lens
from lenses.result import ExecutionResult

LENS_MODULE = '''
import attrs
from lenses import lens
from lenses.result import ExecutionResult

CALLS = []


@attrs.frozen
class WordsParams:
    field: str = "text"


@lens("my.words", version="1", params=WordsParams)
def words(draft, params):
    for word in draft.payload[params.field].split():
        yield {"word": word}


def _describe(draft, params):
    return {"engine": "fake", "argv": ["fake", draft.payload["path"]], "outputs": [draft.payload["path"] + ".out"]}


@lens("my.fakemedia", version="1", job_type="Video", describe=_describe)
def fakemedia(draft, params):
    CALLS.append(draft.payload["path"])
    if "broken" in draft.payload["path"]:
        return ExecutionResult(job_id=None, status="FAILED", failure_class="execution", message="moov atom not found")
    return ExecutionResult(job_id=None, status="COMPLETED",
                           outputs=[{"path": draft.payload["path"] + ".out", "size": 1, "fingerprint": "x"}])


@lens("my.strict", version="1")
def strict(draft, params):
    name = draft.payload["path"].rsplit("/", 1)[-1]
    if name.startswith("b"):
        raise ValueError(f"cannot read {name}")  # the line lensError details must name
    yield {"name": name}
'''
RAISE_LINE = LENS_MODULE.splitlines().index('        raise ValueError(f"cannot read {name}")  # the line lensError details must name') + 1


@pytest.fixture
def isolated_imports():
    """Lens modules imported by a test leave no trace on sys.path / sys.modules for the next test."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def lens_module(folder: Path) -> str:
    name = f"mylenses_{uuid.uuid4().hex[:10]}"
    (folder / f"{name}.py").write_text(LENS_MODULE)
    return name


def write(folder: Path, text: str, name: str = "pipeline.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def draftlens(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "derived", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def run_main(capsys, *args):
    try:
        code = main(list(args))
    except SystemExit as exc:  # what the console script turns into the exit status
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def clips(folder: Path, *names: str) -> None:
    (folder / "clips").mkdir(exist_ok=True)
    for n in names:
        (folder / "clips" / n).write_bytes(n.encode() * 10)


WORDS = """
    [pipeline]
    output = "out"
    lens_modules = ["{module}"]
    [[sources]]
    id = "notes"
    drafts = [{{ text = "tide gull" }}, {{ text = "pier" }}]
    [[lenses]]
    id = "words"
    lens = "my.words"
    input = "notes"
"""


# -- 1. a lens of your own, next to the pipeline file -------------------------------------------------------


def test_1_a_lens_module_next_to_the_pipeline_is_imported_and_its_lenses_run(tmp_path, capsys, isolated_imports):
    module = lens_module(tmp_path)
    path = write(tmp_path, WORDS.format(module=module))
    code, out, err = run_main(capsys, "plan", str(path))
    assert code == 0, err
    assert "words     my.words  2" in out
    code, out, err = run_main(capsys, "run", str(path))
    assert code == 0, out + err
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [o["payload"]["word"] for o in record["outputs"]["words"]] == ["tide", "gull", "pier"]
    pipeline = load_pipeline(path)
    assert pipeline.lens_modules == (module,) and "my.words" in pipeline.registry
    assert "my.words" not in default_registry  # the built-in registry is never changed


def test_1_worker_processes_import_the_pipelines_lens_module(tmp_path):
    module = lens_module(tmp_path)
    path = write(tmp_path, WORDS.format(module=module))
    out = draftlens("run", str(path), "--executor", "processes:2", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert summary["instances"][0]["outputs"] == 3 and summary["exit_code"] == 0


def test_1_without_lens_modules_the_unknown_lens_stops_plan_and_run_before_anything_runs(tmp_path):
    path = write(tmp_path, WORDS.format(module="x").replace('lens_modules = ["x"]\n', ""))
    for command in ("plan", "run"):
        out = draftlens(command, str(path))
        assert out.returncode == 2, out.stdout
        assert "lenses[0].lens: no lens 'my.words'" in out.stderr
        assert "list its module in [pipeline] lens_modules" in out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ('["no_such_module_xyz"]', "pipeline.lens_modules[0]: no module 'no_such_module_xyz' (looked in "),
        ('["bad name"]', "pipeline.lens_modules[0]: expected a module name such as 'mylenses'"),
        ('["json"]', "pipeline.lens_modules[0]: module 'json' "),
        ("[3]", "pipeline.lens_modules[0]: expected str, got int"),
        ('"mylenses"', "pipeline.lens_modules: expected list, got str"),
    ],
)
def test_1_lens_module_errors_name_the_key(tmp_path, isolated_imports, modules, message):
    path = write(tmp_path, f"[pipeline]\nlens_modules = {modules}\n")
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert message in str(info.value)


def test_1_a_module_that_raises_on_import_is_named_with_its_error_and_line(tmp_path, isolated_imports):
    (tmp_path / "brokenlenses.py").write_text("import attrs\n\nraise RuntimeError('half written')\n")
    path = write(tmp_path, '[pipeline]\nlens_modules = ["brokenlenses"]\n')
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert str(info.value).startswith("pipeline.lens_modules[0]: importing 'brokenlenses' failed: "
                                      "RuntimeError: half written (at ")
    assert str(info.value).endswith("brokenlenses.py:3)")


def test_1_two_lenses_with_one_id_are_an_error_naming_both(tmp_path, isolated_imports):
    (tmp_path / "clash.py").write_text(
        "from lenses import lens\n\n@lens('text.upper')\ndef mine(draft, params):\n    yield {}\n")
    path = write(tmp_path, '[pipeline]\nlens_modules = ["clash"]\n')
    with pytest.raises(PipelineError, match=r"lens 'text.upper' \(clash.mine\) clashes with lenses.builtins.upper_text"):
        load_pipeline(path)


def test_1_installed_packages_offer_lenses_through_the_entry_point_group(tmp_path, isolated_imports):
    site = tmp_path / "site"
    package = site / "epwords_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(LENS_MODULE.replace('"my.', '"ep.'))
    info = site / "epwords_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: epwords-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[draftlens.lenses]\nwords = epwords_pkg\n")
    sys.path.insert(0, str(site))
    path = write(tmp_path, WORDS.format(module="x").replace('lens_modules = ["x"]\n', "").replace("my.words", "ep.words"))
    pipeline = load_pipeline(path)
    state = recompute_derived(pipeline.store, registry=pipeline.registry)
    assert [d.payload["word"] for d in state.outputs("words")] == ["tide", "gull", "pier"]


def test_1_a_journaled_session_records_the_lens_module_and_replay_finds_it(tmp_path, isolated_imports):
    module = lens_module(tmp_path)
    sys.path.insert(0, str(tmp_path))
    mine = __import__(module)
    registry = default_registry.copy()
    registry.register(mine.words)
    root = tmp_path / "logs"
    ws = Workspace.open(root, "ana", "ana@desk", registry=registry)
    notes = ws.pack([{"text": "tide gull"}])
    ws.apply("words", "my.words", notes)
    ws.apply("up", "text.upper", notes)
    session_id = ws.session_id
    journal = root / "users" / "ana" / "sessions" / f"{session_id}.jsonl"
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    applied = [r for r in records if r.get("op") == "add_lens_instance"]
    assert applied[0]["lens_module"] == {"module": module, "path": str(tmp_path.resolve())}
    assert "lens_module" not in applied[1]  # built-in lenses need no record
    # A fresh process, started elsewhere: the module is found through the journal alone.
    out = draftlens("sessions", "replay", session_id, "--root", str(root), "--json", cwd=str(tmp_path.parent))
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout)
    assert state["warnings"] == [] and len(state["lens_instances"]["words"]["outputs"]) == 2
    assert state["schema_version"] == 1


# -- 2. a misspelt lens id ------------------------------------------------------------------------------------


def test_2_a_misspelt_lens_id_exits_2_with_did_you_mean_before_anything_runs(tmp_path, capsys):
    path = write(tmp_path, WORDS.format(module="x").replace('lens_modules = ["x"]\n', "").replace("my.words", "text.uper"))
    for command in ("plan", "run"):
        code, out, err = run_main(capsys, command, str(path))
        assert code == 2 and out == ""
        assert "draftlens: invalid pipeline: lenses[0].lens: no lens 'text.uper' (did you mean 'text.upper'?)" in err
    assert not (tmp_path / "out").exists()


# -- 3. params: typos, wrong types, media specs without required fields ---------------------------------------

BAD_PARAMS = """
    [pipeline]
    output = "out"
    [[sources]]
    id = "notes"
    drafts = [{ text = "a" }]
    [[lenses]]
    id = "up"
    lens = "text.upper"
    input = "notes"
    [[lenses]]
    id = "fmt"
    lens = "text.format"
    input = "notes"
    [lenses.params]
    templat = "{text}"
    [[lenses]]
    id = "up2"
    lens = "text.upper"
    input = "notes"
    params = { field = 3 }
    [[lenses]]
    id = "proxy"
    lens = "media.proxy"
    input = "notes"
"""


def test_3_every_params_mistake_exits_2_with_its_key_path_and_nothing_runs(tmp_path, capsys):
    path = write(tmp_path, BAD_PARAMS)
    for command in ("plan", "run"):
        code, out, err = run_main(capsys, command, str(path))
        assert code == 2 and out == ""
        lines = err.splitlines()
        assert lines == [
            "draftlens: invalid pipeline: lenses[1].params.templat: unknown param (did you mean 'template'?); "
            "allowed: into, template",
            "draftlens: invalid pipeline: lenses[2].params.field: expected str, got int 3",
            "draftlens: invalid pipeline: lenses[3].params: required params missing: codec, container, resolution, "
            "naming_template, output_directory; allowed: audio, codec, container, ffmpeg, ffmpeg_version, "
            "fps_explicit, fps_mode, naming_template, output_directory, resolution, threads",
        ]
    assert not (tmp_path / "out").exists()


def test_3_a_media_spec_the_engine_refuses_is_a_load_time_error(tmp_path):
    path = write(tmp_path, BAD_PARAMS.split("    [[lenses]]\n    id = \"fmt\"")[0] + textwrap.dedent("""
        [[lenses]]
        id = "proxy"
        lens = "media.proxy"
        input = "notes"
        [lenses.params]
        codec = "prores_proxy"
        container = "mp4"
        resolution = "half"
        naming_template = "{source_name}"
        output_directory = "out/p"
    """))
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert str(info.value).startswith("lenses[1].params: ProxySpec: codec 'prores_proxy' cannot go in container 'mp4'")


# -- 4. a str where a list belongs ----------------------------------------------------------------------------


def test_4_fields_given_as_a_str_is_refused_not_split_into_letters(tmp_path):
    path = write(tmp_path, BAD_PARAMS.split("    [[lenses]]\n    id = \"fmt\"")[0].replace(
        'lens = "text.upper"', 'lens = "fields.pick"\n    params = { fields = "text" }'))
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert str(info.value) == ("lenses[0].params.fields: expected a list, got str 'text' "
                               "(write ['text'] for a list of one)")


# -- 5. attrs validator messages: one short line --------------------------------------------------------------


def test_5_an_attrs_validator_message_is_one_short_line_without_the_attribute_repr(tmp_path):
    from tests.lenses_for_tests import repeat

    store = Store.empty().add_draft(make_draft({"text": "a"}))
    d = next(iter(store.drafts))
    store = store.add_lens_instance("rep", "test.repeat", d, {"times": "2"})
    registry = default_registry.copy()
    registry.register(repeat)
    (warning,) = recompute_derived(store, registry=registry).warnings
    assert warning.message == "lens 'test.repeat': params.times: expected int, got str '2'"
    from derived.plan import plan_session

    (row,) = plan_session(store, registry=registry).summary()
    assert row["problem"] == "invalidParams: " + warning.message and "Attribute(" not in row["problem"]


# -- 6. a glob that matches nothing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "message"),
    [
        ('"clipz/*.mp4"', "sources[0].glob: 'clipz/*.mp4' matches no file in "),
        ('["clips/*.mov", "clipz/*.mp4"]', "sources[0].glob[1]: 'clipz/*.mp4' matches no file in "),
        ('"clips/missing.mov"', "sources[0].glob: 'clips/missing.mov' matches no file in "),
    ],
)
def test_6_a_glob_or_file_that_matches_nothing_exits_2_naming_the_source(tmp_path, capsys, glob, message):
    clips(tmp_path, "a.mov")
    path = write(tmp_path, f'[[sources]]\nid = "clips"\nglob = {glob}\n')
    code, out, err = run_main(capsys, "plan", str(path))
    assert code == 2 and message in err and "(a typo, or a card not mounted?)" in err


# -- 7. caps never drop work silently --------------------------------------------------------------------------


def test_7_a_batch_the_caps_truncate_is_announced_by_plan_and_the_run_exits_3(tmp_path, capsys):
    drafts = ", ".join(f'{{ text = "w{i}" }}' for i in range(1000))
    path = write(tmp_path, f'[pipeline]\noutput = "out"\n[[sources]]\nid = "notes"\ndrafts = [{drafts}]\n'
                           '[[lenses]]\nid = "up"\nlens = "text.upper"\ninput = "notes"\n')
    code, out, err = run_main(capsys, "plan", str(path))
    assert code == 0
    assert ("caps may truncate: up: 1000 frames but a batch keeps 500 outputs (max_total_drafts_per_batch): "
            "if every frame yields an output, those past 500 are dropped") in out
    plan = json.loads(run_main(capsys, "plan", str(path), "--json")[1])
    assert plan["caps_notes"][0]["cap"] == "max_total_drafts_per_batch" and plan["schema_version"] == 1
    code, out, err = run_main(capsys, "run", str(path))
    assert code == 3, out
    assert "truncated: caps dropped work (exit 3)" in out
    assert "up: batch produced 1000 outputs; kept the first 500 (max_total_drafts_per_batch)" in out
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["truncated"][0]["code"] == "truncatedBatchOutputs"


def _media_pipeline(tmp_path, module, *names, caps=""):
    clips(tmp_path, *names)
    return write(tmp_path, f"""
        [pipeline]
        output = "out"
        lens_modules = ["{module}"]
        {caps}
        [[sources]]
        id = "clips"
        glob = "clips/*.mov"
        [[lenses]]
        id = "proxy"
        lens = "my.fakemedia"
        input = "clips"
    """.replace("\n        ", "\n"))


def test_7_media_jobs_whose_outputs_the_caps_would_drop_never_run(tmp_path, capsys, isolated_imports):
    module = lens_module(tmp_path)
    names = ["a.mov", "broken.mov", "c.mov", "d.mov", "e.mov", "f.mov", "g.mov"]
    path = _media_pipeline(tmp_path, module, *names, caps="[caps]\nmax_total_drafts_per_batch = 3")
    code, out, _ = run_main(capsys, "plan", str(path))
    assert "caps will truncate: proxy: 7 frames, one output each, but a batch keeps 3" in out
    code, out, _ = run_main(capsys, "run", str(path))
    calls = [Path(p).name for p in sys.modules[module].CALLS]
    assert calls == ["a.mov", "broken.mov", "c.mov", "d.mov"]  # broken.mov failed: d.mov replaced it
    assert code == 1  # a job failed; the truncation is still in the summary
    assert "3 frames (from frame 4 on) were not run, since their outputs would be dropped" in out
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [Path(o["payload"]["path"]).name for o in record["outputs"]["proxy"]] == ["a.mov.out", "c.mov.out",
                                                                                      "d.mov.out"]
    assert len(record["results"]) == 4  # no result for a job that never ran
    page = (tmp_path / "out" / "report.html").read_text()
    cards = {n: page.split(f"data-name='{n}'")[1].split("<div class=clip")[0] for n in names}
    for n in ("e.mov", "f.mov", "g.mov"):
        assert "dropped by caps: proxy" in cards[n] and "status-ok" not in cards[n] and "dropped (caps)" in cards[n]
    assert "status-ok" in cards["a.mov"] and "failed: proxy (execution)" in cards["broken.mov"]


CALLED: list = []


def _fake_describe(draft, params):
    return {"engine": "fake", "argv": ["fake", str(draft.payload["n"])], "outputs": [f"/out/{draft.payload['n']}"]}


@lens("test.fakemedia", version="1", job_type="Video", describe=_fake_describe)
def fake_media(draft, params):
    CALLED.append(draft.payload["n"])
    if draft.payload["fail"]:
        return ExecutionResult(job_id=None, status="FAILED", failure_class="execution", message="no")
    return ExecutionResult(job_id=None, status="COMPLETED", outputs=[{"n": draft.payload["n"]}])


@settings(max_examples=60, deadline=None)
@given(fails=st.lists(st.booleans(), max_size=24), keep=st.integers(0, 12), budget=st.integers(0, 14))
def test_7_capped_media_batches_keep_what_running_everything_would_keep_and_run_only_what_is_needed(
        fails, keep, budget):
    frames = pack_drafts([make_draft({"n": i, "fail": f}) for i, f in enumerate(fails)])
    store = Store.empty().add_draft(frames).add_lens_instance("m", "test.fakemedia", frames.id)
    registry = Registry((fake_media,))
    everything = recompute_derived(store, registry=registry)
    CALLED.clear()
    capped = recompute_derived(store, registry=registry,
                               caps=Caps(max_total_drafts_per_batch=keep, max_total_drafts_per_recompute=budget))
    limit = min(keep, budget)
    assert [d.payload for d in capped.outputs("m")] == [d.payload for d in everything.outputs("m")][:limit]
    kept = {d.payload["n"] for d in capped.outputs("m")}
    assert all(n in kept or fails[n] for n in CALLED)  # every job that ran was kept or failed
    stop, seen = (0 if limit == 0 else len(fails)), 0
    for index, failed in enumerate(fails):
        seen += not failed
        if limit and seen == limit:
            stop = index + 1
            break
    assert CALLED == list(range(stop))  # the fewest jobs, in frame order
    assert any(w.code.startswith("truncated") for w in capped.warnings) == (stop < len(fails))


def test_7_the_report_never_calls_a_clip_the_caps_dropped_ok(tmp_path):
    paths = [make_draft({"path": f"/card/{n}.mov", "size": 1, "fingerprint": n, "n": i, "fail": False})
             for i, n in enumerate("abcd")]
    carrier = pack_drafts(paths)
    store = Store.empty().add_draft(carrier).add_lens_instance("m", "test.fakemedia", carrier.id)

    class Pipeline:
        sources = (("clips", carrier.id, 4),)

    Pipeline.store = store
    state = recompute_derived(store, registry=Registry((fake_media,)), caps=Caps(max_total_drafts_per_batch=2))
    page = render_report(state, Pipeline)
    assert page.count("class=status-ok>") == 2 and page.count("dropped by caps: m") == 2
    assert "Caps dropped work: m: batch of 4 frames keeps at most 2 outputs" in page
    state = recompute_derived(store, registry=Registry((fake_media,)), caps=Caps(max_frames_evaluated=3))
    page = render_report(state, Pipeline)
    assert page.count("class=status-ok>") == 3 and page.count("dropped by caps: m") == 1
    assert page.split("data-name='d.mov'")[1].count("dropped by caps: m") == 1


# -- 8. failures name the clip, instance and frame; lensError says where in the lens ------------------------


def test_8_failures_name_the_clip_and_lens_errors_their_file_and_line(tmp_path, capsys, isolated_imports):
    module = lens_module(tmp_path)
    path = _media_pipeline(tmp_path, module, "a.mov", "b.mov", "broken.mov")
    text = path.read_text() + '\n[[lenses]]\nid = "strict"\nlens = "my.strict"\ninput = "clips"\n'
    path.write_text(text)
    code, out, _ = run_main(capsys, "run", str(path))
    assert code == 1
    assert ("[lensError] instance 'strict', frame 1, clip b.mov: ValueError: cannot read b.mov "
            f"(at {module}.py:{RAISE_LINE})") in out
    assert "[executionFailed] instance 'proxy', frame 2, clip broken.mov: execution failure: moov atom" in out
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    (failed,) = [r for r in record["results"] if r["status"] == "FAILED"]
    assert (failed["instance"], failed["frame"], failed["source"]["name"]) == ("proxy", 2, "broken.mov")
    assert failed["source"]["path"] == str(tmp_path / "clips" / "broken.mov")
    assert all(r["instance"] == "proxy" and r["source"]["name"] for r in record["results"])
    errors = [w for w in record["warnings"] if w["code"] == "lensError"]
    details = errors[0]["details"]
    assert details["exception_type"] == "ValueError" and details["exception_message"] == "cannot read b.mov"
    assert (details["lens_file"], details["lens_line"]) == (f"{module}.py", RAISE_LINE)
    assert details["traceback"] == [f"{module}.py:{RAISE_LINE} in strict"]
    assert errors[0]["source"]["name"] == "b.mov"
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<td class=clip-name>broken.mov</td>" in page


# -- 9. --version, run --json, schema_version, logging, closed pipes -----------------------------------------


def test_9_version_run_json_schema_versions_and_log_levels(tmp_path, capsys, isolated_imports):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"draftlens {version('draftlens')}"
    module = lens_module(tmp_path)
    path = write(tmp_path, WORDS.format(module=module))
    code, out, err = run_main(capsys, "run", str(path), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["schema_version"] == 1 and summary["kind"] == "draftlens.run-summary"
    assert summary["exit_code"] == 0 and summary["files"]["run_json"].endswith("run.json")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["schema_version"] == 1
    code, out, err = run_main(capsys, "plan", str(path), "-v")
    assert f"draftlens: INFO: draftlens.pipeline: loaded {path}: 1 sources, 1 lens instances" in err
    code, out, err = run_main(capsys, "plan", str(path), "-vv")
    assert "DEBUG: draftlens.lenses: imported" in err
    code, out, err = run_main(capsys, "run", str(path), "-q")
    assert code == 0 and out == "" and err == ""


def test_9_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    drafts = ", ".join(f'{{ text = "w{i}" }}' for i in range(400))
    path = write(tmp_path, f'[[sources]]\nid = "n"\ndrafts = [{drafts}]\n[[lenses]]\nid = "u"\nlens = "text.upper"\n'
                           'input = "n"\n')
    proc = subprocess.Popen([sys.executable, "-m", "derived", "plan", str(path), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first = [proc.stdout.readline() for _ in range(2)]  # what `| head -2` reads
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert first[0] == b"{\n" and "Traceback" not in err and err == ""


# -- 10. demo never overwrites a folder it did not make ---------------------------------------------------------


def test_10_demo_refuses_a_non_empty_folder_unless_forced(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pipeline.toml").write_text("# my own pipeline\n")
    out = draftlens("demo", str(mine))
    assert out.returncode == 2
    assert f"demo: {mine} is not empty (pipeline.toml); the demo writes pipeline.toml, clips/ and out/" in out.stderr
    assert "--force" in out.stderr
    assert (mine / "pipeline.toml").read_text() == "# my own pipeline\n" and not (mine / "clips").exists()
    assert _demo_refusal(mine, force=True) is None
    assert _demo_refusal(tmp_path / "new", force=False) is None
    (tmp_path / "afile").write_text("x")
    assert "is a file, not a folder" in _demo_refusal(tmp_path / "afile", force=True)


# -- README: "Writing a pipeline" works as written ----------------------------------------------------------------


def test_the_readme_walkthrough_from_a_custom_lens_to_run_works_as_written(tmp_path, capsys, isolated_imports):
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Writing a pipeline", 1)[1].split("\n## ", 1)[0]
    (tmp_path / "mywords.py").write_text(re.search(r"```python\n(# mywords.py\n.*?)```", section, re.S).group(1))
    (tmp_path / "pipeline.toml").write_text(re.search(r"```toml\n(# pipeline.toml\n.*?)```", section, re.S).group(1))
    shell = re.search(r"```\n(\$ draftlens plan pipeline.toml\n.*?)```", section, re.S).group(1)
    plan_text, run_text = shell.split("$ draftlens run pipeline.toml\n")
    code, out, _ = run_main(capsys, "plan", str(tmp_path / "pipeline.toml"))
    assert code == 0 and out == plan_text.split("\n", 1)[1]
    code, out, _ = run_main(capsys, "run", str(tmp_path / "pipeline.toml"))
    assert code == 0 and out.startswith(run_text.rsplit("...\n", 1)[0])
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [o["payload"]["word"] for o in record["outputs"]["loud"]] == [
        "THE", "TIDE", "OUT", "GULLS", "OVER", "THE", "PIER"]
