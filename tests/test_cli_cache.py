"""``draftlens run`` / ``plan`` / ``cache`` with the evaluation cache under the output folder (issue 13)."""

from __future__ import annotations

import json

from tests.test_cli import draftlens, write

PIPELINE = """
    [pipeline]
    output = "out"
    lens_modules = ["mylenses"]
    [[sources]]
    id = "notes"
    drafts = [{{ text = "a" }}, {{ text = "b" }}{extra}]
    [[lenses]]
    id = "up"
    lens = "text.upper"
    input = "notes"
    [[lenses]]
    id = "mine"
    lens = "my.shout"
    input = "notes"
    params = {{ mark = "{mark}" }}
"""

MODULE = '''
import attrs
from lenses import lens

@attrs.frozen
class Shout:
    mark: str = "!"

@lens("my.shout", version="{version}", params=Shout)
def shout(draft, params):
    yield {{"text": draft.payload["text"] + params.mark}}
'''


def _pipeline(tmp_path, mark="!", extra="", version="1"):
    (tmp_path / "mylenses.py").write_text(MODULE.format(version=version))
    return write(tmp_path, PIPELINE.format(mark=mark, extra=extra))


def _plan(path, *args):
    out = draftlens("plan", str(path), "--json", *args)
    assert out.returncode == 0, out.stderr
    return {(j["lens_instance_id"], j["frame_index"]): j["reason"] for j in json.loads(out.stdout)["jobs"]}


def _ran(path, *args):
    out = draftlens("run", str(path), "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["counts"]["ran"]


def test_a_second_run_of_an_unchanged_pipeline_runs_nothing_and_says_so(tmp_path):
    path = _pipeline(tmp_path)
    assert _plan(path) == {("up", 0): "new input", ("up", 1): "new input", ("mine", 0): "new input",
                           ("mine", 1): "new input"}
    assert _ran(path) == 4
    out = draftlens("run", str(path))
    assert out.returncode == 0, out.stderr
    assert "nothing ran: every job was reused from the cache" in out.stdout
    assert str(tmp_path / "out" / ".draftlens" / "cache.sqlite") in out.stdout
    assert set(_plan(path).values()) == {"reused"}
    assert "nothing to run: all 4 jobs can be reused" in draftlens("plan", str(path)).stdout
    assert _ran(path, "--no-cache") == 4
    assert set(_plan(path, "--force").values()) == {"forced"}
    assert _ran(path, "--force") == 4 and _ran(path) == 0


def test_plan_says_why_each_job_runs(tmp_path):
    path = _pipeline(tmp_path)
    assert _ran(path) == 4
    path = _pipeline(tmp_path, mark="?")
    assert _plan(path) == {("up", 0): "reused", ("up", 1): "reused", ("mine", 0): "params changed",
                           ("mine", 1): "params changed"}
    assert "2 params changed" in draftlens("plan", str(path)).stdout
    path = _pipeline(tmp_path, version="2")
    assert _plan(path)[("mine", 0)] == "lens version changed"
    path = _pipeline(tmp_path, extra=', { text = "c" }')
    assert _plan(path) == {("up", 0): "reused", ("up", 1): "reused", ("up", 2): "new input",
                           ("mine", 0): "reused", ("mine", 1): "reused", ("mine", 2): "new input"}
    assert _ran(path) == 2  # one new clip runs only its own jobs


def test_cache_info_and_prune(tmp_path):
    path = _pipeline(tmp_path)
    missing = draftlens("cache", "info", str(path))
    assert missing.returncode == 2 and "no evaluation cache at" in missing.stderr
    _ran(path)
    _pipeline(tmp_path, mark="?")
    _ran(path)
    info = json.loads(draftlens("cache", "info", str(path), "--json").stdout)
    assert info["kind"] == "draftlens.cache-info" and info["entries"] == 6 and info["instances"] == 2
    text = draftlens("cache", "info", str(path)).stdout
    assert "6 entries" in text and "my.shout" in text
    pruned = draftlens("cache", "prune", str(path))
    assert pruned.returncode == 0 and "2 entries" in pruned.stdout  # the params "!" outcomes, unused since
    sqlite = tmp_path / "out" / ".draftlens" / "cache.sqlite"
    assert json.loads(draftlens("cache", "info", str(sqlite), "--json").stdout)["entries"] == 4
    bad = draftlens("cache", "prune", str(path), "--keep", "0")
    assert bad.returncode == 2 and "keep must be an int >= 1, got 0" in bad.stderr


def test_a_damaged_cache_is_named_and_no_cache_still_runs(tmp_path):
    path = _pipeline(tmp_path)
    cache = tmp_path / "out" / ".draftlens" / "cache.sqlite"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"garbage" * 1000)
    out = draftlens("run", str(path))
    assert out.returncode == 2 and f"{cache}: cannot be used as an evaluation store" in out.stderr
    assert _ran(path, "--no-cache") == 4


MEDIA = """
    [pipeline]
    output = "out"
    [[sources]]
    id = "clips"
    glob = "clips/*.mp4"
    [[lenses]]
    id = "proxy"
    lens = "media.proxy"
    input = "clips"
    [lenses.params]
    codec = "h264"
    container = "mp4"
    resolution = "half"
    naming_template = "{source_name}_proxy"
    output_directory = "out/proxies"
"""


def test_media_jobs_rerun_only_for_a_missing_output_a_changed_clip_or_an_earlier_failure(tmp_path):
    from derived.command.demo import make_clip, write_corrupt_clip

    (tmp_path / "clips").mkdir()
    for name in ("a", "b"):
        make_clip(tmp_path / "clips" / f"{name}.mp4")
    write_corrupt_clip(tmp_path / "clips" / "c.mp4")
    path = write(tmp_path, MEDIA)
    first = draftlens("run", str(path), "--json")
    assert first.returncode == 1, first.stderr  # c.mp4 is corrupt
    assert json.loads(first.stdout)["counts"]["ran"] == 3
    assert _plan(path) == {("proxy", 0): "reused", ("proxy", 1): "reused", ("proxy", 2): "earlier failure"}
    (tmp_path / "out" / "proxies" / "a_proxy.mp4").unlink()  # deleted by hand: made again
    make_clip(tmp_path / "clips" / "b.mp4", seconds=0.6)  # a changed clip
    assert _plan(path) == {("proxy", 0): "output missing or changed", ("proxy", 1): "new input",
                           ("proxy", 2): "earlier failure"}
    again = draftlens("run", str(path), "--json")
    assert json.loads(again.stdout)["counts"]["ran"] == 3
    assert (tmp_path / "out" / "proxies" / "a_proxy.mp4").exists()
    assert _plan(path)[("proxy", 0)] == "reused"


def test_the_summary_counts_what_ran_and_what_the_cache_gave_per_instance(tmp_path):
    # Found by review: an expanding instance counted as 1 job, and "reused" was jobs - ran, so an instance
    # whose upstream kept nothing said "reused 1" on a fresh cache.
    path = write(tmp_path, """
        [pipeline]
        output = "out"
        [caps]
        max_total_drafts_per_recompute = 3
        [[sources]]
        id = "notes"
        drafts = [{ text = "a" }, { text = "b" }, { text = "c" }]
        [[lenses]]
        id = "up"
        lens = "text.upper"
        input = "notes"
        [[lenses]]
        id = "again"
        lens = "text.upper"
        input = "up"
    """)
    first = json.loads(draftlens("run", str(path), "--json").stdout)
    rows = {row["instance"]: row for row in first["instances"]}
    assert (rows["again"]["jobs"], rows["again"]["ran"], rows["again"]["reused"]) == (3, 3, 0)
    assert first["counts"]["jobs"] == 6 and first["counts"]["reused"] == 0
    second = json.loads(draftlens("run", str(path), "--json").stdout)
    rows = {row["instance"]: row for row in second["instances"]}
    assert [(rows[i]["ran"], rows[i]["reused"]) for i in ("up", "again")] == [(0, 3), (0, 3)]
    assert second["counts"]["reused"] == 6
