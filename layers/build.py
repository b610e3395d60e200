"""Build the Lambda layers from wheels, without Docker.

    python layers/build.py --arch x86_64|arm64 [--force]

Writes, under layers/build/ (gitignored):
  deps/python/...            runtime dependencies from pyproject.toml, minus what Lambda ships
  ffmpeg-<arch>/bin/ffmpeg   from the imageio-ffmpeg wheel pinned in pyproject.toml
  ffmpeg-<arch>/fonts/       the bundled title fonts (render_service.fonts) and their licences (/opt/fonts/)

Each layer is skipped when its stamp matches the pinned inputs, so repeated builds are fast.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
BUILD_DIR = ROOT / "layers" / "build"
FUNCTIONS_DIR = ROOT / "functions"

LAMBDA_PYTHON = "3.12"
# Lambda's limit on a function's code plus all its layers, unzipped: 262,144,000 bytes.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Bump when the build steps change, so old stamps stop matching.
BUILD_VERSION = 3

# The python3.12 runtime already ships boto3 and its transport; a second copy in the layer
# costs ~25 MB zipped and pushes the ffmpeg functions towards the 250 MB limit.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}

ARCHES: dict[str, dict[str, Any]] = {
    # python3.12 runs on Amazon Linux 2023 (glibc 2.34), so manylinux_2_28 wheels load too.
    "x86_64": {"deps": ["manylinux2014_x86_64", "manylinux_2_28_x86_64"], "ffmpeg": "manylinux_2_28_x86_64"},
    "arm64": {"deps": ["manylinux2014_aarch64", "manylinux_2_28_aarch64"], "ffmpeg": "manylinux_2_28_aarch64"},
}


class LayerBuildError(RuntimeError):
    pass


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise LayerBuildError(f"cannot parse requirement {requirement!r} in {PYPROJECT}")
    return canonical(match.group(1))


def load_project() -> dict[str, Any]:
    with PYPROJECT.open("rb") as fh:
        project: dict[str, Any] = tomllib.load(fh)["project"]
    return project


def runtime_requirements(project: dict[str, Any]) -> list[str]:
    """`[project].dependencies` is the one list of what runs in Lambda; boto3 comes with the runtime."""
    return [req for req in project["dependencies"] if requirement_name(req) not in RUNTIME_PROVIDED]


def pinned_version(project: dict[str, Any], name: str) -> str:
    for extra in project.get("optional-dependencies", {}).values():
        for req in extra:
            if requirement_name(req) == canonical(name):
                match = re.search(r"==\s*([^\s;,]+)", req)
                if match:
                    return match.group(1)
    raise LayerBuildError(f"{name} must be pinned with == in {PYPROJECT} (the layer is keyed on it)")


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise LayerBuildError(f"pip failed ({result.returncode}): {' '.join(cmd)}")


class Layer:
    """A layer directory whose content is rebuilt only when its stamp (key) changes."""

    def __init__(self, name: str, key: dict[str, Any]) -> None:
        self.name = name
        self.path = BUILD_DIR / name
        self.key = {"build_version": BUILD_VERSION, **key}
        # The stamp sits next to the layer, not in it: anything inside becomes part of the asset.
        self.stamp = BUILD_DIR / f".{name}.stamp.json"

    def up_to_date(self) -> bool:
        if not self.path.is_dir() or not self.stamp.is_file():
            return False
        try:
            stamp: object = json.loads(self.stamp.read_text())
        except ValueError:
            return False
        return stamp == self.key

    def build(self, fill: Any, *, force: bool = False) -> None:
        if not force and self.up_to_date():
            print(f"{self.name}: up to date ({mib(dir_size(self.path))})")
            return
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        # Build aside and swap in, so an interrupted build never leaves a half layer behind a stamp.
        staging = Path(tempfile.mkdtemp(prefix=f".{self.name}-", dir=BUILD_DIR))
        try:
            fill(staging)
            self.stamp.unlink(missing_ok=True)
            if self.path.exists():
                shutil.rmtree(self.path)
            staging.chmod(0o755)
            staging.rename(self.path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.stamp.write_text(json.dumps(self.key, indent=2, sort_keys=True) + "\n")
        print(f"{self.name}: built ({mib(dir_size(self.path))})")


def prune_distributions(site: Path, names: Iterable[str]) -> None:
    """Delete installed distributions (per their RECORD), then any directories left empty."""
    wanted = {canonical(n) for n in names}
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if canonical(dist.metadata["Name"]) in wanted:
            for file in dist.files or []:
                (site / file).unlink(missing_ok=True)
    for directory in sorted((d for d in site.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()


def build_deps(arch: str, project: dict[str, Any], force: bool) -> Layer:
    requirements = runtime_requirements(project)
    platforms: list[str] = ARCHES[arch]["deps"]
    layer = Layer("deps", {"arch": arch, "python": LAMBDA_PYTHON, "requirements": requirements, "platforms": platforms})

    def fill(out: Path) -> None:
        site = out / "python"
        platform_args = [arg for p in platforms for arg in ("--platform", p)]
        pip(
            "install",
            "--quiet",
            "--no-compile",  # the host's .pyc files would be for the wrong Python
            "--target",
            str(site),
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON,
            "--only-binary=:all:",
            *platform_args,
            *requirements,
        )
        prune_distributions(site, RUNTIME_PROVIDED)
        # Console scripts carry the build host's interpreter in their shebang; nothing runs them.
        shutil.rmtree(site / "bin", ignore_errors=True)
        for cache in site.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)

    layer.build(fill, force=force)
    return layer


def build_ffmpeg(arch: str, project: dict[str, Any], force: bool) -> Layer:
    version = pinned_version(project, "imageio-ffmpeg")
    platform: str = ARCHES[arch]["ffmpeg"]
    fonts = font_files()
    layer = Layer(
        f"ffmpeg-{arch}",
        {
            "arch": arch,
            "imageio_ffmpeg": version,
            "platform": platform,
            "fonts": {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in sorted(fonts.items())},
        },
    )

    def fill(out: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            pip(
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                platform,
                "--dest",
                tmp,
                f"imageio-ffmpeg=={version}",
            )
            wheels = list(Path(tmp).glob("imageio_ffmpeg-*.whl"))
            if len(wheels) != 1:
                raise LayerBuildError(f"expected one imageio-ffmpeg wheel for {platform}, got {wheels}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                binaries = [n for n in wheel.namelist() if re.match(r"imageio_ffmpeg/binaries/ffmpeg-[^/]+$", n)]
                if len(binaries) != 1:
                    raise LayerBuildError(f"expected one ffmpeg binary in {wheels[0].name}, got {binaries}")
                (out / "bin").mkdir(parents=True)
                with wheel.open(binaries[0]) as src, (out / "bin" / "ffmpeg").open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        (out / "bin" / "ffmpeg").chmod(0o755)
        (out / "fonts").mkdir()
        for name, path in fonts.items():
            shutil.copy2(path, out / "fonts" / name)

    layer.build(fill, force=force)
    return layer


def font_files() -> dict[str, Path]:
    """Every bundled font file and its licence (as LICENSE-<file stem>), from the font packages."""
    from render_service.fonts import FONTS, package_file  # noqa: PLC0415 (the project is installed by then)

    files: dict[str, Path] = {}
    for family, font in FONTS.items():
        try:
            files[font.file] = package_file(font.file, font.package)
            files[f"LICENSE-{Path(font.file).stem}"] = package_file(font.licence, font.package)
        except ModuleNotFoundError:
            raise LayerBuildError(f"{font.package} (for {family}) is not installed; run `make install`") from None
    for name, path in files.items():
        if not path.is_file():
            raise LayerBuildError(f"{path} ({name}) is missing from its font package")
    return files


def check_size(layers: list[Layer]) -> None:
    sizes = {layer.name: dir_size(layer.path) for layer in layers}
    sizes["functions (code asset)"] = dir_size(FUNCTIONS_DIR)
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"  {name:<24} {mib(size):>12}")
    print(f"  {'total (ffmpeg functions)':<24} {mib(total):>12} of {mib(LAMBDA_UNZIPPED_LIMIT)}")
    if total >= LAMBDA_UNZIPPED_LIMIT:
        raise LayerBuildError(
            f"function code plus layers unzip to {mib(total)}, over Lambda's {mib(LAMBDA_UNZIPPED_LIMIT)} limit; "
            "the deploy would fail. Trim the deps layer or pick a smaller ffmpeg build."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(ARCHES), default=os.environ.get("ARCH", "x86_64"))
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamps match")
    args = parser.parse_args(argv)
    try:
        project = load_project()
        layers = [build_deps(args.arch, project, args.force), build_ffmpeg(args.arch, project, args.force)]
        check_size(layers)
    except LayerBuildError as exc:
        print(f"layer build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
