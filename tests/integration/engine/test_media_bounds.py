"""Media that is small and expensive: huge pictures, millions of packets, audio with no samples.

Memory is measured, not guessed: the work runs in a fresh Python process, which reports its own
peak RSS and the largest peak RSS of the ffmpeg children it waited for (getrusage). The bounds
are generous (the machine is shared); what they catch is the difference between tens or a few
hundred MB and the GB these inputs took before.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from render_service import errors
from render_service.engines.ffmpeg import plan_render, render_chunk
from render_service.engines.ffmpeg.join import join_chunks
from render_service.engines.ffmpeg.limits import Budget
from render_service.engines.ffmpeg.models import RenderPlan, SoundtrackSpec, SourceRef
from render_service.engines.ffmpeg.runner import run_ffmpeg
from render_service.models.timeline import RenderRequest

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

OUT = {"resolution": "720p", "fps": 30, "quality": "low"}
MB = 1 << 20


def _request(*scenes: dict[str, Any], **extra: Any) -> RenderRequest:
    return RenderRequest.model_validate({"timeline": {"scenes": list(scenes), **extra}, "output": OUT})


def _plan(s3: Any, settings: Any, request: RenderRequest, render_id: str = "r-bounds") -> RenderPlan:
    return plan_render(render_id, request, s3=s3, bucket=settings.bucket_name, settings=settings)


def hostile_png(path: Path, side: int = 14000) -> Path:
    """An RGB PNG of side x side black pixels: about 0.6 MB on disk, about 590 MB decoded."""
    if path.exists():
        return path

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + side * 3)  # filter byte 0, then black
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def empty_wav(path: Path) -> Path:
    """A valid WAV header (48 kHz stereo PCM) whose data chunk holds no samples."""
    fmt = struct.pack("<HHIIHH", 1, 2, 48000, 48000 * 4, 4, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def measured(code: str, **values: Any) -> dict[str, Any]:
    """Run `code` in a fresh Python; it sets `result` (a dict). Adds its peak RSS and its children's.

    The children's figure is the largest of them, and includes what the fresh Python held when it
    forked each one (tens of MB): an upper bound on each ffmpeg's own peak.
    """
    script = (
        "import json, resource, sys\n"
        f"values = json.loads({json.dumps(json.dumps(values))})\n"
        "result = {}\n"
        + textwrap.dedent(code)
        # VmHWM, not RUSAGE_SELF: ru_maxrss survives exec, so it would count the pytest worker.
        + "\nhwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
        "result['self_rss'] = int(hwm.split()[1]) * 1024\n"
        "result['child_rss'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "print(json.dumps(result))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _render_chunks(s3: Any, settings: Any, plan: RenderPlan) -> list[str]:
    return [
        render_chunk(c, s3=s3, bucket=settings.bucket_name, settings=settings, on_progress=lambda _: None)
        for c in plan.chunks
    ]


# --- pixels -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hostile_png(tmp_path_factory.mktemp("hostile") / "huge.png")


def test_a_huge_image_is_refused_while_planning_with_its_scene_named(
    s3: Any, settings: Any, upload: Any, big_png: Path
) -> None:
    request = _request({"type": "title", "text": "x"}, {"type": "image", "src": upload(big_png), "duration": 1})
    with pytest.raises(
        errors.MediaTooLarge, match=r"^scenes\[1\]\.src: the image is 14000x14000 \(196\.0 megapixels\)"
    ):
        _plan(s3, settings, request)
    assert errors.MediaTooLarge.code == "MEDIA_TOO_LARGE"


def test_probing_a_huge_image_does_not_decode_it(big_png: Path, tmp_path: Path) -> None:
    result = measured(
        """
        from pathlib import Path
        from render_service.engines.ffmpeg.probe import PixelsExceeded, inspect
        from render_service.settings import Settings
        settings = Settings(table_name="t", bucket_name="b", work_dir=Path(values["work"]))
        try:
            inspect(Path(values["png"]), settings=settings, max_pixels=settings.max_image_pixels)
        except PixelsExceeded as exc:
            result["refused"] = [exc.width, exc.height]
        """,
        png=str(big_png),
        work=str(tmp_path),
    )
    assert result["refused"] == [14000, 14000]
    # Decoding it takes about 600 MB; the header alone, tens.
    assert result["child_rss"] < 150 * MB


def test_a_chunk_never_decodes_a_picture_past_the_bound(big_png: Path, tmp_path: Path) -> None:
    """Even a chunk spec that skipped planning (a source swapped afterwards) cannot decode it."""
    result = measured(
        """
        from pathlib import Path
        from render_service import errors
        from render_service.engines.ffmpeg import limits
        from render_service.engines.ffmpeg.commands import ChunkPaths, PixelBounds, chunk_argv
        from render_service.engines.ffmpeg.commands import encoding_for
        from render_service.engines.ffmpeg.models import ChunkSpec, Segment, SourceRef
        from render_service.engines.ffmpeg.runner import run_ffmpeg
        from render_service.models.timeline import Quality
        from render_service.settings import Settings
        settings = Settings(table_name="t", bucket_name="b", work_dir=Path(values["work"]))
        ref = SourceRef(bucket="b", key="k", size_bytes=1, ext=".png", demuxer="png_pipe", has_audio=False)
        spec = ChunkSpec(
            render_id="r", index=0, frames=30, start_frame=0, samples=48000, mode="encode",
            width=1280, height=720, fps=30, encoding=encoding_for(Quality.low, 30), sources=[ref],
            segments=[Segment(scene=0, kind="image", frames=30, samples=48000, source=0)],
        )
        paths = ChunkPaths(Path(values["work"]) / "chunk")
        paths.root.mkdir(parents=True)
        paths.source(spec, 0).symlink_to(values["png"])
        argv = chunk_argv(spec, paths, ffmpeg=settings.ffmpeg, fonts=settings.font, pixels=PixelBounds.of(settings))
        try:
            run_ffmpeg(argv, timeout=120, budget=limits.budget(settings, timeout=120))
        except errors.RenderFailure as exc:
            result["error"] = exc.message
        """,
        png=str(big_png),
        work=str(tmp_path),
    )
    assert "exceeds specified max pixel count" in result["error"]
    assert result["child_rss"] < 250 * MB


def test_an_image_past_its_memory_budget_fails_with_a_reason(big_png: Path, tmp_path: Path) -> None:
    """The OS budget holds where no bound foresaw the cost: decoding ~600 MB under a 300 MB budget."""
    out = tmp_path / "small.png"
    argv = [FFMPEG, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(big_png)]
    argv += ["-vf", "scale=64:64", "-frames:v", "1", str(out)]
    with pytest.raises(errors.ResourceLimitExceeded, match="300 MiB of memory") as failure:
        run_ffmpeg(argv, timeout=120, budget=Budget(memory_bytes=300 * MB, cpu_seconds=120), what="scaling")
    assert failure.value.code == "RESOURCE_LIMIT_EXCEEDED"
    assert not out.exists()


def test_a_video_past_the_pixel_bound_is_refused(s3: Any, settings: Any, media: Any, upload: Any) -> None:
    tight = settings.model_copy(update={"max_video_pixels": 320 * 180 - 1})
    request = _request({"type": "clip", "src": upload(media.clip("red", color="red"))})
    with pytest.raises(errors.MediaTooLarge, match=r"^scenes\[0\]\.src: the video is 320x180"):
        _plan(s3, tight, request)


# --- duration and packets ---------------------------------------------------------------


def test_sources_past_the_duration_or_frame_bound_are_refused(s3: Any, settings: Any, media: Any, upload: Any) -> None:
    src = upload(media.clip("pattern2", seconds=2.0))
    request = _request({"type": "clip", "src": src, "duration": 1})
    with pytest.raises(errors.MediaTooLarge, match=r"^scenes\[0\]\.src: the source lasts 2 s; at most 1 s"):
        _plan(s3, settings.model_copy(update={"max_source_seconds": 1.0}), request)
    with pytest.raises(errors.MediaTooLarge, match=r"^scenes\[0\]\.src: the video holds about 60 frames"):
        _plan(s3, settings.model_copy(update={"max_source_packets": 59}), request)


@pytest.fixture(scope="session")
def long_tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A million tiny packets: 16x16 at 100 fps for 10000 s, about 30 MB (10 s encoded, then copied)."""
    root = tmp_path_factory.mktemp("tiny")
    seed, path = root / "seed.mp4", root / "long.mp4"
    base = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(
        [*base, "-f", "lavfi", "-i", "color=c=black:s=16x16:r=100:d=10", "-c:v", "libx264", "-g", "500", str(seed)],
        check=True,
    )
    subprocess.run([*base, "-stream_loop", "999", "-i", str(seed), "-c", "copy", str(path)], check=True)
    return path


def test_planning_a_short_cut_of_a_long_tiny_video_reads_only_the_cut(long_tiny_video: Path, tmp_path: Path) -> None:
    result = measured(
        """
        from pathlib import Path
        from render_service.engines.ffmpeg.models import SourceRef
        from render_service.engines.ffmpeg.plan import video_end_seconds
        from render_service.engines.ffmpeg.prepare import SourceUse, inspect_source
        from render_service.settings import Settings
        settings = Settings(table_name="t", bucket_name="b", work_dir=Path(values["work"]))
        ref = SourceRef(bucket="b", key="k", size_bytes=1, ext=".mp4", demuxer="", has_audio=False)
        use = SourceUse("s3://b/k", "scenes[0].src", "clip", trim=5000.0, duration=1.0)
        info = inspect_source(Path(values["video"]), ref, [use], settings)
        result["packets"] = len(info.packets.packets)
        result["seconds"] = info.probe.duration_seconds
        result["keys"] = [info.packets.seconds(p.pts) for p in info.packets.packets if p.key]
        """,
        video=str(long_tiny_video),
        work=str(tmp_path),
    )
    assert result["seconds"] == pytest.approx(10000, abs=1)
    # The cut's window (a keyframe before it to a little after it), not the million packets.
    assert result["packets"] < 2000
    assert all(4990 <= t <= 5010 for t in result["keys"])
    # Listing every packet held about 460 MB in Python before; the index ffmpeg keeps is ~110 MB.
    assert result["self_rss"] < 250 * MB
    assert result["child_rss"] < 400 * MB


def test_a_cut_from_the_middle_plans_as_from_a_full_listing(s3: Any, settings: Any, media: Any, upload: Any) -> None:
    """Windows keep the file's own timestamps: a copy cut late in a clip lands on its keyframe."""
    path = media.clip("hd-keys", color="navy", size="1280x720", seconds=8.0, keyint=30, preset="superfast")
    request = _request({"type": "clip", "src": upload(path), "trimStart": 5.0, "duration": 2.0})
    plan = _plan(s3, settings, request)
    (chunk,) = plan.chunks
    assert chunk.mode == "copy"
    assert chunk.segments[0].start_seconds == pytest.approx(5.0, abs=1e-6)
    assert plan.total_frames == 60


def test_a_clip_to_the_end_of_a_very_long_video_is_too_long(
    s3: Any, settings: Any, upload: Any, long_tiny_video: Path
) -> None:
    with pytest.raises(errors.RenderTooLong, match=r"^scenes\[0\]\.duration: the clip runs to the end"):
        _plan(s3, settings, _request({"type": "clip", "src": upload(long_tiny_video), "trimStart": 100}))


# --- audio that never advances ----------------------------------------------------------


def test_a_soundtrack_without_samples_fails_fast_with_a_reason(
    s3: Any, settings: Any, upload: Any, tmp_path: Path
) -> None:
    music = upload(empty_wav(tmp_path / "silence.wav"))
    request = _request({"type": "title", "text": "x", "duration": 1}, soundtrack={"src": music})
    with pytest.raises(errors.SourceInvalid, match=r"^timeline\.soundtrack\.src: the audio has no samples$"):
        _plan(s3, settings, request)


def test_a_join_never_loops_an_empty_soundtrack_forever(
    s3: Any, settings: Any, media: Any, upload: Any, tmp_path: Path
) -> None:
    """A plan from before the check (no soundtrack length) with an empty soundtrack still ends."""
    plan = _plan(s3, settings, _request({"type": "clip", "src": upload(media.clip("red", color="red"))}))
    keys = _render_chunks(s3, settings, plan)
    key = "work/r-bounds/sources/9.wav"
    s3.upload_file(str(empty_wav(tmp_path / "empty.wav")), settings.bucket_name, key)
    ref = SourceRef(bucket=settings.bucket_name, key=key, size_bytes=44, ext=".wav", demuxer="wav", has_audio=True)
    plan = plan.model_copy(update={"soundtrack": SoundtrackSpec(source=ref, volume=1, fade_out_seconds=0)})
    # Under -stream_loop -1 this spun until the timeout; bounded loops end in well under a second.
    info = join_chunks(
        plan, keys, "renders/u/r.mp4", s3=s3, bucket=settings.bucket_name, settings=settings, timeout_seconds=120
    )
    assert info.duration_seconds == pytest.approx(1.0, abs=0.05)


# --- cancel -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def long_chunk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chunk as workers write them (H.264 + PCM in MP4), ten minutes long but tiny (16x16, 8 kHz)."""
    path = tmp_path_factory.mktemp("chunks") / "chunk-0000.mp4"
    argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=s=16x16:r=30:d=600"]
    argv += ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "600", "-c:v", "libx264", "-preset", "ultrafast"]
    subprocess.run([*argv, "-c:a", "pcm_s16le", str(path)], check=True)
    return path


def test_cancel_stops_a_running_join(
    s3: Any, settings: Any, media: Any, upload: Any, long_chunk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A join with ten minutes of audio to encode stops once the render has ended, and uploads nothing."""
    from render_service.engines.ffmpeg import runner

    monkeypatch.setattr(runner, "CANCEL_POLL_SECONDS", 0.2)  # ask often: the join must still be running
    plan = _plan(s3, settings, _request({"type": "clip", "src": upload(media.clip("red", color="red"))}))
    s3.upload_file(str(long_chunk), settings.bucket_name, "work/r-bounds/chunk-0000.mp4")
    long = plan.model_copy(update={"total_frames": 18000, "total_samples": 48000 * 600, "duration_seconds": 600.0})
    asked_while_running: list[bool] = []

    def ended() -> bool:
        # The user cancels once the join's ffmpeg is writing its output.
        writing = any((settings.work_dir / plan.render_id).glob("join-*/output.mp4"))
        asked_while_running.append(writing)
        return writing

    with pytest.raises(errors.RenderCancelled, match="join was stopped"):
        join_chunks(
            long,
            ["work/r-bounds/chunk-0000.mp4"],
            "renders/u/r.mp4",
            s3=s3,
            bucket=settings.bucket_name,
            settings=settings,
            cancelled=ended,
        )
    assert asked_while_running[-1] is True
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.bucket_name, Prefix="renders/")
