"""`render`: the render service from a terminal.

Results go to stdout (a render id, a `src`, a URL, a table or `--json`), so they can be piped;
progress and notes go to stderr. Any failure prints one line, `render: error: ...`, and exits 1.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from infra.client.api import DEFAULT_LOCAL_USER, LOCAL_API, TERMINAL, ApiError, RenderApi, local_token

app = typer.Typer(
    name="render",
    help="Submit, watch and fetch renders. Talks to the local stack (`make serve`) unless --api says otherwise.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

STATUSES = ("queued", "rendering", "complete", "failed", "cancelled")
SUBJECT_TYPES = ("movie", "generation", "clip")


class _State:
    api: RenderApi


state = _State()


def fail(message: str) -> NoReturn:
    err.print(f"render: error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


@app.callback()
def main(
    api: Annotated[
        str, typer.Option(envvar="RENDER_API_URL", help="API base URL (deployed: the ApiUrl output).")
    ] = LOCAL_API,
    token: Annotated[
        str | None,
        typer.Option(envvar="RENDER_TOKEN", help="Bearer token (deployed: a Cognito ID token).", show_default=False),
    ] = None,
    user: Annotated[
        str, typer.Option(envvar="RENDER_USER", help="Local stack only: act as this user (token local:USER).")
    ] = DEFAULT_LOCAL_USER,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each API call.")] = 30,
) -> None:
    state.api = RenderApi(api, token or local_token(user), timeout=timeout)


def run(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except ApiError as exc:
        fail(str(exc))


# --- request files ---------------------------------------------------------------------


def parse_subject(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    kind, sep, ident = value.partition(":")
    if not sep or kind not in SUBJECT_TYPES or not ident:
        fail(f"--subject {value!r}: must be TYPE:ID with TYPE one of {', '.join(SUBJECT_TYPES)}")
    return kind, ident


def load_request(
    path: Path,
    *,
    subject: str | None = None,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    fps: int | None = None,
    quality: str | None = None,
) -> dict[str, Any]:
    """A render request from a file: a whole request, or just a timeline (`{"scenes": [...]}`)."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        fail(f"{path}: not valid JSON ({exc})")
    if not isinstance(data, dict):
        fail(f"{path}: must hold a JSON object (a render request or a timeline)")
    body: dict[str, Any] = {"timeline": data} if "scenes" in data else data
    chosen = {"resolution": resolution, "aspectRatio": aspect_ratio, "fps": fps, "quality": quality}
    if any(v is not None for v in chosen.values()):
        body["output"] = {**(body.get("output") or {}), **{k: v for k, v in chosen.items() if v is not None}}
    parsed = parse_subject(subject)
    if parsed:
        body["subject"] = {"type": parsed[0], "id": parsed[1]}
    return body


TimelineArg = Annotated[
    Path, typer.Argument(help="A render request or a timeline as JSON (`-` for stdin).", show_default=False)
]
SubjectOpt = Annotated[
    str | None, typer.Option(help="What the render belongs to, TYPE:ID (e.g. movie:m1).", show_default=False)
]
ResolutionOpt = Annotated[str | None, typer.Option(help="720p, 1080p, 1440p or 4k.", show_default=False)]
AspectOpt = Annotated[str | None, typer.Option("--aspect-ratio", help="16:9, 9:16, 1:1 or 4:5.", show_default=False)]
FpsOpt = Annotated[int | None, typer.Option(help="24 to 60.", show_default=False)]
QualityOpt = Annotated[str | None, typer.Option(help="low, medium or high.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")]


# --- commands --------------------------------------------------------------------------


@app.command()
def submit(
    timeline: TimelineArg,
    wait: Annotated[bool, typer.Option("--wait", help="Follow progress, then download the video.")] = False,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Where to save the video (implies --wait). Default: ./<id>.mp4", show_default=False),
    ] = None,
    subject: SubjectOpt = None,
    resolution: ResolutionOpt = None,
    aspect_ratio: AspectOpt = None,
    fps: FpsOpt = None,
    quality: QualityOpt = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Retrying with the same key returns the same render, charged once.", show_default=False),
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between progress polls.")] = 1.0,
) -> None:
    """Submit a render; prints its id. With --wait: a live progress bar, then the download."""
    body = load_request(
        timeline, subject=subject, resolution=resolution, aspect_ratio=aspect_ratio, fps=fps, quality=quality
    )
    created = run(state.api.submit, body, idempotency_key)
    render_id = created["renderId"]
    err.print(f"render {render_id} {created['status']}, {created['cost']} credits reserved")
    out.print(render_id, soft_wrap=True)
    if wait or out_file is not None:
        _wait_and_download(render_id, out_file, interval)


@app.command("wait")
def wait_for(
    render_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)],
    out_file: Annotated[Path | None, typer.Option("--out", help="Default: ./<id>.mp4", show_default=False)] = None,
    interval: Annotated[float, typer.Option(help="Seconds between progress polls.")] = 1.0,
) -> None:
    """Follow a render that is already running (e.g. after closing the terminal), then download it."""
    _wait_and_download(render_id, out_file, interval)


def _describe(render: dict[str, Any]) -> str:
    if render["status"] == "queued" and render.get("queuePosition"):
        return f"queued, {_ordinal(render['queuePosition'])} in line"
    phase = render.get("phase") or render["status"]
    return str(render["status"] if render["status"] in TERMINAL else phase)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _follow(render_id: str, interval: float) -> dict[str, Any]:
    """Polls until the render ends. On a terminal, a live bar; elsewhere (logs, CI) a line per change."""
    render: dict[str, Any] = run(state.api.get, render_id)
    try:
        if err.is_terminal:
            columns = (
                SpinnerColumn(), TextColumn("{task.description:<22}"), BarColumn(),
                TaskProgressColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            )  # fmt: skip
            with Progress(*columns, console=err, transient=False) as bar:
                task = bar.add_task(_describe(render), total=100, completed=render["progress"])
                while render["status"] not in TERMINAL:
                    time.sleep(interval)
                    render = run(state.api.get, render_id)
                    bar.update(task, completed=render["progress"], description=_describe(render))
        else:
            last = ""
            while True:
                line = f"{_describe(render)} {render['progress']}%"
                if line != last:
                    err.print(line)
                    last = line
                if render["status"] in TERMINAL:
                    break
                time.sleep(interval)
                render = run(state.api.get, render_id)
    except KeyboardInterrupt:
        err.print(f"stopped watching; render {render_id} goes on. Resume with: render wait {render_id}")
        raise typer.Exit(130) from None
    return render


def _wait_and_download(render_id: str, out_file: Path | None, interval: float) -> None:
    render = _follow(render_id, interval)
    if render["status"] != "complete":
        error = render.get("error") or {}
        reason = f": {error.get('code')}: {error.get('message')}" if error else ""
        fail(f"render {render_id} {render['status']}{reason}")
    output = render.get("output") or {}
    if not output.get("url"):
        fail(f"render {render_id} is complete but its output is gone (deleted or expired)")
    target = out_file or Path(f"{render_id}.mp4")
    _download(output["url"], target)
    err.print(f"{output.get('durationSeconds', 0):.2f} s, {output.get('width')}x{output.get('height')}")
    # One line, as it is: scripts read it, and a long path must not wrap or lose [brackets] to markup.
    out.print(str(target), soft_wrap=True, markup=False)


def _download(url: str, target: Path) -> None:
    with Progress(
        TextColumn(f"downloading {target.name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=err, transient=True, disable=not err.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("download", total=None)

        def advance(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        run(state.api.download, url, target, advance)


@app.command()
def status(
    render_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)], as_json: JsonOpt = False
) -> None:
    """One render: status, phase, progress, output or error."""
    render = run(state.api.get, render_id)
    if as_json:
        out.print_json(data=render)
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("id", render["renderId"]),
        ("status", render["status"]),
        ("phase", render["phase"]),
        ("progress", f"{render['progress']}%"),
        ("subject", _subject(render)),
        ("cost", f"{render['cost']} credits"),
        ("created", _when(render.get("createdAt"))),
    ]
    if render.get("queuePosition"):
        rows.append(("queue", f"{_ordinal(render['queuePosition'])} in line"))
    if render.get("completedAt"):
        rows.append(("ended", _when(render["completedAt"])))
    output = render.get("output")
    if output:
        size = f"{output['sizeBytes'] / 1e6:.1f} MB, {output['durationSeconds']:.2f} s"
        rows.append(("output", "deleted" if output.get("deleted") else size))
        if output.get("url"):
            rows.append(("url", output["url"]))
    if render.get("error"):
        rows.append(("error", f"{render['error']['code']}: {render['error']['message']}"))
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)


@app.command("list")
def list_renders(
    subject: SubjectOpt = None,
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(STATUSES)}.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Your renders, newest first, as a table."""
    if status is not None and status not in STATUSES:
        fail(f"--status {status!r}: must be one of {', '.join(STATUSES)}")
    renders = run(lambda: list(state.api.history(subject=parse_subject(subject), status=status, limit=limit)))
    if as_json:
        out.print_json(data=renders)
        return
    if not renders:
        err.print("no renders")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    # Ids are never cut: they are what the other commands take.
    table.add_column("id", no_wrap=True, min_width=max(len(r["renderId"]) for r in renders))
    for name in ("status", "progress", "subject", "cost", "length", "created"):
        table.add_column(name, justify="right" if name in ("progress", "cost", "length") else "left", no_wrap=True)
    colours = {"complete": "green", "failed": "red", "cancelled": "yellow"}
    for render in renders:
        output = render.get("output") or {}
        length = f"{output['durationSeconds']:.1f} s" if output else ""
        state_text = f"[{colours.get(render['status'], 'cyan')}]{render['status']}[/]"
        table.add_row(
            render["renderId"], state_text, f"{render['progress']}%", _subject(render),
            str(render["cost"]), length, _when(render.get("createdAt"), short=True),
        )  # fmt: skip
    # Piped (not a terminal), rich would squeeze the table into 80 columns; a script wants whole cells.
    (out if out.is_terminal else Console(highlight=False, width=240)).print(table)


@app.command()
def cancel(render_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)]) -> None:
    """Cancel a queued or running render; its credits are refunded."""
    render = run(state.api.cancel, render_id)
    out.print(f"{render['renderId']} {render['status']}")


@app.command()
def url(
    render_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)],
    expires: Annotated[int, typer.Option(min=60, max=604800, help="Seconds the link works (60 to 604800).")] = 3600,
) -> None:
    """A fresh download link for a finished render."""
    link = run(state.api.download_url, render_id, expires)
    err.print(f"valid until {_when(link['expiresAt'])}")
    out.print(link["url"], soft_wrap=True)


@app.command()
def delete(render_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)]) -> None:
    """Delete a render's video; the record stays in the history."""
    render = run(state.api.delete, render_id)
    out.print(f"{render['renderId']} output deleted")


@app.command()
def estimate(
    timeline: TimelineArg,
    resolution: ResolutionOpt = None,
    aspect_ratio: AspectOpt = None,
    fps: FpsOpt = None,
    quality: QualityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What a render would cost and take, without submitting it."""
    body = load_request(timeline, resolution=resolution, aspect_ratio=aspect_ratio, fps=fps, quality=quality)
    result = run(state.api.estimate, body)
    if as_json:
        out.print_json(data=result)
        return
    out.print(
        f"{result['credits']} credits for up to {result['durationSeconds']:.1f} s of video, "
        f"about {result['estimatedRenderSeconds']} s to render"
    )


@app.command()
def quota(as_json: JsonOpt = False) -> None:
    """Credits, rate windows and slots: what you may submit now."""
    q = run(state.api.quota)
    if as_json:
        out.print_json(data=q)
        return
    credits = q["credits"]
    out.print(f"credits: {credits['balance']}" if credits["enabled"] else "credits: not charged")
    for window in q["renders"]["windows"]:
        out.print(
            f"renders: {window['remaining']} of {window['limit']} left per {_span(window['seconds'])}, "
            f"resets {_when(window['resetAt'])}"
        )
    out.print(f"running: {q['active']['count']} of {q['active']['limit']}")
    out.print(f"waiting: {q['queued']['count']} of {q['queued']['limit']}")


@app.command()
def upload(
    files: Annotated[list[Path], typer.Argument(help="Clips, images or audio to use as sources.", show_default=False)],
) -> None:
    """Upload files (presigned PUT, straight to storage); prints each one's `src` for a timeline."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=err, disable=not err.is_terminal,
    ) as bar:  # fmt: skip
        for path in files:
            size = path.stat().st_size if path.is_file() else None
            task = bar.add_task(path.name, total=size)
            done = run(state.api.upload, path, lambda n, task=task: bar.advance(task, n))
            out.print(done.src, soft_wrap=True)


def _subject(render: dict[str, Any]) -> str:
    subject = render.get("subject")
    return f"{subject['type']}:{subject['id']}" if subject else ""


def _when(value: str | None, *, short: bool = False) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def _span(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} s"


if __name__ == "__main__":
    app()
