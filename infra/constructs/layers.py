"""Lambda layers built by `layers/build.py` (run `make layers`)."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

DEFAULT_LAYERS_DIR = Path(__file__).resolve().parents[2] / "layers" / "build"
RUNTIME = lambda_.Runtime.PYTHON_3_12


class LayersNotBuiltError(RuntimeError):
    """The layer directories are missing or were built for another architecture."""


class RenderLayers(Construct):
    """`deps`: Powertools and pydantic. `ffmpeg`: /opt/bin/ffmpeg and the title fonts in /opt/fonts/."""

    def __init__(self, scope: Construct, construct_id: str, *, arch: str, layers_dir: Path) -> None:
        super().__init__(scope, construct_id)
        architecture = lambda_.Architecture.ARM_64 if arch == "arm64" else lambda_.Architecture.X86_64
        deps_dir = layers_dir / "deps"
        ffmpeg_dir = layers_dir / f"ffmpeg-{arch}"
        hint = f"run `make layers ARCH={arch}` (or `python layers/build.py --arch {arch}`) first"

        for path, must_contain in ((deps_dir, "python"), (ffmpeg_dir, "bin/ffmpeg")):
            if not (path / must_contain).exists():
                raise LayersNotBuiltError(f"Lambda layer {path} is missing {must_contain}: {hint}")
        # deps/ is not arch-named (pydantic-core is a native wheel), so check which arch it holds.
        built_for = _stamp_arch(layers_dir / ".deps.stamp.json")
        if built_for != arch:
            raise LayersNotBuiltError(f"{deps_dir} was built for {built_for or 'an unknown arch'}, not {arch}: {hint}")

        self.deps = lambda_.LayerVersion(
            self,
            "Deps",
            code=lambda_.Code.from_asset(str(deps_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[architecture],
            description="render-service runtime dependencies (pyproject.toml [project].dependencies minus boto3)",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.ffmpeg = lambda_.LayerVersion(
            self,
            "Ffmpeg",
            code=lambda_.Code.from_asset(str(ffmpeg_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[architecture],
            description="ffmpeg (imageio-ffmpeg build, with libx264/aac/drawtext) and the bundled title fonts",
            removal_policy=RemovalPolicy.DESTROY,
        )


def _stamp_arch(stamp: Path) -> str | None:
    try:
        arch = json.loads(stamp.read_text()).get("arch")
    except (OSError, ValueError):
        return None
    return arch if isinstance(arch, str) else None
