"""Sources (allow list, https staging, pinning) and failures that must read as domain errors."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from render_service import errors
from render_service.engines.ffmpeg import plan_render, render_chunk
from render_service.models.timeline import RenderRequest
from render_service.sources import Fetched

OUT = {"resolution": "720p", "fps": 30, "quality": "low"}


def _request(*scenes: dict[str, Any], **extra: Any) -> RenderRequest:
    return RenderRequest.model_validate({"timeline": {"scenes": list(scenes), **extra}, "output": OUT})


def _plan(s3: Any, settings: Any, request: RenderRequest, **kw: Any) -> Any:
    return plan_render("r-src", request, s3=s3, bucket=settings.bucket_name, settings=settings, **kw)


def test_a_corrupt_source_is_invalid_and_names_the_scene(s3: Any, settings: Any, media: Any, upload: Any) -> None:
    good = upload(media.clip("red", color="red"))
    bad = upload(media.garbage("broken.mp4"))
    with pytest.raises(errors.SourceInvalid, match=r"^scenes\[1\]\.src: ") as failure:
        _plan(s3, settings, _request({"type": "clip", "src": good}, {"type": "clip", "src": bad}))
    assert "Traceback" not in str(failure.value)


def test_a_playlist_disguised_as_video_is_refused(s3: Any, settings: Any, upload: Any, tmp_path: Path) -> None:
    playlist = tmp_path / "evil.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    with pytest.raises(errors.SourceInvalid, match=r"scenes\[0\]\.src"):
        _plan(s3, settings, _request({"type": "clip", "src": upload(playlist)}))


def test_audio_only_file_is_not_a_clip(s3: Any, settings: Any, media: Any, upload: Any) -> None:
    with pytest.raises(errors.SourceInvalid, match=r"scenes\[0\]\.src: no video stream"):
        _plan(s3, settings, _request({"type": "clip", "src": upload(media.tone("tone"))}))


def test_buckets_outside_the_allow_list_are_refused_before_any_download(
    s3: Any, settings: Any, media: Any, upload: Any
) -> None:
    src = upload(media.clip("red", color="red"), bucket="other-bucket")
    with pytest.raises(errors.SourceNotAllowed, match=r"^scenes\[1\]\.src: bucket 'other-bucket' is not allowed$"):
        _plan(s3, settings, _request({"type": "title", "text": "x"}, {"type": "clip", "src": src}))
    assert not (settings.work_dir / "r-src").exists()


def test_a_missing_object_is_unavailable(s3: Any, settings: Any) -> None:
    with pytest.raises(errors.SourceUnavailable, match="does not exist"):
        _plan(s3, settings, _request({"type": "clip", "src": "s3://media-bucket/nope.mp4"}))


def test_https_sources_are_fetched_once_and_staged_for_the_workers(
    s3: Any, settings: Any, media: Any, render: Any
) -> None:
    fetched: list[str] = []
    original = media.clip("lime", color="lime")

    def fake_fetch(url: str, dest: Path, *, max_bytes: int, where: str, deadline: float) -> Fetched:
        fetched.append(url)
        shutil.copyfile(original, dest)
        return Fetched(size_bytes=dest.stat().st_size)

    url = "https://media.example/v/lime.mp4?sig=abc"
    request = _request({"type": "clip", "src": url}, {"type": "clip", "src": url, "trimStart": 0.5})
    plan = _plan(s3, settings, request, fetch_https=fake_fetch)

    assert fetched == [url]
    assert plan.staged_keys == ["work/r-src/sources/0.mp4"]
    assert {(ref.bucket, ref.key) for c in plan.chunks for ref in c.sources} == {
        (settings.bucket_name, "work/r-src/sources/0.mp4")
    }
    key = render_chunk(
        plan.chunks[0], s3=s3, bucket=settings.bucket_name, settings=settings, on_progress=lambda _: None
    )
    assert key == "work/r-src/attempt-1/chunk-0000.mp4"


def test_workers_refuse_a_source_replaced_after_planning(s3: Any, settings: Any, media: Any, upload: Any) -> None:
    src = upload(media.clip("red", color="red"), key="swap.mp4")
    plan = _plan(s3, settings, _request({"type": "clip", "src": src}))
    upload(media.clip("blue", color="blue"), key="swap.mp4")

    with pytest.raises(errors.SourceUnavailable, match="changed"):
        render_chunk(plan.chunks[0], s3=s3, bucket=settings.bucket_name, settings=settings, on_progress=lambda _: None)


def test_ffmpeg_failures_are_short_encode_errors(s3: Any, settings: Any) -> None:
    plan = _plan(s3, settings, _request({"type": "title", "text": "x", "duration": 0.5}))
    # The API refuses unknown colours; a spec that reaches ffmpeg with one anyway must fail cleanly.
    chunk = plan.chunks[0]
    broken = chunk.model_copy(update={"segments": [chunk.segments[0].model_copy(update={"background": "notacolour"})]})
    with pytest.raises(errors.EncodeFailed) as failure:
        render_chunk(broken, s3=s3, bucket=settings.bucket_name, settings=settings, on_progress=lambda _: None)

    message = str(failure.value)
    assert message.startswith("chunk 0 failed: ")
    assert "notacolour" in message
    assert "\n" not in message
    assert len(message) < 350
    assert not list((settings.work_dir / "r-src").glob("chunk-*"))  # cleaned up after the failure


def test_progress_ends_at_the_chunk_frame_count(render: Any, media: Any, upload: Any) -> None:
    src = upload(media.clip("pattern", seconds=2.0))
    result = render({"timeline": {"scenes": [{"type": "clip", "src": src}]}, "output": OUT}, chunk_seconds=0.5)

    for chunk in result.plan.chunks:
        reported = result.progress[chunk.index]
        assert reported
        assert reported[-1] == chunk.frames
        assert reported == sorted(reported)


def test_portrait_output_with_contain_letterboxes(render: Any, media: Any, upload: Any, media_check: Any) -> None:
    src = upload(media.clip("red", color="red"))
    request = {
        "timeline": {"scenes": [{"type": "clip", "src": src, "fit": "contain"}]},
        "output": {"resolution": "720p", "aspectRatio": "9:16", "fps": 24, "quality": "low"},
    }
    result = render(request)
    decoded = media_check.decode(result.path)

    assert (decoded.width, decoded.height, decoded.fps, decoded.sar) == (720, 1280, 24, 1)
    assert decoded.frames == 24
    assert abs(result.info.duration_seconds - 1.0) <= 1 / 24
    # A 16:9 picture in a 9:16 frame: a red band across the middle, black above and below.
    mean = media_check.frame_rgb(result.path, 12)
    assert 40 < mean[0] < 110
    assert media_check.frame_spread(result.path, 12) > 200


def test_uploads_are_copied_next_to_the_render_so_workers_never_read_inputs(
    s3: Any, settings: Any, media: Any, upload: Any
) -> None:
    src = upload(media.clip("red"), key="inputs/alice/u1/intro.mp4", bucket=settings.bucket_name)
    plan = _plan(s3, settings, _request({"type": "clip", "src": src}))

    refs = [ref for chunk in plan.chunks for ref in chunk.sources]
    assert refs
    assert all(ref.bucket == settings.bucket_name and ref.key.startswith("work/r-src/sources/") for ref in refs)
    assert set(plan.staged_keys) >= {ref.key for ref in refs}
    # Replacing the upload after planning changes nothing: the render uses the copy it probed.
    upload(media.clip("blue", color="blue"), key="inputs/alice/u1/intro.mp4", bucket=settings.bucket_name)
    render_chunk(plan.chunks[0], s3=s3, bucket=settings.bucket_name, settings=settings, on_progress=lambda _: None)


def test_every_https_source_of_a_render_shares_one_deadline(s3: Any, settings: Any, media: Any) -> None:
    from render_service.engines.ffmpeg.prepare import SOURCES_BUDGET_SECONDS

    deadlines: list[float] = []
    original = media.clip("lime", color="lime")

    def fake_fetch(url: str, dest: Path, *, max_bytes: int, where: str, deadline: float) -> Fetched:
        deadlines.append(deadline)
        shutil.copyfile(original, dest)
        return Fetched(size_bytes=dest.stat().st_size)

    before = time.monotonic()
    request = _request(
        {"type": "clip", "src": "https://a.example/1.mp4"}, {"type": "clip", "src": "https://b.example/2.mp4"}
    )
    _plan(s3, settings, request, fetch_https=fake_fetch)

    assert len(deadlines) == 2
    assert deadlines[0] == deadlines[1]
    assert before < deadlines[0] <= time.monotonic() + SOURCES_BUDGET_SECONDS
