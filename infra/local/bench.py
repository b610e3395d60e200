"""`make bench`: renders through the local stack's HTTP API against the naive single ffmpeg, in one run.

Every scenario runs end to end as a client would (POST /renders, poll GET, download the MP4), with
sources it generates and uploads first (uploads are not timed). Beside it, in the same run, the
naive way of the product plans: one ffmpeg with a concat filter re-encoding everything with
libx264 at its default preset (`plans`), and the same command at `-preset veryfast` (`fair`).
Results go to `bench/results/latest.json` and `bench/results/latest.md`.

`BENCH_SCALE` (default 1, the issue's sizes) shortens every source and repeat count, so the bench
can run on a shared machine while developing: `BENCH_SCALE=0.1 make bench`.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import requests

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / ".local" / "bench-sources"
USER = "bench"
FPS = 30

# Cloud projection assumptions (stated in the report).
LAMBDA_MB = 3008  # Lambda gives one vCPU per 1769 MB: about 1.7 vCPU
LAMBDA_GB = LAMBDA_MB / 1024
LAMBDA_VCPU = LAMBDA_MB / 1769
PRICE_GB_SECOND = 0.0000166667  # x86_64, us-east-1
PRICE_REQUEST = 0.20 / 1_000_000
PRICE_TRANSITION = 0.025 / 1000  # Step Functions standard
SAMPLE_SECONDS = 0.1  # the children's memory, sampled this often
COLD_START_SECONDS = 1.5  # the ffmpeg layer (about 170 MB) on a cold chunk worker
S3_MB_PER_SECOND = 80.0
CHUNK_SECONDS = 15.0  # engines/ffmpeg/plan.py DEFAULT_CHUNK_SECONDS
DEPLOYED_POLL_SECONDS = 5.0


def scale() -> float:
    value = float(os.environ.get("BENCH_SCALE", "1"))
    if not 0 < value <= 1:
        raise SystemExit("BENCH_SCALE must be in (0, 1]")
    return value


def frames(seconds: float) -> int:
    return max(FPS, round(seconds * FPS))


# --- measuring ffmpeg children and the stack ---------------------------------------------


@dataclass
class Measure:
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # ffmpeg children (user + system)
    stack_cpu_seconds: float = 0.0  # this process: moto, the handlers, the gateway, the client
    peak_rss_mb: float = 0.0  # sum of the ffmpeg children alive at once, sampled every 50 ms


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _children_rss_kb() -> int:
    """The resident memory of this process's children (the ffmpeg runs), from each thread's
    `children` list: a few small reads, not a walk over every process on the machine (the
    sampler competes for the same cores as the render it measures)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            pids = Path(f"/proc/self/task/{task}/children").read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KB
            except (OSError, IndexError, ValueError):
                continue
    return total


@contextmanager
def measured() -> Iterator[Measure]:
    m = Measure()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_SECONDS):
            m.peak_rss_mb = max(m.peak_rss_mb, _children_rss_kb() / 1024)

    sampler = threading.Thread(target=sample, daemon=True)
    me0, ch0, t0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    sampler.start()
    try:
        yield m
    finally:
        m.wall_seconds = time.time() - t0
        stop.set()
        sampler.join()
        me1, ch1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        m.cpu_seconds = (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime)
        m.stack_cpu_seconds = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)


def run_ffmpeg(argv: list[str]) -> Measure:
    """One ffmpeg, with its own CPU and peak memory from wait4."""
    t0 = time.time()
    proc = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *argv])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {' '.join(argv)}")
    return Measure(
        wall_seconds=time.time() - t0,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
    )


_UNTAGGED = "setparams=color_primaries=unknown:color_trc=unknown:colorspace=unknown"


def ssim(a: Path, b: Path) -> float:
    """Mean SSIM of two videos of the same size (ffmpeg's `ssim` filter, `All:`), over the decoded
    pixels as they are: without the colour tags stripped from both, ffmpeg would convert a
    bt709-tagged output to match an untagged one (as BT.601) before comparing, and report a
    difference that no player shows (0.986 for the mix where the pixels give 0.998)."""
    graph = f"[0:v]{_UNTAGGED}[a];[1:v]{_UNTAGGED}[b];[a][b]ssim"
    out = subprocess.run(
        [FFMPEG, "-hide_banner", "-nostats", "-i", str(a), "-i", str(b), "-lavfi", graph, "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.findall(r"All:([0-9.]+)", out.stderr)
    return float(found[-1]) if found else float("nan")


# --- sources -------------------------------------------------------------------------------


def make_clip(name: str, n_frames: int, *, size: str, profile: str, pattern: str) -> Path:
    """H.264 (the given profile) + AAC 48 kHz stereo, a keyframe every second; cached between runs."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}-{size}-{profile}-{n_frames}.mp4"
    if path.exists():
        return path
    seconds = n_frames / FPS
    partial = path.with_suffix(".tmp.mp4")
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"{pattern}=size={size}:rate={FPS}",
         "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile, "-pix_fmt", "yuv420p", "-g", str(FPS),
         "-c:a", "aac", "-ac", "2", "-b:a", "128k", "-frames:v", str(n_frames), "-shortest", str(partial)],
        check=True,
    )  # fmt: skip
    partial.rename(path)
    return path


PATTERNS = ("testsrc2", "smptehdbars", "rgbtestsrc", "testsrc", "yuvtestsrc", "pal100bars")


def clip_set(prefix: str, count: int, seconds: float, profile: str) -> list[Path]:
    return [
        make_clip(
            f"{prefix}{i}", frames(seconds), size="1920x1080", profile=profile, pattern=PATTERNS[i % len(PATTERNS)]
        )
        for i in range(count)
    ]


# --- the naive baseline ----------------------------------------------------------------------


def naive_concat(clips: list[Path], out: Path, preset: str | None) -> Measure:
    """The product plans' command: every clip decoded, concatenated by the filter, re-encoded."""
    inputs = [arg for clip in clips for arg in ("-i", str(clip))]
    pads = "".join(f"[{i}:v][{i}:a]" for i in range(len(clips)))
    graph = f"{pads}concat=n={len(clips)}:v=1:a=1[v][a]"
    speed = ["-preset", preset] if preset else []
    return run_ffmpeg([*inputs, "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
                       "-c:v", "libx264", *speed, "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)])  # fmt: skip


# --- the service over HTTP -------------------------------------------------------------------


class Client:
    def __init__(self, base_url: str, user: str = USER) -> None:
        self.url = base_url
        # The stack runs in this process, so the client's CPU is the stack's: no proxy and netrc
        # lookups on every request to loopback (a fifth of the client's CPU when polling).
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer local:{user}"
        self.downloads = requests.Session()  # presigned URLs: never the API's Authorization header
        self.downloads.trust_env = False

    def upload(self, path: Path) -> str:
        ticket = self.http.post(
            f"{self.url}/uploads",
            json={"filename": path.name, "contentType": "video/mp4", "sizeBytes": path.stat().st_size},
            timeout=30,
        )
        ticket.raise_for_status()
        body = ticket.json()
        with path.open("rb") as fh:
            requests.put(body["url"], data=fh, headers=body["headers"], timeout=600).raise_for_status()
        return str(body["src"])

    def submit(self, body: dict[str, Any]) -> requests.Response:
        return self.http.post(f"{self.url}/renders", json=body, timeout=60)

    def wait(self, render_id: str, timeout: float = 1800) -> dict[str, Any]:
        """Polls every 50 ms at first, then every 2.5 % of the time waited so far (at most 250 ms):
        finding out late costs a long render that share at most, and a GET every 50 ms for a
        minute would take a core's worth of the local stack, which renders on the same cores."""
        start = time.time()
        deadline = start + timeout
        while time.time() < deadline:
            render: dict[str, Any] = self.http.get(f"{self.url}/renders/{render_id}", timeout=30).json()
            if render["status"] in ("complete", "failed", "cancelled"):
                return render
            time.sleep(min(0.25, max(0.05, (time.time() - start) / 40)))
        raise TimeoutError(f"render {render_id} did not end within {timeout:g} s")

    def render(self, body: dict[str, Any], out: Path) -> dict[str, Any]:
        """POST, wait, download: the end-to-end path a client takes."""
        created = self.submit(body)
        if created.status_code != 202:
            raise RuntimeError(f"refused: {created.status_code} {created.text}")
        render = self.wait(created.json()["renderId"])
        if render["status"] != "complete":
            raise RuntimeError(f"render {render['renderId']} ended {render['status']}: {render.get('error')}")
        with self.downloads.get(render["output"]["url"], stream=True, timeout=600) as got:
            got.raise_for_status()
            with out.open("wb") as fh:
                for block in got.iter_content(1 << 20):
                    fh.write(block)
        return render


# --- scenarios -------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    runner: str  # service | naive (plans) | naive (fair)
    output_seconds: float
    measure: Measure
    size_bytes: int
    ssim: float | None = None
    ratio: float | None = None  # naive (plans) time / this time
    extra: dict[str, Any] = field(default_factory=dict)


def _body(scenes: list[dict[str, Any]], **output: Any) -> dict[str, Any]:
    return {"timeline": {"scenes": scenes}, "output": {"resolution": "1080p", "fps": FPS, **output}}


def matching(client: Client, work: Path, name: str, clips: list[Path], *, naive: bool = True) -> list[Row]:
    srcs = [client.upload(c) for c in clips]
    out = work / f"{name}.mp4"
    with measured() as m:
        client.render(_body([{"type": "clip", "src": s} for s in srcs]), out)
    seconds = sum(frames_of(c) for c in clips) / FPS
    rows = [Row(name, "service", seconds, m, out.stat().st_size)]
    if naive:
        plans, fair = work / f"{name}-plans.mp4", work / f"{name}-fair.mp4"
        rows.append(Row(name, "naive (plans)", seconds, naive_concat(clips, plans, None), plans.stat().st_size))
        rows.append(Row(name, "naive (fair)", seconds, naive_concat(clips, fair, "veryfast"), fair.stat().st_size))
        for row, path in zip(rows, (out, plans, fair), strict=True):
            row.ssim = ssim(path, plans)
    return rows


def frames_of(clip: Path) -> int:
    return int(clip.stem.rsplit("-", 1)[1])


def reencode_mix(client: Client, work: Path, s: float) -> list[Row]:
    """Trims, two titles, fades, 720p 9:16: every scene encoded (91 s at scale 1)."""
    a, b, c = (
        make_clip(f"mix{i}", frames(40 * s), size="1920x1080", profile="high", pattern=p)
        for i, p in enumerate(("testsrc2", "testsrc", "smptehdbars"))
    )
    src = {p: client.upload(p) for p in (a, b, c)}
    t_title, t_fade = max(1.0, round(3 * s, 2)), 0.5
    trims = [(a, 2 * s, 30 * s), (b, 5 * s, 30 * s), (c, 1 * s, 28 * s)]
    scenes: list[dict[str, Any]] = [{"type": "title", "text": "Opening", "duration": t_title}]
    for i, (clip, start, dur) in enumerate(trims):
        scenes.append(
            {"type": "clip", "src": src[clip], "trimStart": round(start, 3), "duration": round(dur, 3),
             "transition": {"type": "fade", "duration": t_fade}}
        )  # fmt: skip
        if i == 1:
            scenes.append({"type": "title", "text": "Middle", "duration": t_title, "transition": {"type": "fade"}})
    out = work / "mix.mp4"
    with measured() as m:
        render = client.render(_body(scenes, resolution="720p", aspectRatio="9:16"), out)
    seconds = float(render["output"]["durationSeconds"])
    rows = [Row("re-encode mix", "service", seconds, m, out.stat().st_size)]
    plans, fair = work / "mix-plans.mp4", work / "mix-fair.mp4"
    for runner, path, preset in (("naive (plans)", plans, None), ("naive (fair)", fair, "veryfast")):
        rows.append(Row("re-encode mix", runner, seconds, naive_mix(trims, t_title, t_fade, path, preset), 0))
        rows[-1].size_bytes = path.stat().st_size
    for row, path in zip(rows, (out, plans, fair), strict=True):
        row.ssim = ssim(path, plans)
    return rows


def naive_mix(
    trims: list[tuple[Path, float, float]], t_title: float, t_fade: float, out: Path, preset: str | None
) -> Measure:
    """The mix as one ffmpeg: trimmed inputs, cover-fit to 720x1280, drawtext titles, xfade/acrossfade."""
    w, h = 720, 1280
    font = _font()
    inputs: list[str] = []
    graph: list[str] = []
    labels: list[tuple[str, str, float]] = []  # (video, audio, duration)
    count = 0

    def add(*args: str) -> int:
        nonlocal count
        inputs.extend(args)
        count += 1
        return count - 1

    def title(k: int, text: str) -> None:
        n = add("-f", "lavfi", "-t", f"{t_title}", "-i", f"color=c=black:s={w}x{h}:r={FPS}")
        m = add("-f", "lavfi", "-t", f"{t_title}", "-i", "anullsrc=r=48000:cl=stereo")
        graph.append(f"[{n}:v]drawtext=fontfile='{font}':text='{text}':fontcolor=white:fontsize=48:"
                     f"x=(w-text_w)/2:y=(h-text_h)/2,format=yuv420p,settb=AVTB[tv{k}]")  # fmt: skip
        graph.append(f"[{m}:a]anull[ta{k}]")
        labels.append((f"tv{k}", f"ta{k}", t_title))

    title(0, "Opening")
    for i, (clip, start, dur) in enumerate(trims):
        n = add("-ss", f"{start}", "-t", f"{dur}", "-i", str(clip))
        graph.append(f"[{n}:v]scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,"
                     f"fps={FPS},format=yuv420p,settb=AVTB[cv{i}]")  # fmt: skip
        graph.append(f"[{n}:a]aresample=48000,aformat=channel_layouts=stereo[ca{i}]")
        labels.append((f"cv{i}", f"ca{i}", dur))
        if i == 1:
            title(1, "Middle")
    v, a, length = labels[0]
    for k, (nv, na, d) in enumerate(labels[1:]):
        graph.append(f"[{v}][{nv}]xfade=transition=fade:duration={t_fade}:offset={length - t_fade}[xv{k}]")
        graph.append(f"[{a}][{na}]acrossfade=d={t_fade}[xa{k}]")
        v, a, length = f"xv{k}", f"xa{k}", length + d - t_fade
    speed = ["-preset", preset] if preset else []
    return run_ffmpeg([*inputs, "-filter_complex", ";".join(graph), "-map", f"[{v}]", "-map", f"[{a}]",
                       "-c:v", "libx264", *speed, "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)])  # fmt: skip


def _font() -> str:
    from render_service import fonts

    return str(fonts.font_file(fonts.DEFAULT_FAMILY))


def tiny(client: Client, work: Path, repeats: int) -> list[Row]:
    """A 1-second title at 720p, one after another: latency, and the overhead over its own ffmpeg."""
    body = {"timeline": {"scenes": [{"type": "title", "text": "Hi", "duration": 1}]},
            "output": {"resolution": "720p", "fps": FPS}}  # fmt: skip
    times: list[float] = []
    cpu = 0.0
    peak = 0.0
    for k in range(repeats):
        with measured() as m:
            client.render(body, work / f"tiny-{k}.mp4")
        times.append(m.wall_seconds)
        cpu += m.cpu_seconds
        peak = max(peak, m.peak_rss_mb)
    # The same card: "Hi" in the service's default font on black, with a silent track.
    title = (
        f"color=c=black:s=1280x720:r={FPS}:d=1,"
        f"drawtext=fontfile={_font()}:text=Hi:fontsize=48:fontcolor=white:x=(w-text_w)/2:y=(h-text_h)/2"
    )
    ffmpeg_alone = run_ffmpeg(["-f", "lavfi", "-i", title,
                               "-f", "lavfi", "-t", "1", "-i", "anullsrc=r=48000:cl=stereo",
                               "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                               str(work / "tiny-naive.mp4")])  # fmt: skip
    p50 = statistics.median(times)
    p95 = sorted(times)[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    summary = Measure(wall_seconds=p50, cpu_seconds=cpu / repeats, peak_rss_mb=peak)
    row = Row("tiny title (p50)", "service", 1.0, summary, (work / "tiny-0.mp4").stat().st_size)
    row.extra = {"repeats": repeats, "p50": p50, "p95": p95, "ffmpeg_alone_seconds": ffmpeg_alone.wall_seconds,
                 "overhead_p95": p95 - ffmpeg_alone.wall_seconds, "all": times}  # fmt: skip
    naive = Row("tiny title (p50)", "naive (fair)", 1.0, ffmpeg_alone, (work / "tiny-naive.mp4").stat().st_size)
    return [row, naive]


# --- the report --------------------------------------------------------------------------------


def with_ratios(rows: list[Row]) -> list[Row]:
    plans = {r.scenario: r.measure.wall_seconds for r in rows if r.runner == "naive (plans)"}
    fair = {r.scenario: r.measure.wall_seconds for r in rows if r.runner == "naive (fair)"}
    for r in rows:
        if r.scenario in plans:
            r.ratio = plans[r.scenario] / max(r.measure.wall_seconds, 1e-9)
        if r.scenario in fair:
            r.extra["ratio_vs_fair"] = fair[r.scenario] / max(r.measure.wall_seconds, 1e-9)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | runner | output s | end to end s | x vs plans | x vs fair | ffmpeg CPU s | stack CPU s "
        "| peak MB | SSIM vs plans | MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r.measure
        fair = r.extra.get("ratio_vs_fair")
        lines.append(
            f"| {r.scenario} | {r.runner} | {r.output_seconds:.1f} | {m.wall_seconds:.2f} "
            f"| {f'{r.ratio:.2f}' if r.ratio else '—'} | {f'{fair:.2f}' if fair else '—'} | {m.cpu_seconds:.1f} "
            f"| {m.stack_cpu_seconds:.1f} | {m.peak_rss_mb:.0f} | {f'{r.ssim:.4f}' if r.ssim else '—'} "
            f"| {r.size_bytes / 1e6:.1f} |"
        )
    return "\n".join(lines)


def projection(rows: list[Row]) -> dict[str, Any]:
    """Lambda wall time and cost of 1-, 3- and 10-minute renders, from this run's CPU per output second."""

    def cpu_per_second(scenario: str) -> float | None:
        found = [r for r in rows if r.scenario == scenario and r.runner == "service"]
        return found[0].measure.cpu_seconds / found[0].output_seconds if found else None

    cases = {"smart copy (matching High clips)": cpu_per_second("matching High"),
             "re-encode (the mix: trims, titles, fades, 720p)": cpu_per_second("re-encode mix")}  # fmt: skip
    bitrate_mb_per_s = 0.6  # about 5 Mbit/s of 1080p H.264
    out: dict[str, Any] = {}
    for case, per_second in cases.items():
        if per_second is None:
            continue
        for minutes in (1, 3, 10):
            seconds = minutes * 60.0
            transfer = seconds * bitrate_mb_per_s * 2 / S3_MB_PER_SECOND  # sources in, output out
            if case.startswith("smart"):
                # A remux: no chunk worker and no poll wait; StartRender does all of it.
                n_chunks, chunk_cpu = 0, 0.0
                chunk_wall = 0.0
                join_wall = COLD_START_SECONDS + transfer + per_second * seconds / LAMBDA_VCPU
                wall = 1.0 + join_wall
            else:
                n_chunks = math.ceil(seconds / CHUNK_SECONDS)
                chunk_cpu = per_second * CHUNK_SECONDS
                chunk_transfer = CHUNK_SECONDS * bitrate_mb_per_s * 2 / S3_MB_PER_SECOND
                chunk_wall = COLD_START_SECONDS + chunk_transfer + chunk_cpu / LAMBDA_VCPU
                join_wall = transfer + 1.0
                wall = 2.0 + chunk_wall + DEPLOYED_POLL_SECONDS + join_wall
            gb_seconds = LAMBDA_GB * (n_chunks * chunk_wall + join_wall + 2.0)
            cost = gb_seconds * PRICE_GB_SECOND + (n_chunks + 6) * PRICE_REQUEST + 12 * PRICE_TRANSITION
            out[f"{case}, {minutes} min"] = {"chunks": n_chunks, "chunk_cpu_seconds": round(chunk_cpu, 2),
                                             "wall_seconds": round(wall, 1), "usd": round(cost, 5)}  # fmt: skip
    return out


PROJECTION_NOTES = (
    f"Lambda at {LAMBDA_MB} MB (about {LAMBDA_VCPU:.1f} vCPU, CPU time divided by that), "
    f"${PRICE_GB_SECOND} per GB-s (x86_64), ${PRICE_REQUEST * 1e6:.2f} per million requests, Step Functions "
    f"standard at ${PRICE_TRANSITION * 1000:.3f} per 1,000 transitions (12 per render); every chunk worker "
    f"cold ({COLD_START_SECONDS} s), chunks of {CHUNK_SECONDS:.0f} s all in parallel (no concurrency limit hit), "
    f"S3 at {S3_MB_PER_SECOND:.0f} MB/s per function and 5 Mbit/s video; StartRender 2 s, one "
    f"{DEPLOYED_POLL_SECONDS:.0f} s poll wait, the join at S3 speed plus 1 s. "
    "The smart path is a remux (no chunk worker, no poll wait): StartRender, cold, reads the sources, "
    "copies the video and the audio and uploads the output, at the scenario's CPU per output second, "
    "plus 1 s for the API, the other steps and the transitions. "
    "CPU per output second is this run's ffmpeg CPU for the scenario, on this machine's cores."
)


def report(rows: list[Row], s: float) -> None:
    """`bench/results/latest.json` and `latest.md` from a run's rows, printed too."""
    rows = with_ratios(rows)
    long_rows = [r for r in rows if r.scenario == "10 min matching"]
    high_rows = [r for r in rows if r.scenario == "matching High" and r.runner == "service"]
    ten_vs_three = (
        long_rows[0].measure.wall_seconds / high_rows[0].measure.wall_seconds if long_rows and high_rows else None
    )
    projected = projection(rows)
    result = {
        "scale": s,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "rows": [asdict(r) for r in rows],
        "ten_minutes_over_three": ten_vs_three,
        "projection": projected,
        "projection_assumptions": PROJECTION_NOTES,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2))
    tiny_rows = [r for r in rows if r.runner == "service" and r.extra.get("p95") is not None]
    md = [f"# make bench, BENCH_SCALE={s:g} ({result['when']}, {os.cpu_count()} cores)", "", table(rows), ""]
    for r in tiny_rows:
        e = r.extra
        md.append(f"Tiny title, {e['repeats']} in a row: p50 {e['p50']:.2f} s, p95 {e['p95']:.2f} s; its ffmpeg "
                  f"alone {e['ffmpeg_alone_seconds']:.2f} s, so p95 overhead {e['overhead_p95']:.2f} s.")  # fmt: skip
    if ten_vs_three:
        md.append(f"10 minutes of matching clips took {ten_vs_three:.2f} times the 3-minute matching render.")
    md += [
        "",
        "## Cloud projection",
        "",
        "| render | chunks | CPU s per chunk | wall s | USD |",
        "|---|---|---|---|---|",
    ]
    for name, p in projected.items():
        md.append(f"| {name} | {p['chunks']} | {p['chunk_cpu_seconds']} | {p['wall_seconds']} | {p['usd']} |")
    md += ["", f"Assumptions: {PROJECTION_NOTES}", ""]
    (RESULTS / "latest.md").write_text("\n".join(md))
    print("\n".join(md))


def main() -> int:
    s = scale()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["RATE_LIMITS"] = '[{"limit": 1000, "seconds": 3600}]'
    os.environ["INITIAL_CREDITS"] = "100000"
    os.environ["MAX_QUEUED_RENDERS"] = "100"
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    work = ROOT / ".local" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    print(f"BENCH_SCALE={s:g}: generating sources (cached in {CACHE})", file=sys.stderr)
    high = clip_set("h", 9, 20 * s, "high")
    base = clip_set("b", 9, 20 * s, "baseline")
    long = clip_set("l", 10, 60 * s, "high") if not only or "long" in only else []
    from infra.local.stack import local_stack  # after the environment above: the stack reads it

    rows: list[Row] = []
    with local_stack() as (_cloud, gateway):
        client = Client(gateway.url)
        steps: list[tuple[str, Callable[[], list[Row]]]] = [
            ("high", lambda: matching(client, work, "matching High", high)),
            ("baseline", lambda: matching(client, work, "matching Baseline", base)),
            ("mix", lambda: reencode_mix(client, work, s)),
            ("tiny", lambda: tiny(client, work, max(3, round(20 * s)))),
            ("long", lambda: matching(client, work, "10 min matching", long, naive=False)),
        ]
        for key, step in steps:
            if only and key not in only:
                continue
            print(f"scenario {key}...", file=sys.stderr)
            rows += step()
    report(rows, s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
