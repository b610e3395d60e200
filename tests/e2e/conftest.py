"""Fixtures for the tiers that drive the local stack from outside, as a client would (CLI, browser)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import imageio_ffmpeg
import pytest

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack

MakeClip = Callable[..., Path]


@pytest.fixture(scope="module")
def running_stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    """The local stack (moto, the synthesized workflow, our handlers, the HTTP gateway) for one module."""
    with local_stack() as running:
        yield running


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory: pytest.TempPathFactory) -> MakeClip:
    """Generates a small H.264/AAC MP4 (a test pattern with a tone) and returns its path."""
    directory = tmp_path_factory.mktemp("generated-clips")

    def make(name: str, seconds: float, pattern: str = "testsrc2", size: str = "640x360") -> Path:
        path = directory / name
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"{pattern}=size={size}:rate=30:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
            check=True,
        )  # fmt: skip
        return path

    return make
