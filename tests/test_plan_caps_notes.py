"""``draftlens plan`` says up front which caps will (or may) truncate, OutputOf instances included.

Review 18, item 7: with ``input = "probe"`` chains and a recompute cap that the
first two instances fill, the plan gave no note at all for the instances over
``OutputOf`` and the run then exited 3. The notes now come from bounds walked
in plan order (``derived.command.truncation``); the property test at the end
checks them against what recompute actually truncates.
"""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derived import Caps, recompute_derived
from derived.command.truncation import caps_notes
from derived.plan import build_plan
from drafts import Store, make_draft, pack_drafts
from drafts.carrier import carrier_frames
from drafts.store import OutputOf
from lenses import Registry, lens
from lenses.result import ExecutionResult

from .test_pipeline_authors import clips, isolated_imports, run_main, write  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("isolated_imports")  # the lens modules the pipelines import

CHAIN_LENSES = '''
import attrs
from lenses import lens
from lenses.result import ExecutionResult

CALLS = []


@attrs.frozen
class Tag:
    tag: str = "x"


def _describe(draft, params):
    path = draft.payload["path"]
    return {"engine": "fake", "argv": ["fake", path], "outputs": [path + "." + params.tag]}


@lens("chain.media", version="1", job_type="Video", params=Tag, describe=_describe)
def media(draft, params):
    CALLS.append(draft.payload["path"] + "." + params.tag)
    return ExecutionResult(job_id=None, status="COMPLETED",
                           outputs=[{"path": draft.payload["path"] + "." + params.tag, "size": 1, "fingerprint": "x"}])


@lens("chain.words", version="1")
def words(draft, params):
    for word in draft.payload["text"].split():
        yield {"word": word}
'''


def chain_pipeline(tmp_path, caps: str, n_clips: int = 7):
    (tmp_path / "chainlenses.py").write_text(CHAIN_LENSES)
    clips(tmp_path, *[f"c{i}.mov" for i in range(n_clips)])
    lenses = "".join(
        f'[[lenses]]\nid = "{name}"\nlens = "chain.media"\ninput = "{source}"\nparams = {{ tag = "{name}" }}\n'
        for name, source in (("probe", "clips"), ("proxy", "probe"), ("poster", "probe"), ("audio", "probe")))
    return write(tmp_path, '[pipeline]\noutput = "out"\nlens_modules = ["chainlenses"]\n'
                           f'[caps]\n{caps}\n[[sources]]\nid = "clips"\nglob = "clips/*.mov"\n{lenses}')


def notes_of(capsys, path, *flags):
    code, out, err = run_main(capsys, "plan", str(path), "--json", *flags)
    assert code == 0, err
    return json.loads(out)["caps_notes"]


def test_7_outputof_instances_the_recompute_cap_leaves_nothing_get_a_will_note_and_the_run_exits_3(
        tmp_path, capsys):
    path = chain_pipeline(tmp_path, "max_total_drafts_per_recompute = 14")
    code, out, _ = run_main(capsys, "plan", str(path), "--no-cache")
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("caps ")]
    assert lines == [
        f"caps will truncate: {name}: 7 outputs, one per frame (the outputs of 'probe'), but none of the "
        "recompute's 14 outputs (max_total_drafts_per_recompute) are left for it after the instances before it: "
        "it keeps none" for name in ("poster", "audio")
    ]
    notes = notes_of(capsys, path, "--no-cache")
    assert [(n["instance"], n["cap"], n["certain"]) for n in notes] == [
        ("poster", "max_total_drafts_per_recompute", True), ("audio", "max_total_drafts_per_recompute", True)]


def test_7_a_cap_that_fits_exactly_gives_no_note(tmp_path, capsys):
    path = chain_pipeline(tmp_path, "max_total_drafts_per_recompute = 28")
    assert notes_of(capsys, path, "--no-cache") == []


def test_7_a_partly_filled_budget_names_how_much_is_left(tmp_path, capsys):
    path = chain_pipeline(tmp_path, "max_total_drafts_per_recompute = 17")
    poster, audio = notes_of(capsys, path, "--no-cache")
    assert poster["instance"] == "poster" and poster["certain"]
    assert "but only 3 of the recompute's 17 outputs (max_total_drafts_per_recompute) are left" in poster["message"]
    assert poster["message"].endswith("it keeps at most 3")
    assert audio["instance"] == "audio" and audio["certain"] and audio["message"].endswith("it keeps none")


def test_7_frames_past_max_frames_evaluated_of_an_outputof_instance_are_announced(tmp_path, capsys,
                                                                                 ):
    path = chain_pipeline(tmp_path, "max_frames_evaluated = 5", n_clips=5)
    (tmp_path / "clips" / "c5.mov").write_bytes(b"x" * 10)  # probe: 6 frames, but only 5 evaluated
    notes = notes_of(capsys, path, "--no-cache")
    assert [(n["instance"], n["cap"], n["certain"]) for n in notes] == [("probe", "max_frames_evaluated", True)]
    # the probe keeps 5, so its readers have 5 frames: nothing more to say about them
    path.write_text(path.read_text().replace("max_frames_evaluated = 5", "max_frames_evaluated = 5\n"
                                             "max_total_drafts_per_batch = 4"))
    notes = notes_of(capsys, path, "--no-cache")
    assert [(n["instance"], n["cap"], n["certain"]) for n in notes] == [
        ("probe", "max_frames_evaluated", True), ("probe", "max_total_drafts_per_batch", True)]


def test_7_outputof_a_pure_lens_gets_a_may_note_naming_the_bounds(tmp_path, capsys):
    (tmp_path / "chainlenses.py").write_text(CHAIN_LENSES)
    path = write(tmp_path, '[pipeline]\noutput = "out"\nlens_modules = ["chainlenses"]\n'
                           '[caps]\nmax_total_drafts_per_batch = 3\nmax_drafts_emitted_per_frame = 4\n'
                           '[[sources]]\nid = "notes"\ndrafts = [{ text = "a b" }, { text = "c" }]\n'
                           '[[lenses]]\nid = "words"\nlens = "chain.words"\ninput = "notes"\n'
                           '[[lenses]]\nid = "loud"\nlens = "text.upper"\ninput = "words"\nparams = { field = "word" }\n')
    notes = notes_of(capsys, path, "--no-cache")
    assert [(n["instance"], n["cap"], n["certain"]) for n in notes] == [
        ("words", "max_total_drafts_per_batch", False), ("loud", "max_total_drafts_per_batch", False)]
    assert notes[0]["message"] == (
        "2 frames, up to 4 outputs each (max_drafts_emitted_per_frame), but a batch keeps 3 "
        "(max_total_drafts_per_batch): if they yield more than 3 in all, those past 3 are dropped")
    assert notes[1]["message"].startswith("0 to 3 frames (the outputs of 'words'), up to 4 outputs each")
    code, out, _ = run_main(capsys, "run", str(path), "--json")  # words yields 3: it fits
    assert code == 0, out
    # With the cache, the plan knows what words yields: 3 outputs, so loud has 3 frames for certain.
    notes = notes_of(capsys, path)
    assert [(n["instance"], n["cap"], n["certain"]) for n in notes] == [("loud", "max_total_drafts_per_batch", False)]
    assert notes[0]["message"].startswith("3 frames (the outputs of 'words'), up to 4 outputs each")


def test_7_outputs_the_cache_knows_make_a_pure_truncation_certain(tmp_path, capsys):
    (tmp_path / "chainlenses.py").write_text(CHAIN_LENSES)
    path = write(tmp_path, '[pipeline]\noutput = "out"\nlens_modules = ["chainlenses"]\n'
                           '[caps]\nmax_total_drafts_per_batch = 4\nmax_drafts_emitted_per_frame = 3\n'
                           '[[sources]]\nid = "notes"\ndrafts = [{ text = "a b c" }, { text = "d e" }]\n'
                           '[[lenses]]\nid = "words"\nlens = "chain.words"\ninput = "notes"\n')
    (before,) = notes_of(capsys, path)
    assert not before["certain"]
    code, _, _ = run_main(capsys, "run", str(path))
    assert code == 3
    (after,) = notes_of(capsys, path)
    assert after["certain"] and after["message"] == (
        "2 frames yield 5 outputs (the cache holds them), but a batch keeps 4 (max_total_drafts_per_batch): "
        "those past 4 are dropped")
    code, out, _ = run_main(capsys, "plan", str(path))
    assert "caps will truncate: words: 2 frames yield 5 outputs (the cache holds them)" in out


# -- the notes against what recompute does -------------------------------------------------------------------


@attrs.frozen
class _Tag:
    tag: str = "x"


def _media_describe(draft, params):
    path = draft.payload["path"]
    return {"engine": "fake", "argv": ["fake", path], "outputs": [f"{path}.{params.tag}"]}


@lens("prop.media", version="1", job_type="Video", params=_Tag, describe=_media_describe)
def _media(draft, params):
    return ExecutionResult(job_id=None, status="COMPLETED",
                           outputs=[{"path": f"{draft.payload['path']}.{params.tag}", "size": 1, "fingerprint": "x"}])


@lens("prop.pure", version="1", params=_Tag)
def _pure(draft, params):
    n = draft.payload.get("n", 1)
    for j in range(n):
        yield {"path": f"{draft.payload['path']}.{params.tag}{j}", "n": (n + j) % 4}


@lens("prop.whole", version="1", params=_Tag, batch_behavior="disable")
def _whole(draft, params):
    frames = carrier_frames(draft) or ()
    for j in range(min(len(frames), 3)):
        yield {"path": f"/w/{params.tag}{j}", "n": j}


_REGISTRY = Registry((_media, _pure, _whole))


@st.composite
def _pipelines(draw):
    clips_n = draw(st.lists(st.integers(0, 3), max_size=6))
    carrier = pack_drafts([make_draft({"path": f"/v/c{i}.mov", "n": n}) for i, n in enumerate(clips_n)])
    single = make_draft({"path": "/v/one.mov", "n": draw(st.integers(0, 3))})
    store = Store.empty().add_draft(carrier).add_draft(single)
    names: list[str] = []
    for index in range(draw(st.integers(1, 5))):
        name = f"i{index}"
        lens_id = draw(st.sampled_from(["prop.media", "prop.pure", "prop.whole"]))
        sources = [carrier.id, single.id] + [OutputOf(n) for n in names]
        source = draw(st.sampled_from(sources))
        store = store.add_lens_instance(name, lens_id, source, {"tag": name})
        names.append(name)
    caps = Caps(max_frames_evaluated=draw(st.integers(0, 6)), max_total_drafts_per_batch=draw(st.integers(0, 8)),
                max_total_drafts_per_recompute=draw(st.integers(0, 16)),
                max_drafts_emitted_per_frame=draw(st.integers(0, 3)))
    return store, caps


_CAP_OF = {"truncatedFrames": "max_frames_evaluated", "truncatedBatchOutputs": "max_total_drafts_per_batch",
           "truncatedRecomputeOutputs": "max_total_drafts_per_recompute",
           "truncatedFrameOutputs": "max_drafts_emitted_per_frame"}


@settings(max_examples=100, deadline=None, report_multiple_bugs=False)
@given(_pipelines())
def test_7_every_truncation_is_announced_and_every_will_note_comes_true(pipeline):
    """Property: (instance, cap) of each truncation of a run is in the plan's notes; each ``will`` happens.

    Left out, since no plan can foresee them: a pure lens yielding more than
    its own per-call limit (``max_drafts_emitted_per_frame`` for a frame,
    ``max_total_drafts_per_recompute`` for one call). No job fails here.
    """
    store, caps = pipeline
    session, _, (_, singles) = build_plan(store, _REGISTRY, caps, None)
    notes = caps_notes(session, caps, singles)
    noted = {(n["instance"], n["cap"]) for n in notes}
    state = recompute_derived(store, registry=_REGISTRY, caps=caps)
    lens_of = {i: inst.lens_id for i, inst in store.lens_instances.items()}
    truncated: set[tuple[str, str]] = set()
    for w in state.warnings:
        if w.code not in _CAP_OF:
            continue
        pure_overflow = lens_of[w.lens_instance_id] != "prop.media" and (
            w.code == "truncatedFrameOutputs" and caps.max_drafts_emitted_per_frame > 0
            or "the call emitted more than" in w.message)
        if not pure_overflow:
            truncated.add((w.lens_instance_id, _CAP_OF[w.code]))
    assert truncated <= noted, (truncated - noted, notes, state.warnings)
    hit = {i for i, _ in truncated} | {w.lens_instance_id for w in state.warnings if w.code in _CAP_OF}
    for note in notes:
        if note["certain"]:
            assert note["instance"] in hit, (note, state.warnings)


@pytest.mark.parametrize("per_frame", [0])
def test_7_a_per_frame_cap_of_zero_is_certain_for_a_media_batch(tmp_path, capsys, per_frame):
    path = chain_pipeline(tmp_path, f"max_drafts_emitted_per_frame = {per_frame}", n_clips=2)
    notes = notes_of(capsys, path, "--no-cache")
    assert notes[0] == {"instance": "probe", "cap": "max_drafts_emitted_per_frame", "certain": True,
                        "message": "2 frames but a frame keeps 0 outputs (max_drafts_emitted_per_frame = 0): "
                                   "every output they yield is dropped"}


def test_7_the_run_of_that_pipeline_truncates_what_the_plan_said_and_exits_3(tmp_path, capsys):
    path = chain_pipeline(tmp_path, "max_total_drafts_per_recompute = 14")
    code, out, _ = run_main(capsys, "run", str(path), "--no-cache", "--json")
    assert code == 3
    truncated = {t["instance"] for t in json.loads(out)["truncated"]}
    assert truncated == {"poster", "audio"}


def test_7_the_run_of_a_pipeline_without_notes_truncates_nothing(tmp_path, capsys):
    path = chain_pipeline(tmp_path, "max_total_drafts_per_recompute = 28")
    code, out, _ = run_main(capsys, "run", str(path), "--no-cache", "--json")
    assert code == 0 and json.loads(out)["truncated"] == []
