"""Engine benchmarks, each compared with its baseline in the same run (`make bench`).

- group "smart-copy": one timeline of clips that already match the output, rendered with
  smart copy (packets copied, zero x264 runs) and with smart copy switched off (every
  chunk encoded).
- group "chunking": one encoded timeline rendered as small chunks on two workers (as the
  Lambda fan-out does, scaled down to this machine) and as a single pass.

Each round is the whole engine after planning: render every chunk, join, upload (moto S3).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import imageio_ffmpeg
import pytest
from moto import mock_aws

from render_service.engines.ffmpeg import RenderPlan, join_chunks, plan_render, planned_commands, render_chunk
from render_service.models.timeline import RenderRequest
from render_service.settings import Settings

BUCKET = "bench-bucket"
SECONDS = 8
_means: dict[str, float] = {}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """720p30 H.264 High + AAC with a keyframe every second: what a phone export looks like, small."""
    path = tmp_path_factory.mktemp("bench") / "hd.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s=1280x720:r=30:d={SECONDS}",
            "-f",
            "lavfi",
            "-i",
            f"sine=f=440:r=48000:d={SECONDS}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "2",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture
def env(fake_aws_credentials: None, tmp_path: Path, source: Path) -> Iterator[tuple[Any, Settings]]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(source), BUCKET, "hd.mp4")
        yield s3, Settings(table_name="t", bucket_name=BUCKET, work_dir=tmp_path)


REQUEST = RenderRequest.model_validate(
    {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": f"s3://{BUCKET}/hd.mp4"},
                {"type": "clip", "src": f"s3://{BUCKET}/hd.mp4", "trimStart": 2.0, "duration": 4.0},
            ]
        },
        "output": {"resolution": "720p", "fps": 30, "quality": "medium"},
    }
)


def _render(plan: RenderPlan, s3: Any, settings: Settings, workers: int) -> None:
    def one(spec: Any) -> str:
        return render_chunk(spec, s3=s3, bucket=BUCKET, settings=settings, on_progress=lambda _: None)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        keys = list(pool.map(one, plan.chunks))
    info = join_chunks(plan, keys, f"renders/bench/{plan.render_id}.mp4", s3=s3, bucket=BUCKET, settings=settings)
    assert abs(info.duration_seconds - plan.duration_seconds) <= 1 / plan.fps


def _encodes(plan: RenderPlan, settings: Settings) -> int:
    return sum("libx264" in argv for argv in planned_commands(plan, settings))


def _run(benchmark: Any, name: str, plan: RenderPlan, s3: Any, settings: Settings, workers: int = 1) -> None:
    benchmark.extra_info.update(
        {"chunks": len(plan.chunks), "x264_runs": _encodes(plan, settings), "output_seconds": plan.duration_seconds}
    )
    benchmark.pedantic(_render, args=(plan, s3, settings, workers), rounds=3, iterations=1, warmup_rounds=0)
    _means[name] = benchmark.stats.stats.mean


@pytest.mark.benchmark(group="smart-copy")
def test_smart_copy(benchmark: Any, env: tuple[Any, Settings]) -> None:
    s3, settings = env
    plan = plan_render("copy", REQUEST, s3=s3, bucket=BUCKET, settings=settings)
    assert _encodes(plan, settings) == 0
    _run(benchmark, "copy", plan, s3, settings)


@pytest.mark.benchmark(group="smart-copy")
def test_reencode_baseline(benchmark: Any, env: tuple[Any, Settings]) -> None:
    s3, settings = env
    plan = plan_render("encode", REQUEST, s3=s3, bucket=BUCKET, settings=settings, smart_copy=False)
    assert _encodes(plan, settings) == len(plan.chunks)
    _run(benchmark, "encode", plan, s3, settings)
    if "copy" in _means:  # ran just before, in this file's order
        assert _means["copy"] * 3 < _means["encode"]


@pytest.mark.benchmark(group="chunking")
def test_chunked_two_workers(benchmark: Any, env: tuple[Any, Settings]) -> None:
    s3, settings = env
    plan = plan_render("chunked", REQUEST, s3=s3, bucket=BUCKET, settings=settings, smart_copy=False, chunk_seconds=3)
    assert len(plan.chunks) >= 4
    _run(benchmark, "chunked", plan, s3, settings, workers=2)


@pytest.mark.benchmark(group="chunking")
def test_single_pass_baseline(benchmark: Any, env: tuple[Any, Settings]) -> None:
    s3, settings = env
    plan = plan_render("single", REQUEST, s3=s3, bucket=BUCKET, settings=settings, smart_copy=False, chunk_seconds=60)
    assert len(plan.chunks) == 1
    _run(benchmark, "single", plan, s3, settings)
