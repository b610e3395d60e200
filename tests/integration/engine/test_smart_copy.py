"""Smart copy: sources that already match the output are copied packet for packet, never re-encoded."""

from __future__ import annotations

from typing import Any

import pytest

from render_service.engines.ffmpeg import audio_copy, plan_render, planned_commands

OUT = {"resolution": "720p", "aspectRatio": "16:9", "fps": 30, "quality": "medium"}


@pytest.fixture
def hd_sources(media: Any, upload: Any) -> dict[str, str]:
    # superfast uses B-frames, so copies must cope with reordering and edit lists.
    common = {"size": "1280x720", "seconds": 2.0, "keyint": 30, "preset": "superfast"}
    return {
        "red": upload(media.clip("hd-red", color="red", **common)),
        "pattern": upload(media.clip("hd-pattern", tone=660, **common)),
    }


def _all_args(argvs: list[list[str]]) -> str:
    return " ".join(" ".join(argv) for argv in argvs)


def test_matching_clips_plan_no_encode_and_render_correctly(
    render: Any, hd_sources: dict[str, str], media_check: Any, settings: Any
) -> None:
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": hd_sources["red"]},
                {"type": "clip", "src": hd_sources["pattern"], "trimStart": 1.0, "duration": 1.0},
                {"type": "clip", "src": hd_sources["red"], "duration": 1.0, "volume": 0.5},
            ]
        },
        "output": OUT,
    }
    result = render(request)
    commands = planned_commands(result.plan, settings)
    decoded = media_check.decode(result.path)

    assert [c.mode for c in result.plan.chunks] == ["copy", "copy", "copy"]
    assert "libx264" not in _all_args(commands)
    *chunks, audio, join = commands
    assert all("-c:v copy" in " ".join(argv) for argv in [*chunks, join])
    assert "-c:v" not in audio  # the sound alone, its inputs' pictures never decoded (-vn)
    assert decoded.frames == result.plan.total_frames == 120
    assert abs(decoded.audio_seconds - decoded.video_seconds) <= 1 / 30
    assert (decoded.width, decoded.height, decoded.video_codec, decoded.pix_fmt) == (1280, 720, "h264", "yuv420p")
    red = media_check.frame_rgb(result.path, 10)
    assert red[0] > 200
    assert red[1] < 50
    assert media_check.frame_spread(result.path, 75) > 100  # the test pattern, from its second second
    assert media_check.frame_rgb(result.path, 110)[0] > 200


def test_cuts_off_keyframes_or_other_sizes_are_encoded(
    s3: Any, settings: Any, hd_sources: dict[str, str], media: Any, upload: Any
) -> None:
    small = upload(media.clip("small-red", color="red"))
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": hd_sources["red"], "trimStart": 0.5},  # not on a keyframe
                {"type": "clip", "src": small},  # 320x180 into 1280x720
                {"type": "clip", "src": hd_sources["pattern"], "duration": 1.5},  # ends between keyframes
            ]
        },
        "output": OUT,
    }
    from render_service.models.timeline import RenderRequest

    plan = plan_render(
        "r-mixed", RenderRequest.model_validate(request), s3=s3, bucket=settings.bucket_name, settings=settings
    )

    assert plan.encode_chunks == len(plan.chunks)
    assert "libx264" in _all_args(planned_commands(plan, settings))


def _frame_digests(path: Any, start: int = 0, count: int | None = None) -> list[str]:
    """A digest of every decoded picture (its Y, U and V planes), in presentation order."""
    import hashlib

    import av

    digests = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= start and (count is None or i < start + count):
                digests.append(hashlib.sha256(b"".join(bytes(p) for p in frame.planes)).hexdigest())
    return digests


def _first_times(path: Any) -> tuple[float, float]:
    """When the first picture and the first sound play (seconds)."""
    import av

    with av.open(str(path)) as container:
        video = next(container.decode(video=0)).time
    with av.open(str(path)) as container:
        audio = next(container.decode(audio=0)).time
    return float(video or 0.0), float(audio or 0.0)


def _decoder_errors(path: Any) -> str:
    """What ffmpeg's decoders complain about while decoding every frame of a file."""
    import subprocess

    import imageio_ffmpeg

    done = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stderr.strip() + ("" if done.returncode == 0 else f" (exit {done.returncode})")


def test_next_to_encoded_scenes_only_clips_with_our_parameter_sets_are_copied(
    render: Any, hd_sources: dict[str, str], media_check: Any, upload: Any, tmp_path: Any
) -> None:
    # A clip our own encoder made (a previous render of the service) shares our parameter sets; the
    # superfast pattern (another encoder setup: B-frames, other references) does not.
    ours = render(
        {
            "timeline": {"scenes": [{"type": "clip", "src": hd_sources["pattern"], "trimStart": 0.5, "duration": 1.0}]},
            "output": OUT,
        },
        render_id="r-ours",
    )
    assert ours.plan.encode_chunks == 1
    reused = upload(ours.path, key="ours.mp4")
    request = {
        "timeline": {
            "scenes": [
                {"type": "title", "text": "Intro", "duration": 1.0},
                {"type": "clip", "src": reused},
                {"type": "clip", "src": hd_sources["pattern"]},
                {"type": "clip", "src": hd_sources["red"], "trimStart": 0.5},
            ]
        },
        "output": OUT,
    }

    result = render(request)
    decoded = media_check.decode(result.path)

    assert [c.mode for c in result.plan.chunks] == ["encode", "copy", "encode"]
    assert [len(c.segments) for c in result.plan.chunks] == [1, 1, 2]
    assert decoded.frames == result.plan.total_frames == 30 + 30 + 60 + 45
    assert _decoder_errors(result.path) == ""
    # The copied pictures decode to exactly what the clip itself decodes to.
    assert _frame_digests(result.path, start=30, count=30) == _frame_digests(ours.path)
    assert abs(decoded.audio_seconds - decoded.video_seconds) <= 1 / 30
    assert media_check.frame_spread(result.path, 15) > 100  # title
    assert media_check.frame_spread(result.path, 90) > 100  # the encoded pattern
    assert media_check.frame_rgb(result.path, 150)[0] > 200  # encoded red


def _beeping_clip(path: Any, *, seconds: float, beep_at: float, size: str = "1280x720", rate: int = 48000) -> Any:
    """H.264 High (B-frames, an edit list) + AAC whose only sound is a 1 kHz beep at `beep_at`."""
    import subprocess

    import imageio_ffmpeg

    beep = f"if(between(t,{beep_at},{beep_at + 0.1}),0.8*sin(2*PI*1000*t),0)"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}",
         "-f", "lavfi", "-i", f"aevalsrc='{beep}':s={rate}:c=stereo:d={seconds}",
         "-c:v", "libx264", "-preset", "superfast", "-g", "30", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-ac", "2", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _onsets(decoded: tuple[list[float], int], threshold: float = 0.2) -> list[float]:
    """Where each beep starts in the decoded audio (`media_check.mono_samples`, in seconds): the first
    loud sample after a quiet spell."""
    values, rate = decoded
    onsets: list[float] = []
    last = -1.0
    for i, v in enumerate(values):
        t = i / rate
        if abs(v) > threshold:
            if t - last > 0.3:
                onsets.append(t)
            last = t
    return onsets


def test_whole_matching_clips_are_remuxed_with_their_audio_copied_in_sync(
    s3: Any, settings: Any, media_check: Any, upload: Any, tmp_path: Any, render: Any
) -> None:
    # 1.5 s clips: AAC frames (1024 samples) never line up with the clip ends, so any priming or
    # padding carried across a boundary would move every later beep.
    srcs = [
        upload(_beeping_clip(tmp_path / f"beep{i}.mp4", seconds=1.5, beep_at=0.5), key=f"beep{i}.mp4") for i in range(6)
    ]
    request = {"timeline": {"scenes": [{"type": "clip", "src": s} for s in srcs]}, "output": OUT}

    result = render(request)
    decoded = media_check.decode(result.path)

    assert result.plan.remux
    assert result.plan.audio_copy is not None
    commands = " ".join(planned_commands(result.plan, settings)[-1])
    assert "libx264" not in commands
    assert "-c:a copy" in commands
    assert "aac -b:a" not in commands  # no audio encoder
    # No chunk ever went through S3: the only objects under work/ are none (planning staged nothing
    # for s3:// sources of the media bucket) and nothing was uploaded besides the output.
    assert s3.list_objects_v2(Bucket=settings.bucket_name, Prefix="work/").get("KeyCount", 0) == 0
    assert decoded.frames == result.plan.total_frames == 270  # every frame decodes
    assert _decoder_errors(result.path) == ""
    assert _first_times(result.path) == (0.0, 0.0)  # picture and sound both start at zero
    assert abs(decoded.audio_seconds - decoded.video_seconds) <= 1 / 30
    onsets = _onsets(media_check.mono_samples(result.path))
    assert len(onsets) == 6
    # Each clip's beep where it is in its clip, within the stated tolerance (half an AAC packet),
    # at exactly the offset the splice chose: errors do not add up across boundaries.
    tolerance = audio_copy.tolerance_seconds() + 0.001
    for k, (onset, piece) in enumerate(zip(onsets, result.plan.audio_copy, strict=True)):
        assert abs(onset - (1.5 * k + 0.5)) <= tolerance, (k, onsets)
        assert abs(onset - (1.5 * k + 0.5 + piece.offset_samples / 48000)) <= 0.001, (k, onsets)


def test_clips_in_other_audio_formats_are_remuxed_with_their_audio_encoded_sample_exactly(
    s3: Any, settings: Any, media_check: Any, upload: Any, tmp_path: Any, render: Any
) -> None:
    srcs = [
        upload(_beeping_clip(tmp_path / f"mixed{i}.mp4", seconds=1.5, beep_at=0.5, rate=rate), key=f"mixed{i}.mp4")
        for i, rate in enumerate((48000, 44100, 48000, 44100))
    ]
    request = {"timeline": {"scenes": [{"type": "clip", "src": s} for s in srcs]}, "output": OUT}

    result = render(request)

    assert result.plan.remux
    assert result.plan.audio_copy is None
    assert "aac -b:a" in " ".join(planned_commands(result.plan, settings)[-1])
    assert _first_times(result.path) == (0.0, 0.0)
    onsets = _onsets(media_check.mono_samples(result.path))
    assert len(onsets) == 4
    for k, onset in enumerate(onsets):
        assert abs(onset - (1.5 * k + 0.5)) <= 0.005, (k, onsets)
