"""The bundled examples: a media pipeline over generated clips, and a small pure one.

``draftlens demo [DIR]`` makes a few short clips with the pinned FFmpeg
(several codecs and resolutions, one deliberately corrupt), writes a pipeline
file next to them and runs probe + proxy + thumbnail + audio over them: the
main job of draftlens on something every machine can make. ``demo_store`` is
the pure-lens example the README's REPL section reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from drafts import OutputOf, Store, make_draft, pack_drafts

from ..caps import Caps
from ..recompute import recompute_derived
from ..state import DerivedState

__all__ = [
    "CORRUPT_CLIP",
    "SAMPLE_CLIPS",
    "demo_store",
    "make_clip",
    "make_sample_clips",
    "run_demo",
    "write_corrupt_clip",
    "write_demo_pipeline",
]

_H264 = ("-c:v", "libx264", "-threads", "1", "-pix_fmt", "yuv420p")  # H.264 4:2:0, one thread

# name -> (lavfi video size or None, audio sample rate or None, encoder argv)
SAMPLE_CLIPS: dict[str, tuple[str | None, int | None, list[str]]] = {
    "harbour_dawn.mov": ("640x360", 48000, [*_H264, "-c:a", "aac", "-ac", "2", "-timecode", "01:00:00:00"]),
    "market.mp4": ("320x240", 44100, [*_H264, "-c:a", "aac"]),
    "night_ferry.mkv": ("426x240", 48000, ["-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le", "-ac", "2"]),
    "interview.mov": ("480x270", 48000, ["-c:v", "prores_ks", "-profile:v", "0", "-c:a", "pcm_s16le"]),
}
CORRUPT_CLIP = "broken_card.mp4"
_SECONDS = 2


def make_clip(
    path: str | Path,
    *,
    size: str | None = "64x48",
    sample_rate: int | None = None,
    seconds: float = 0.4,
    first_frame: int = 0,
    encode: Sequence[str] = _H264,
) -> Path:
    """Write one lavfi test clip to ``path`` with the pinned FFmpeg; return the path.

    ``size``: the test pattern's ``WIDTHxHEIGHT`` in pixels (``None``: no
    video); ``sample_rate``: a 330 Hz tone at that rate in Hz (``None``: no
    audio); ``seconds``: the duration of both; ``first_frame``: frames cut from
    the start (clips that differ in content, not only in name); ``encode``: the
    encoder argv (default H.264 4:2:0, one thread). The container follows the
    file's ending. Bit-exact flags make the same call write the same bytes
    every time. Raises ``RuntimeError`` (with FFmpeg's stderr) if FFmpeg fails.
    """
    from lenses.media.engine import FFmpegEngine
    from lenses.media.run import run_ffmpeg

    path = Path(path)
    argv = [FFmpegEngine.pinned().path, "-hide_banner", "-nostdin", "-v", "error", "-y"]
    if size:
        trim = f",trim=start_frame={first_frame}" if first_frame else ""
        argv += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}{trim}"]
    if sample_rate:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate={sample_rate}:duration={seconds}"]
    bitexact = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]  # same bytes every time
    outcome = run_ffmpeg([*argv, *encode, *bitexact, f"file:{path}"])
    if outcome.exit_code != 0:
        raise RuntimeError(f"could not make the sample clip {path}: {outcome.launch_error or outcome.stderr}")
    return path


def write_corrupt_clip(path: str | Path) -> Path:
    """What a failing card reader leaves at ``path``: an MP4's first bytes, then noise (no moov atom)."""
    path = Path(path)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes((i * 7919 + 13) % 251 for i in range(40_000)))
    return path


def make_sample_clips(directory: str | Path) -> list[Path]:
    """Write the sample clips (and one corrupt file) into ``directory``; return their paths.

    Clips are lavfi test patterns with a tone, encoded by the pinned FFmpeg
    (``make_clip``), so the demo needs nothing but the installed package.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [
        make_clip(directory / name, size=size, sample_rate=rate, seconds=_SECONDS, encode=encode)
        for name, (size, rate, encode) in SAMPLE_CLIPS.items()
    ]
    paths.append(write_corrupt_clip(directory / CORRUPT_CLIP))
    return paths


DEMO_PIPELINE = """\
# The draftlens demo: every clip in clips/ gets metadata, an editing proxy,
# a poster frame and its audio. Paths are relative to this file.
[pipeline]
name = "demo"
output = "out"          # run.json and report.html
executor = "serial"

[[sources]]
id = "clips"
glob = ["clips/*.mov", "clips/*.mp4", "clips/*.mkv"]

[[lenses]]
id = "probe"
lens = "media.probe"
input = "clips"

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

[[lenses]]
id = "poster"
lens = "media.thumbnail"
input = "clips"
[lenses.params]
time_offset = 1.0
size = "320"                    # width; the height keeps the aspect ratio
image_format = "jpg"
naming_template = "{source_name}"
output_directory = "out/posters"

[[lenses]]
id = "audio"
lens = "media.audio"
input = "clips"
[lenses.params]
codec = "pcm_s16le"
container = "wav"
sample_rate = 48000
channels = 2
naming_template = "{source_name}"
output_directory = "out/audio"
"""


def write_demo_pipeline(directory: str | Path) -> Path:
    """Sample clips under ``directory/clips`` and ``directory/pipeline.toml`` over them."""
    directory = Path(directory)
    make_sample_clips(directory / "clips")
    path = directory / "pipeline.toml"
    path.write_text(DEMO_PIPELINE, encoding="utf-8")
    return path


CLIPS = [
    {"name": "harbour at dawn", "takes": ["wide", "close"]},
    {"name": "market", "takes": ["pan"]},
    {"name": "night ferry", "takes": ["deck", "bow", "wake"]},
    {"name": "broken clip"},  # no "takes": its frame fails and the rest go on
]


def demo_store() -> Store:
    """Clips packed into a carrier; a split, a template and an upper-case lens chained."""
    carrier = pack_drafts([make_draft(c) for c in CLIPS])
    return (
        Store.empty()
        .add_draft(carrier)
        .add_lens_instance("takes", "list.split", carrier.id, {"field": "takes", "keep_others": True})
        .add_lens_instance("labels", "text.format", OutputOf("takes"), {"template": "{name} / {takes}", "into": "label"})
        .add_lens_instance("shout", "text.upper", OutputOf("labels"), {"field": "label"})
    )


def run_demo(caps: Caps | None = None) -> DerivedState:
    return recompute_derived(demo_store(), caps=caps or Caps(max_total_drafts_per_batch=5))


def render(state: DerivedState) -> str:
    lines = []
    for instance_id in state.instance_ids:
        lines.append(f"{instance_id}:")
        for d in state.outputs(instance_id):
            batch = d.meta.get("batch")
            where = f"frame {batch['frameIndex']}.{batch['variantIndex']}" if batch else "single"
            lines.append(f"  {d.id[:10]}  {where:<11} {d.payload.get('label', d.payload.get('takes'))}")
    lines.append("batches:")
    for batch_id, s in state.batch_summary_by_batch_id.items():
        lines.append(
            f"  {batch_id[:10]}  {s.lens_instance_id:<7} frames={s.frames} outputs={s.outputs} "
            f"per-frame={list(s.outputs_per_frame)} truncated={s.truncated}"
        )
    lines.append("warnings:")
    lines.extend(f"  {w}" for w in state.warnings)
    return "\n".join(lines)
