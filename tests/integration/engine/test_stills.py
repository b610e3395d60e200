"""Poster and thumbnail: made from the joined output, sized right, and showing content (PyAV checks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import imageio_ffmpeg
import pytest

from render_service import errors
from render_service.engines.ffmpeg import StillKeys, stills
from render_service.engines.ffmpeg.stills import candidate_times, capture

SERVICE_BUCKET = "svc-bucket"
KEYS = StillKeys(poster="renders/u/r-stills.poster.jpg", thumbnail="renders/u/r-stills.thumb.jpg")


@dataclass(frozen=True)
class Image:
    codec: str
    width: int
    height: int
    mean: float  # luma
    spread: float  # luma standard deviation: near 0 for a uniform frame


def look(path: Path) -> Image:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(video=0))
        plane = frame.reformat(format="gray").planes[0]
        data = bytes(plane)
        rows = [data[y * plane.line_size : y * plane.line_size + frame.width] for y in range(frame.height)]
        pixels = [v for row in rows for v in row]
        mean = sum(pixels) / len(pixels)
        spread = (sum((v - mean) ** 2 for v in pixels) / len(pixels)) ** 0.5
        return Image(stream.codec_context.name, frame.width, frame.height, mean, spread)


def download(s3: Any, key: str, tmp_path: Path) -> Path:
    path = tmp_path / key.rsplit("/", 1)[-1]
    s3.download_file(SERVICE_BUCKET, key, str(path))
    assert s3.head_object(Bucket=SERVICE_BUCKET, Key=key)["ContentType"] == "image/jpeg"
    return path


def test_a_timeline_that_fades_in_from_black_gets_a_poster_and_thumbnail_with_content(
    render: Any, media: Any, upload: Any, s3: Any, tmp_path: Path
) -> None:
    black = upload(media.clip("black-opening", color="black", seconds=1.5))
    pattern = upload(media.clip("pattern", seconds=2.0))
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": black},
                {"type": "clip", "src": pattern, "transition": {"type": "fadeblack", "duration": 0.5}},
            ]
        },
        "output": {"resolution": "720p", "fps": 30, "quality": "low"},
    }
    rendered = render(request, render_id="r-stills", stills=KEYS)

    assert rendered.info.stills == KEYS
    # The first candidate falls in the black opening: taking it would have been the naive choice.
    assert candidate_times(rendered.info.duration_seconds)[0] < 1.5 - 0.5
    poster = look(download(s3, KEYS.poster, tmp_path))
    thumbnail = look(download(s3, KEYS.thumbnail, tmp_path))
    assert (poster.codec, poster.width, poster.height) == ("mjpeg", 1280, 720)
    assert (thumbnail.codec, thumbnail.width, thumbnail.height) == ("mjpeg", 320, 180)
    for image in (poster, thumbnail):
        assert image.spread > 30, image  # testsrc2's pattern, not a black or half-faded frame
        assert image.mean > 40, image


def test_portrait_outputs_get_a_thumbnail_320_high(
    render: Any, media: Any, upload: Any, s3: Any, tmp_path: Path
) -> None:
    pattern = upload(media.clip("pattern", seconds=2.0))
    request = {
        "timeline": {"scenes": [{"type": "clip", "src": pattern, "fit": "cover"}]},
        "output": {"resolution": "720p", "aspectRatio": "9:16", "fps": 30, "quality": "low"},
    }
    render(request, render_id="r-stills", stills=KEYS)
    poster = look(download(s3, KEYS.poster, tmp_path))
    assert (poster.width, poster.height) == (720, 1280)
    thumbnail = look(download(s3, KEYS.thumbnail, tmp_path))
    assert (thumbnail.width, thumbnail.height) == (180, 320)


def test_a_uniform_video_still_gets_its_stills(media: Any, tmp_path: Path) -> None:
    video = media.clip("all-black", color="black", seconds=1.0)
    stills = capture(
        video,
        duration_seconds=1.0,
        width=320,
        height=180,
        out_dir=tmp_path / "stills",
        ffmpeg=imageio_ffmpeg.get_ffmpeg_exe(),
    )
    assert stills.at_seconds == candidate_times(1.0)[0]  # nothing better: the earliest
    poster, thumbnail = look(stills.poster), look(stills.thumbnail)
    assert (poster.width, poster.height, thumbnail.width, thumbnail.height) == (320, 180, 320, 180)
    assert poster.spread < 2


def test_stills_that_cannot_be_made_do_not_fail_the_join(
    render: Any, media: Any, upload: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(argv: list[str], what: str, *_: Any) -> bytes:
        raise errors.EncodeFailed(f"{what} failed: a decoder gave up")

    monkeypatch.setattr(stills, "_run", broken)
    pattern = upload(media.clip("pattern", seconds=2.0))
    request = {"timeline": {"scenes": [{"type": "clip", "src": pattern}]}, "output": {"resolution": "720p"}}
    rendered = render(request, render_id="r-stills", stills=KEYS)
    assert rendered.info.stills is None
    assert rendered.info.duration_seconds == pytest.approx(2.0, abs=0.04)
    listed = s3.list_objects_v2(Bucket=SERVICE_BUCKET, Prefix="renders/u/r-stills.")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["renders/u/r-stills.mp4"]


def test_a_single_chunk_rendered_inline_takes_its_stills_from_its_own_run(
    s3: Any, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from render_service.engines.ffmpeg import prepare_render, render_inline, runner
    from render_service.models.timeline import RenderRequest

    runs: list[list[str]] = []
    real = runner._run

    def counted(argv: Any, **kwargs: Any) -> Any:
        runs.append(list(argv))
        return real(argv, **kwargs)

    monkeypatch.setattr(runner, "_run", counted)
    monkeypatch.setattr(stills, "_run", lambda *a, **k: pytest.fail("the output was decoded again for its stills"))
    title = {"type": "title", "text": "Hello there", "duration": 2, "animation": "fade-in"}
    request = RenderRequest.model_validate({"timeline": {"scenes": [title]}, "output": {"resolution": "720p"}})
    with prepare_render("r-inline", request, s3=s3, bucket=SERVICE_BUCKET, settings=settings) as prepared:
        out = render_inline(prepared.plan, prepared.local, "renders/u/r-inline.mp4", s3=s3, bucket=SERVICE_BUCKET,
                            settings=settings, on_progress=lambda _: None, stills=KEYS)  # fmt: skip

    assert out.stills == KEYS
    assert sum("libx264" in argv for argv in runs) == 1  # one render, no join
    poster, thumbnail = look(download(s3, KEYS.poster, tmp_path)), look(download(s3, KEYS.thumbnail, tmp_path))
    assert (poster.width, poster.height, thumbnail.width, thumbnail.height) == (1280, 720, 320, 180)
    assert poster.spread > 5  # the title's text, faded in (a black frame: 0)


def test_a_remux_takes_its_stills_from_its_clips_while_it_runs(
    render: Any, media: Any, upload: Any, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = {"size": "1280x720", "seconds": 2.0, "keyint": 30, "preset": "superfast"}
    red, pattern = (upload(media.clip("hd-red", color="red", **common)),
                    upload(media.clip("hd-pattern", tone=660, **common)))  # fmt: skip
    opened: list[str] = []
    real = stills._run

    def spy(argv: list[str], what: str, *rest: Any) -> bytes:
        opened.extend(argv[i + 1] for i, arg in enumerate(argv) if arg == "-i")
        return real(argv, what, *rest)

    monkeypatch.setattr(stills, "_run", spy)
    scenes = [{"type": "clip", "src": src} for src in (red, pattern, red)]
    rendered = render({"timeline": {"scenes": scenes}, "output": {"resolution": "720p"}}, render_id="r-stills",
                      stills=KEYS)  # fmt: skip

    assert rendered.plan.remux
    assert rendered.info.stills == KEYS
    # Candidates at 1.2, 2.1, 3.0, 3.9 and 4.8 s of the output: red, the pattern three times, red.
    assert len(opened) == 5
    assert all(Path(p).name.startswith("source-") for p in opened)  # the clips, not the output
    assert len(set(opened)) == 2
    poster = look(download(s3, KEYS.poster, tmp_path))
    assert (poster.width, poster.height) == (1280, 720)
    assert poster.spread > 5  # the pattern, not a uniform red frame
