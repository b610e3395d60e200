"""`make demo`: one real render, end to end, on the local stack, over HTTP.

Makes three small sample clips with ffmpeg, uploads them through the API's presigned PUT URLs,
asks for a render, shows its progress, downloads the MP4 through its presigned URL and probes it.
Then renders a Remotion TextAnimation (engine "remotion", on the local Remotion stand-in) the same
way. Exits 0 only when the first file is a real H.264/AAC video as long as its clips and the
second has the frames, fps and size asked for; the last line printed is the first MP4's path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from infra.local.stack import local_stack

SAMPLES = [("testsrc2", 440, 2.0), ("smptebars", 660, 1.5), ("rgbtestsrc", 880, 2.5)]
OUT_DIR = Path(".local")
USER = "demo-user"
TIMEOUT_SECONDS = 300
TEXT_ANIMATION: dict[str, Any] = {
    "engine": "remotion",
    "subject": {"type": "generation", "id": "demo-title"},
    "kind": "clip",
    "composition": "TextAnimation",
    "inputProps": {
        "text": "Rendered by the remotion engine",
        "style": "slide-up",
        "fontFamily": "Source Serif Pro",
        "fontSize": 96,
        "color": "#ffd166",
        "backgroundColor": "#073b4c",
    },
    "durationInFrames": 90,
    "fps": 30,
    "output": {"codec": "h264", "crf": 20, "width": 1280, "height": 720},
}


@dataclass
class Probe:
    duration: float
    width: int
    height: int
    fps: float
    frames: int
    video_codec: str
    audio_codec: str | None


def probe(path: Path) -> Probe:
    """An independent check with PyAV (libav's own demuxer), not the engine's ffmpeg parsing."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = sum(1 for _ in container.demux(video) if _.size)
        duration = float(container.duration or 0) / 1_000_000
        return Probe(
            duration=duration,
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=float(video.average_rate or 0),
            frames=frames,
            video_codec=video.codec_context.name,
            audio_codec=audio.codec_context.name if audio else None,
        )


def make_samples(directory: Path) -> list[tuple[Path, float]]:
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    directory.mkdir(parents=True, exist_ok=True)
    samples = []
    for index, (pattern, tone, seconds) in enumerate(SAMPLES):
        path = directory / f"sample-{index}-{pattern}.mp4"
        if not path.exists():
            subprocess.run(
                [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
                 "-f", "lavfi", "-i", f"{pattern}=size=1280x720:rate=30:duration={seconds}",
                 "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000:duration={seconds}",
                 "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-shortest", str(path)],
                check=True,
            )  # fmt: skip
        samples.append((path, seconds))
    return samples


def _show(render: dict[str, Any], previous: str) -> str:
    bar = "#" * (render["progress"] // 5)
    line = f"  {render['status']:<10} {render['phase']:<11} [{bar:<20}] {render['progress']:3d}%"
    if render.get("queuePosition"):
        line += f"  (position {render['queuePosition']} in your queue)"
    if line != previous:
        print(line, flush=True)
    return line


def _wait(api: requests.Session, base: str, render_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    render: dict[str, Any] = {}
    shown = ""
    while time.monotonic() < deadline:
        render = api.get(f"{base}/renders/{render_id}", timeout=30).json()
        shown = _show(render, shown)
        if render["status"] in ("complete", "failed", "cancelled"):
            break
        time.sleep(0.5)
    return render


def _remotion_title(api: requests.Session, base: str) -> Path | None:
    """One TextAnimation through the remotion engine: the same API, workflow and delivery."""
    created = api.post(f"{base}/renders", json=TEXT_ANIMATION, timeout=30)
    if created.status_code != 202:
        print(f"remotion render refused: {created.status_code} {created.text}", file=sys.stderr)
        return None
    render_id = created.json()["renderId"]
    print(f"remotion TextAnimation {render_id} accepted, {created.json()['cost']} credits reserved")
    render = _wait(api, base, render_id)
    if render.get("status") != "complete":
        print(f"remotion render did not complete: {render}", file=sys.stderr)
        return None
    target = OUT_DIR / "renders" / f"{render_id}.mp4"
    download = requests.get(render["output"]["url"], timeout=60)
    download.raise_for_status()
    target.write_bytes(download.content)
    info = probe(target)
    output = TEXT_ANIMATION["output"]
    wanted = (TEXT_ANIMATION["durationInFrames"], float(TEXT_ANIMATION["fps"]), output["width"], output["height"])
    print(
        f"{target}: {info.video_codec}/{info.audio_codec} {info.width}x{info.height} @ {info.fps:g} fps, "
        f"{info.frames} frames; Remotion reported {render['engineCost']['display']} "
        f"({render['engineCost']['disclaimer']})"
    )
    if (info.frames, info.fps, info.width, info.height) != wanted or info.video_codec != "h264":
        print(f"NOT OK: the TextAnimation is not {wanted[0]} frames of H.264 at {wanted[1]:g} fps, "
              f"{wanted[2]}x{wanted[3]}", file=sys.stderr)  # fmt: skip
        return None
    return target


def run() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    samples = make_samples(OUT_DIR / "samples")
    with local_stack() as (cloud, gateway):
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer local:{USER}"
        print(f"local stack at {gateway.url} (AWS on {cloud.endpoint})")

        scenes = []
        for path, _ in samples:
            ticket = api.post(
                f"{gateway.url}/uploads",
                json={"filename": path.name, "contentType": "video/mp4", "sizeBytes": path.stat().st_size},
                timeout=30,
            )
            ticket.raise_for_status()
            upload = ticket.json()
            requests.put(
                upload["url"], data=path.read_bytes(), headers=upload["headers"], timeout=60
            ).raise_for_status()
            scenes.append({"type": "clip", "src": upload["src"]})
        print(f"uploaded {len(scenes)} sample clips")

        created = api.post(
            f"{gateway.url}/renders",
            json={"engine": "ffmpeg", "subject": {"type": "movie", "id": "demo"}, "timeline": {"scenes": scenes},
                  "output": {"resolution": "720p", "fps": 30}},
            timeout=30,
        )  # fmt: skip
        if created.status_code != 202:
            print(f"render refused: {created.status_code} {created.text}", file=sys.stderr)
            return 1
        render_id = created.json()["renderId"]
        reserved = created.json()["cost"]
        print(f"render {render_id} accepted ({created.headers['Location']}), {reserved} credits reserved")

        render = _wait(api, gateway.url, render_id)
        if render.get("status") != "complete":
            print(f"render did not complete: {render}", file=sys.stderr)
            return 1

        cloud.ended_execution(render_id)
        history = cloud.client("stepfunctions").get_execution_history(executionArn=cloud.execution_arn(render_id))
        states = [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]
        print(f"execution {render_id}: {' -> '.join(dict.fromkeys(states))}")
        announced = [e["detail-type"] for e in cloud.received_events(wait_seconds=1)]
        print(f"events announced: {', '.join(announced)}; charged {render['cost']} of {reserved} credits reserved")

        target = OUT_DIR / "renders" / f"{render_id}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        download = requests.get(render["output"]["url"], timeout=60)
        download.raise_for_status()
        target.write_bytes(download.content)

        title = _remotion_title(api, gateway.url)
        if title is None:
            return 1

    info = probe(target)
    expected = sum(seconds for _, seconds in samples)
    frame = 1 / 30
    print(
        f"{target}: {info.video_codec}/{info.audio_codec} {info.width}x{info.height} @ {info.fps:g} fps, "
        f"{info.duration:.3f} s ({info.frames} frames), {target.stat().st_size} bytes; clips sum to {expected:.3f} s"
    )
    problems = []
    if info.video_codec != "h264" or info.audio_codec != "aac":
        problems.append("expected H.264 video and AAC audio")
    if abs(info.duration - expected) > frame + 1e-6 or abs(info.frames / 30 - expected) > frame + 1e-6:
        problems.append(f"duration {info.duration:.3f} s is not {expected:.3f} s within one frame")
    if (info.width, info.height) != (1280, 720):
        problems.append("expected 1280x720")
    if problems:
        print("NOT OK: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(target.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(run())
