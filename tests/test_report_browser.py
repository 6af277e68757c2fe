"""report.html rendered by a real browser: the DOM has what an editor needs, every image loads."""

import html
import os
import re
import subprocess

import imageio_ffmpeg
import pytest

from derived import recompute_derived
from derived.command.report import render_report
from drafts import Store, make_draft, pack_drafts
from lenses import Registry, lens
from tests.browser import CHROMIUM, rendered_dom

# Skipped only on a developer machine without chromium; in CI (.ci/system-deps installs it) a missing
# browser is a failure.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium is not installed"),
]


@lens("test.poster", version="1")
def poster(draft, params):
    """Pretend thumbnail + probe: points at a PNG made next to the clip."""
    if draft.payload["name"] == "broken.mov":
        raise RuntimeError("moov atom not found")
    yield {"path": draft.payload["poster"], "size": 1, "fingerprint": "x", "duration": 4.0,
           "streams": [{"codec_type": "video", "width": 64, "height": 36}]}


class Pipeline:
    def __init__(self, store, carrier_id):
        self.store = store
        self.sources = (("clips", carrier_id, 2),)


def test_report_renders_clips_failures_and_images_in_chromium(tmp_path):
    png = tmp_path / "poster.png"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x36:rate=1", "-frames:v", "1", str(png)], check=True)
    clips = [make_draft({"path": str(tmp_path / n), "size": 1, "fingerprint": n, "name": n, "poster": str(png)})
             for n in ("harbour <dawn>.mov", "broken.mov")]
    carrier = pack_drafts(clips)
    store = Store.empty().add_draft(carrier).add_lens_instance("poster", "test.poster", carrier.id)
    state = recompute_derived(store, registry=Registry((poster,)))
    page = tmp_path / "report.html"
    page.write_text(render_report(state, Pipeline(store, carrier.id)))
    dom = rendered_dom(page)
    assert str(state.plan.session_id) in dom
    cards = re.findall(r"<div class=\"clip\" data-name=\"([^\"]+)\">", dom)
    assert [html.unescape(c) for c in cards] == ["harbour <dawn>.mov", "broken.mov"]
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == 1 and all('data-loaded="1"' in img for img in images), images
    assert "4.00 s" in dom and "64×36" in dom
    good, broken = re.split(r"<div class=\"clip\"", dom)[1:3]
    assert "status-ok" in good and "no poster" in broken
    assert "failed: poster (lensError)" in broken
    assert "moov atom not found" in dom


def test_the_demo_report_shows_real_poster_frames_in_chromium(tmp_path, capsys):
    from derived.command.cli import main
    from derived.command.demo import CORRUPT_CLIP, SAMPLE_CLIPS, write_demo_pipeline

    pipeline = write_demo_pipeline(tmp_path)
    assert main(["run", str(pipeline)]) == 1  # the corrupt clip fails, as it should
    dom = rendered_dom(tmp_path / "out" / "report.html")
    cards = [html.unescape(c) for c in re.findall(r"<div class=\"clip\" data-name=\"([^\"]+)\">", dom)]
    assert sorted(cards) == sorted([*SAMPLE_CLIPS, CORRUPT_CLIP])
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == len(SAMPLE_CLIPS) and all('data-loaded="1"' in img for img in images), images
    by_name = dict(zip(cards, re.split(r"<div class=\"clip\"", dom)[1:], strict=True))
    assert "2.00 s" in by_name["harbour_dawn.mov"] and "640×360" in by_name["harbour_dawn.mov"]
    assert "status-ok" in by_name["market.mp4"]
    broken = by_name[CORRUPT_CLIP]
    assert "no poster" in broken and "failed: probe (execution)" in broken
    assert dom.count('class="failed-job"') == 4 and "moov atom not found" in dom
