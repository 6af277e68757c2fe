"""Media jobs never destroy, overwrite or misreport what they did not make (issue: media safety).

Every numbered input of the issue is a test here, on camera-card layouts:
sibling sources with one stem, damaged clips beside good ones, cards going
offline, two cards with the same clip names, brackets in project folders,
swapped takes, and SIGTERM/SIGHUP mid-encode. A hypothesis test then builds
random card layouts and checks, file by file, that nothing draftlens did not
write was changed or deleted and that every COMPLETED result matches the
bytes on disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derived import plan_session, recompute_derived
from drafts import Store, media_draft, pack_drafts
from drafts.files import create_temporary, publish, write_file_atomically
from lenses.media import AudioSpec, ProxySpec, ThumbnailSpec, proxy
from lenses.media.ledger import LEDGER_DIRECTORY, owner_problem
from tests.test_cli import slow_proxy_pipeline

pytestmark = pytest.mark.ffmpeg


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every regular file under ``root`` (draftlens's ledger left out)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and LEDGER_DIRECTORY not in path.parts:
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def proxy_store(frames, spec, instance="proxy"):
    carrier = pack_drafts(frames)
    return Store.empty().add_draft(carrier).add_lens_instance(instance, "media.proxy", carrier.id, spec)


def failures(state):
    return {state.job_origins[j][1]: r for j, r in state.results.items() if r.status == "FAILED"}


# ---------------------------------------------------------------- 1. sibling sources


def test_a_proxy_never_overwrites_a_sibling_source_with_the_same_stem(media, tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    shutil.copyfile(media.av, card / "take.mov")  # the camera original
    shutil.copyfile(media.small, card / "take.mp4")
    before = snapshot(tmp_path)
    spec = ProxySpec("prores_proxy", "mov", "half", "{source_name}", str(card))
    store = proxy_store([media_draft(card / "take.mov"), media_draft(card / "take.mp4")], spec)
    plan = plan_session(store)
    assert all(plan.job(j).decision == "run" for j in plan.job_ids)
    state = recompute_derived(store)
    failed = failures(state)
    assert sorted(failed) == [0, 1] and all(r.failure_class == "validation" for r in failed.values())
    assert "would overwrite its own source" in failed[0].message
    assert f"would replace the media source {card / 'take.mov'}" in failed[1].message
    assert snapshot(tmp_path) == before and sorted(os.listdir(card)) == ["take.mov", "take.mp4"]


def test_audio_never_overwrites_a_sibling_master(media, tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    shutil.copyfile(media.audio_only, folder / "song.wav")  # the master
    subprocess.run([media.binary, "-v", "error", "-nostdin", "-i", media.audio_only, str(folder / "song.flac")],
                   check=True)
    before = snapshot(tmp_path)
    carrier = pack_drafts([media_draft(folder / "song.flac")])
    spec = AudioSpec("pcm_s16le", "same", "same", "wav", "{source_name}", str(folder))
    store = Store.empty().add_draft(carrier).add_draft(media_draft(folder / "song.wav")).add_lens_instance(
        "audio", "media.audio", carrier.id, spec)
    (result,) = recompute_derived(store).results.values()
    assert result.failure_class == "validation" and f"media source {folder / 'song.wav'}" in result.message
    assert snapshot(tmp_path) == before
    # Not in the store, the master is still a file draftlens did not write: refused at run time too.
    alone = recompute_derived(Store.empty().add_draft(carrier).add_lens_instance("audio", "media.audio", carrier.id,
                                                                                spec))
    (result,) = alone.results.values()
    assert result.failure_class == "validation" and "draftlens did not write it" in result.message
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- 2. failures delete nothing


def test_a_failing_job_deletes_nothing_at_its_final_path(media, tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    shutil.copyfile(media.av, card / "shot.mov")
    (card / "shot.mp4").write_bytes(bytes(20000))  # damaged (zeros: random bytes may hold an MP3 frame sync and probe)
    before = snapshot(tmp_path)
    spec = ProxySpec("prores_proxy", "mov", "half", "{source_name}", str(card))
    state = recompute_derived(proxy_store([media_draft(card / "shot.mov"), media_draft(card / "shot.mp4")], spec))
    assert sorted(failures(state)) == [0, 1]
    assert snapshot(tmp_path) == before


def test_an_execution_failure_leaves_an_earlier_output_of_ours_in_place(media, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(media.small, clip)
    spec = ProxySpec("h264", "mp4", "same", "{source_name}_proxy", str(out))
    first = proxy(media_draft(clip), spec)
    assert first.status == "COMPLETED"
    made = (out / "clip_proxy.mp4").read_bytes()
    clip.write_bytes(bytes(30000))  # the clip is damaged later; a new draft of it fails to encode
    failed = proxy(media_draft(clip), spec)
    assert (failed.status, failed.failure_class) == ("FAILED", "execution")
    assert (out / "clip_proxy.mp4").read_bytes() == made
    assert not [n for n in os.listdir(out) if ".partial" in n]


# ---------------------------------------------------------------- 3. offline cards


def test_proxies_survive_while_their_card_is_offline(media, tmp_path):
    card, out = tmp_path / "card", tmp_path / "proxies"
    card.mkdir()
    out.mkdir()
    for name in ("A001.mp4", "A002.mov"):
        shutil.copyfile(media.small if name.endswith("mp4") else media.av, card / name)
    spec = ProxySpec("h264", "mp4", "half", "{source_name}_proxy", str(out))
    store = proxy_store([media_draft(card / "A001.mp4"), media_draft(card / "A002.mov")], spec)
    state = recompute_derived(store)
    assert all(r.status == "COMPLETED" for r in state.results.values())
    made = snapshot(out)
    assert len(made) == 2
    card.rename(tmp_path / "card-unplugged")
    offline = recompute_derived(store)
    failed = failures(offline)
    assert sorted(failed) == [0, 1]
    assert all(r.failure_class == "validation" and "offline" in r.message for r in failed.values())
    assert snapshot(out) == made


# ---------------------------------------------------------------- 4. one path, two writers


def test_two_instances_that_would_write_one_path_both_fail_before_anything_runs(media, tmp_path):
    cards = [tmp_path / "card1", tmp_path / "card2"]
    for card, source in zip(cards, (media.small, media.av), strict=True):
        card.mkdir()
        shutil.copyfile(source, card / "C0001.mp4")
    out = tmp_path / "proxies"
    out.mkdir()
    spec = ProxySpec("h264", "mp4", "half", "{source_name}_proxy", str(out))
    store = Store.empty()
    for n, card in enumerate(cards, start=1):
        carrier = pack_drafts([media_draft(card / "C0001.mp4")], {"source": f"card{n}"})
        store = store.add_draft(carrier).add_lens_instance(f"proxy{n}", "media.proxy", carrier.id, spec)
    plan = plan_session(store)
    shown = [plan.job(j) for j in plan.job_ids]
    assert [j.outputs for j in shown] == [(), ()]  # the plan shows them as failing, with no output
    assert all("would also be written by" in j.problem for j in shown)
    state = recompute_derived(store)
    results = list(state.results.values())
    assert [r.failure_class for r in results] == ["validation", "validation"]
    assert "also be written by instance 'proxy2' frame 0" in results[0].message
    assert "also be written by instance 'proxy1' frame 0" in results[1].message
    assert os.listdir(out) == []


def test_the_command_shows_colliding_jobs_in_the_plan_and_writes_nothing(media, tmp_path):
    for n, source in ((1, media.small), (2, media.av)):
        (tmp_path / f"card{n}").mkdir()
        shutil.copyfile(source, tmp_path / f"card{n}" / "C0001.mp4")
    pipeline = tmp_path / "pipeline.toml"
    params = ('{ codec = "h264", container = "mp4", resolution = "half", naming_template = "{source_name}_proxy", '
              'output_directory = "proxies" }')
    pipeline.write_text(textwrap.dedent(f"""
        [pipeline]
        output = "out"
        [[sources]]
        id = "card1"
        glob = "card1/*.mp4"
        [[sources]]
        id = "card2"
        glob = "card2/*.mp4"
        [[lenses]]
        id = "proxy1"
        lens = "media.proxy"
        input = "card1"
        params = {params}
        [[lenses]]
        id = "proxy2"
        lens = "media.proxy"
        input = "card2"
        params = {params}
    """))

    def draftlens(*args):
        return subprocess.run([sys.executable, "-m", "derived", *args], capture_output=True, text=True, timeout=300)

    plan = draftlens("plan", str(pipeline))
    assert plan.returncode == 0, plan.stderr
    assert "2 job(s) will fail validation" in plan.stdout
    assert "[proxy1 frame 0]" in plan.stdout and "also be written by instance 'proxy2' frame 0" in plan.stdout
    run = draftlens("run", str(pipeline))
    assert run.returncode == 1, run.stdout + run.stderr
    assert [p.name for p in (tmp_path / "proxies").iterdir() if p.name != LEDGER_DIRECTORY] == []


def test_a_later_instance_expanded_at_run_time_never_takes_an_earlier_jobs_path(media, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    clip = media_draft(media.small)
    carrier = pack_drafts([clip])
    spec = ProxySpec("h264", "mp4", "same", "{source_name}_x", str(out))
    store = (Store.empty().add_draft(carrier)
             .add_lens_instance("probe", "media.probe", carrier.id)
             .add_lens_instance("direct", "media.proxy", carrier.id, spec)
             .add_lens_instance("fromprobe", "media.proxy", __import__("drafts").OutputOf("probe"), spec))
    state = recompute_derived(store)
    by_instance = {state.job_origins[j][0]: r for j, r in state.results.items()}
    assert by_instance["direct"].status == "COMPLETED"
    assert by_instance["fromprobe"].failure_class == "validation"
    assert "also be written by instance 'direct' frame 0" in by_instance["fromprobe"].message
    # The COMPLETED result still describes the bytes on disk.
    payload = by_instance["direct"].outputs[0]
    assert media_draft(payload["path"]).payload["fingerprint"] == payload["fingerprint"]


# ---------------------------------------------------------------- 5. brackets in project folders


def _pipeline(folder: Path, glob: str) -> Path:
    path = folder / "pipeline.toml"
    path.write_text(textwrap.dedent(f"""
        [pipeline]
        output = "out"
        [[sources]]
        id = "clips"
        glob = "{glob}"
        [[lenses]]
        id = "probe"
        lens = "media.probe"
        input = "clips"
    """))
    return path


def test_the_pipeline_folder_is_literal_in_globs(media, tmp_path):
    from derived.command.pipeline import load_pipeline

    wedding = tmp_path / "Wedding [2024]"
    (wedding / "clips").mkdir(parents=True)
    shutil.copyfile(media.small, wedding / "clips" / "a.mp4")
    loaded = load_pipeline(_pipeline(wedding, "clips/*.mp4"))
    assert [frames for _, _, frames in loaded.sources] == [1]

    day, neighbour = tmp_path / "Day[1]", tmp_path / "Day1"
    (day / "clips").mkdir(parents=True)
    (neighbour / "clips").mkdir(parents=True)
    shutil.copyfile(media.small, neighbour / "clips" / "not-mine.mp4")
    shutil.copyfile(media.av, day / "clips" / "mine.mp4")
    loaded = load_pipeline(_pipeline(day, "clips/*.mp4"))
    (carrier_id,) = [c for _, c, _ in loaded.sources]
    paths = [f.payload["path"] for f in loaded.store.drafts[carrier_id].payload["values"]]
    assert paths == [str(day / "clips" / "mine.mp4")]


# ---------------------------------------------------------------- 6. swapped takes


def test_a_source_swapped_for_another_of_the_same_size_fails_validation(media, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    take = tmp_path / "take.avi"
    shutil.copyfile(media.small, take)
    draft = media_draft(take)
    other = bytearray(Path(media.small).read_bytes())
    other[len(other) // 2] ^= 0xFF  # a different take, byte for byte the same size
    take.write_bytes(bytes(other))
    result = proxy(draft, ProxySpec("h264", "mp4", "same", "{source_name}", str(out)))
    assert (result.status, result.failure_class) == ("FAILED", "validation")
    assert "changed since it was ingested (same size, different bytes" in result.message
    assert os.listdir(out) == []


def test_an_unchanged_source_is_recognised_by_its_status_without_rereading(media, tmp_path, monkeypatch):
    import drafts.media as dm

    take = tmp_path / "take.mp4"
    shutil.copyfile(media.small, take)
    draft = media_draft(take)
    calls = []
    real = dm.fingerprint_file
    monkeypatch.setattr(dm, "fingerprint_file", lambda p: calls.append(p) or real(p))
    assert dm.source_change(str(take), draft.payload["size"], draft.payload["fingerprint"]) is None
    assert calls == []
    os.utime(take, ns=(1, 1))  # status changed, bytes not: read again, and still the same source
    assert dm.source_change(str(take), draft.payload["size"], draft.payload["fingerprint"]) is None
    assert calls == [str(take)]


# ---------------------------------------------------------------- ownership of final paths


def test_an_earlier_output_of_ours_is_replaced_but_an_edited_one_is_not(media, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    spec = ProxySpec("h264", "mp4", "same", "{source_name}_p", str(out))
    first = proxy(media_draft(media.small), spec)
    final = out / "small_p.mp4"
    assert first.status == "COMPLETED" and owner_problem(str(final)) == (None, os.lstat(final))
    again = proxy(media_draft(media.small), spec)  # e.g. --force: our own output may be made again
    assert again.status == "COMPLETED" and again.outputs == first.outputs
    with open(final, "ab") as fh:
        fh.write(b"graded by hand")
    edited = final.read_bytes()
    refused = proxy(media_draft(media.small), spec)
    assert refused.failure_class == "validation" and "has been changed since" in refused.message
    assert final.read_bytes() == edited


def test_an_edit_in_place_that_keeps_size_and_mtime_is_still_not_ours(media, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    spec = ProxySpec("h264", "mp4", "same", "{source_name}_p", str(out))
    assert proxy(media_draft(media.small), spec).status == "COMPLETED"
    final = out / "small_p.mp4"
    before = os.stat(final)
    with open(final, "r+b") as fh:  # same inode, same size, and the mtime put back: only ctime tells
        fh.seek(200)
        fh.write(b"\xff" * 16)
    os.utime(final, ns=(before.st_atime_ns, before.st_mtime_ns))
    edited = final.read_bytes()
    refused = proxy(media_draft(media.small), spec)
    assert refused.failure_class == "validation" and "has been changed since" in refused.message
    assert final.read_bytes() == edited


def test_links_at_final_paths_are_never_followed_or_replaced(media, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "precious.mp4"
    out.mkdir()
    elsewhere.write_bytes(b"precious")
    os.symlink(elsewhere, out / "small.mp4")
    result = proxy(media_draft(media.small), ProxySpec("h264", "mp4", "same", "{source_name}", str(out)))
    assert result.failure_class == "validation" and "is a link that draftlens did not make" in result.message
    assert elsewhere.read_bytes() == b"precious" and os.path.islink(out / "small.mp4")


def test_temporary_files_are_exclusive_unpredictable_and_never_followed(tmp_path):
    target = tmp_path / "victim"
    target.write_bytes(b"keep")
    os.symlink(target, tmp_path / ".run.json.partial")  # the old, guessable temporary name
    write_file_atomically(tmp_path / "run.json", b"{}")
    assert target.read_bytes() == b"keep" and (tmp_path / "run.json").read_bytes() == b"{}"
    names = {create_temporary(tmp_path, "x.mov")[1] for _ in range(50)}
    assert len(names) == 50 and all(os.path.basename(n).startswith(".x.") and n.endswith(".partial.mov")
                                    for n in names)
    fd, temp = create_temporary(tmp_path, "y.mov")
    os.close(fd)
    (tmp_path / "y.mov").write_bytes(b"someone's")
    with pytest.raises(FileExistsError):
        publish(temp, str(tmp_path / "y.mov"), replace=False)
    assert (tmp_path / "y.mov").read_bytes() == b"someone's"


def test_two_writers_of_one_run_json_never_corrupt_it(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [bytes([65 + n]) * 200_000 for n in range(8)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda b: write_file_atomically(tmp_path / "run.json", b), bodies * 3))
    assert (tmp_path / "run.json").read_bytes() in bodies
    assert os.listdir(tmp_path) == ["run.json"]


# ---------------------------------------------------------------- 7. SIGTERM / SIGHUP


def _ffmpeg_children_of(marker: str) -> list[int]:
    """PIDs of processes still running whose command line mentions ``marker`` (our tmp folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        if "ffmpeg" in cmdline and marker in cmdline:
            found.append(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code", "executor"), [
    (signal.SIGTERM, 143, "serial"),
    (signal.SIGHUP, 129, "serial"),
    (signal.SIGTERM, 143, "processes:2"),
])
def test_sigterm_and_sighup_stop_ffmpeg_and_leave_no_partial_output(tmp_path, signum, code, executor):
    pipeline = slow_proxy_pipeline(tmp_path, executor)
    proc = subprocess.Popen([sys.executable, "-m", "derived", "run", str(pipeline)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    proxies = tmp_path / "out" / "proxies"
    deadline = time.monotonic() + 120

    def encoding() -> bool:
        return (proxies.is_dir() and any(".partial" in p.name for p in proxies.iterdir())
                and bool(_ffmpeg_children_of(str(tmp_path))))

    while time.monotonic() < deadline and not encoding():
        time.sleep(0.002)
    assert proc.poll() is None, "the run ended before it could be signalled"
    os.kill(proc.pid, signum)  # the process only, as `kill PID` or a scheduler does
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, out + err
    assert "no output was left half-written" in err and "Traceback" not in err
    assert _ffmpeg_children_of(str(tmp_path)) == []  # no orphan keeps encoding
    left = [p.name for p in proxies.iterdir() if p.name != LEDGER_DIRECTORY]
    assert not any(".partial" in name for name in left), left
    assert len(left) < 12
    assert not (tmp_path / "out" / "run.json").exists()
    assert not [p.name for p in (tmp_path / "out").iterdir() if ".partial" in p.name]


# ---------------------------------------------------------------- the property


@pytest.fixture(scope="module")
def clip_bank(tmp_path_factory, media):
    """A few real clips to lay out as cards: two good ones of different kinds, one damaged."""
    bank = tmp_path_factory.mktemp("bank")
    good_a, good_b = bank / "a.mp4", bank / "b.mov"
    shutil.copyfile(media.small, good_a)
    shutil.copyfile(media.av, good_b)
    bad = bank / "bad.mp4"
    bad.write_bytes(bytes((i * 7919 + 13) % 251 for i in range(9000)))
    return [good_a, good_b, bad]


layouts = st.fixed_dictionaries({
    # per file: (card 0/1, stem, extension, which clip)
    "files": st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["take", "C0001", "shot"]),
                                st.sampled_from(["mp4", "mov"]), st.integers(0, 2)),
                      min_size=1, max_size=4, unique_by=lambda f: (f[0], f[1], f[2])),
    # per instance: (card it reads, lens kind, template, output into the card (True) or a shared folder)
    "instances": st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["proxy", "thumbnail"]),
                                    st.sampled_from(["{source_name}", "{source_name}_p", "{index}"]),
                                    st.booleans()),
                          min_size=1, max_size=3),
    "offline": st.sampled_from([None, 0, 1]),
    "foreign": st.booleans(),
})


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts)
def test_random_card_layouts_lose_nothing_and_every_completed_result_is_true(clip_bank, tmp_path_factory, layout):
    root = tmp_path_factory.mktemp("layout")
    cards = [root / "card0", root / "card1"]
    shared = root / "shared"
    for folder in (*cards, shared):
        folder.mkdir()
    for card, stem, ext, clip in layout["files"]:
        shutil.copyfile(clip_bank[clip], cards[card] / f"{stem}.{ext}")
    if layout["foreign"]:
        (shared / "take.mov").write_bytes(b"an editor's file")
        (shared / "0.jpg").write_bytes(b"a still")
    store = Store.empty()
    carriers = []
    for card in cards:
        frames = [media_draft(p) for p in sorted(card.iterdir())]
        carrier = pack_drafts(frames, {"card": card.name})
        carriers.append(carrier)
        store = store.add_draft(carrier)
    for n, (card, kind, template, into_card) in enumerate(layout["instances"]):
        folder = str(cards[card] if into_card else shared)
        if kind == "proxy":
            spec = ProxySpec("h264", "mov", "same", template, folder, audio=False)
        else:
            spec = ThumbnailSpec(template, folder, time_offset=0.0, size="same", image_format="jpg")
        store = store.add_lens_instance(f"i{n}", f"media.{kind}", carriers[card].id, spec)
    if layout["offline"] is not None:
        cards[layout["offline"]].rename(root / "unplugged")
    theirs = snapshot(root)  # every file that draftlens did not write
    state = recompute_derived(store)
    after = snapshot(root)
    for name, digest in theirs.items():
        assert after.get(name) == digest, f"{name} was changed or deleted"
    written = set()
    for result in state.results.values():
        if result.status != "COMPLETED":
            assert not result.outputs
            continue
        for payload in result.outputs:
            path = Path(payload["path"])
            assert str(path) not in written, f"two COMPLETED results name {path}"
            written.add(str(path))
            assert path.stat().st_size == payload["size"]
            assert media_draft(path).payload["fingerprint"] == payload["fingerprint"]
    assert not [p for p in root.rglob("*") if ".partial" in p.name]


# ---------------------------------------------------------------- found by a new user, each now a test


def test_an_output_of_another_source_is_not_this_jobs_to_replace(media, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    for n, clip in ((1, media.small), (2, media.av)):
        (tmp_path / f"card{n}").mkdir()
        shutil.copyfile(clip, tmp_path / f"card{n}" / "a.mp4")
    spec = ProxySpec("h264", "mp4", "half", "{source_name}_p", str(shared))
    first = proxy(media_draft(tmp_path / "card1" / "a.mp4"), spec)  # one pipeline, card 1
    assert first.status == "COMPLETED"
    made = (shared / "a_p.mp4").read_bytes()
    second = proxy(media_draft(tmp_path / "card2" / "a.mp4"), spec)  # another pipeline, card 2, same names
    assert second.failure_class == "validation" and "made by draftlens from another source" in second.message
    assert (shared / "a_p.mp4").read_bytes() == made  # card 1's result still describes the bytes on disk
    again = proxy(media_draft(tmp_path / "card1" / "a.mp4"), spec)  # card 1 again may replace its own
    assert again.status == "COMPLETED"


def test_the_command_never_replaces_a_run_json_or_report_it_did_not_write(media, tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    shutil.copyfile(media.small, card / "take1.mp4")
    (card / "report.html").write_text("MY OWN REPORT")
    (tmp_path / "pipeline.toml").write_text(textwrap.dedent("""
        [pipeline]
        output = "card"
        [[sources]]
        id = "clips"
        glob = "card/*.mp4"
        [[lenses]]
        id = "probe"
        lens = "media.probe"
        input = "clips"
    """))
    run = subprocess.run([sys.executable, "-m", "derived", "run", str(tmp_path / "pipeline.toml")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "report.html already exists and draftlens did not write it" in run.stderr
    assert "set another output folder: [pipeline] output" in run.stderr  # not the media spec's naming
    assert (card / "report.html").read_text() == "MY OWN REPORT" and not (card / "run.json").exists()
    (card / "report.html").unlink()
    for _ in range(2):  # its own run.json and report.html it replaces, run after run
        run = subprocess.run([sys.executable, "-m", "derived", "run", str(tmp_path / "pipeline.toml")],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    assert "MY OWN" not in (card / "report.html").read_text()


def test_plan_says_which_jobs_would_meet_a_file_draftlens_did_not_write(media, tmp_path):
    # Review 30: plan listed "writes card/clip2.jpg" without a word; the run then failed that job's validation.
    card = tmp_path / "card"
    card.mkdir()
    for name in ("clip1", "clip2"):
        shutil.copyfile(media.small, card / f"{name}.mp4")
    (card / "clip2.jpg").write_bytes(b"the user's own poster")
    (tmp_path / "pipeline.toml").write_text(textwrap.dedent(f"""
        [pipeline]
        output = "out"
        [[sources]]
        id = "clips"
        glob = "card/*.mp4"
        [[lenses]]
        id = "poster"
        lens = "media.thumbnail"
        input = "clips"
        [lenses.params]
        naming_template = "{{source_name}}"
        output_directory = "{card}"
        time_offset = 0.1
    """))
    plan = subprocess.run([sys.executable, "-m", "derived", "plan", str(tmp_path / "pipeline.toml")],
                          capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "1 job(s) will fail validation" in plan.stdout
    assert f"{card / 'clip2.jpg'} already exists and draftlens did not write it" in plan.stdout
    assert (card / "clip2.jpg").read_bytes() == b"the user's own poster"


def test_a_memo_never_stands_in_for_a_source_swapped_for_another_of_the_same_size(media, tmp_path):
    from derived import Memo

    out = tmp_path / "out"
    out.mkdir()
    take = tmp_path / "take.mp4"
    shutil.copyfile(media.small, take)
    store = proxy_store([media_draft(take)], ProxySpec("h264", "mp4", "same", "{source_name}_p", str(out)))
    memo = Memo()
    first = recompute_derived(store, memo=memo)
    assert [r.status for r in first.results.values()] == ["COMPLETED"]
    other = bytearray(take.read_bytes())
    other[len(other) // 2] ^= 0xFF
    take.write_bytes(bytes(other))  # the same size, other bytes
    assert [plan_session(store, memo=memo).job(j).decision for j in plan_session(store).job_ids] == ["run"]
    (result,) = recompute_derived(store, memo=memo).results.values()
    assert result.failure_class == "validation" and "changed since it was ingested" in result.message
