"""The web app in a real browser (Debian's Chromium, headless) against the local stack.

Screenshots go to .local/screenshots/ (gitignored) as artifacts; the README's picture is one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# This machine has no internet: without these, Chromium's background connections fail noisily.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
]  # fmt: skip
ARTIFACTS = ROOT / ".local" / "screenshots"
TIMEOUT_MS = 120_000
Stack = tuple[LocalCloud, Gateway]


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing and could not be installed (`make test` runs `apt-get install -y chromium` "
            "where apt-get and root are available): the browser test needs Debian's Chromium"
        )
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")  # empty: nothing carried over between runs
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000},
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


class Console:
    """Everything the page logged at error level, and every uncaught exception."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))


def shot(page: Any, name: str, *, full_page: bool = False) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def sign_in_with_keyboard(page: Any, url: str, user: str) -> None:
    page.goto(url)
    page.evaluate("localStorage.clear()")  # one browser profile for the module; each test starts signed out
    page.reload()
    page.wait_for_selector("#user-name:focus")  # focus starts in the first field
    page.keyboard.type(user)
    page.keyboard.press("Enter")
    page.wait_for_selector("#workspace:not([hidden])")
    assert page.inner_text("#who") == user


def test_upload_arrange_render_watch_play_and_find_it_in_the_history(
    running_stack: Stack, browser_context: Any, make_clip: Any
) -> None:
    _, gateway = running_stack
    clips = [make_clip("web-a.mp4", 1.0), make_clip("web-b.mp4", 1.5, pattern="smptebars")]
    page = browser_context.new_page()
    console = Console(page)
    sign_in_with_keyboard(page, gateway.url, "web-e2e")
    page.wait_for_selector("#quota-credits")
    assert page.inner_text("#quota-credits") == "100"

    # Every file shows its own progress bar while it uploads, then becomes a clip in the timeline.
    page.evaluate(
        """() => {
          window.progressBars = new Set();
          new MutationObserver(() => document.querySelectorAll('.uploads progress')
            .forEach((bar) => window.progressBars.add(bar.getAttribute('aria-label')))
          ).observe(document.body, {subtree: true, childList: true});
        }"""
    )
    page.set_input_files("#files", [str(path) for path in clips])
    page.wait_for_function("document.querySelectorAll('.upload.done').length === 2", timeout=TIMEOUT_MS)
    assert sorted(page.evaluate("[...window.progressBars]")) == ["web-a.mp4 upload", "web-b.mp4 upload"]
    assert page.locator(".scene-clip").count() == 2

    # A title with an animation, moved to the front; a crossfade into the second clip.
    page.get_by_role("button", name="+ Title").click()
    page.locator(".scene-title .title-text").fill("Made in the browser")
    title = page.locator(".scene-title")
    title.get_by_label("Animation").select_option("typewriter")
    title.get_by_label("Duration (s)").fill("1")
    page.get_by_role("button", name="Move scene 3 up").click()
    page.get_by_role("button", name="Move scene 2 up").click()
    assert page.locator(".scene").first.get_attribute("class") == "scene scene-title"
    # Trims: the first clip whole but with its length given, the second from 0.5 s for 1 s.
    page.locator(".scene").nth(1).get_by_label("Length (s)").fill("1")
    second_clip = page.locator(".scene").nth(2)
    second_clip.get_by_label("Start at (s)").fill("0.5")
    second_clip.get_by_label("Length (s)").fill("1")
    second_clip.get_by_label("Transition in").select_option("fade")
    second_clip.get_by_label("Overlap (s)").fill("0.4")
    page.select_option("#resolution", "720p")
    page.select_option("#subject-type", "movie")
    page.fill("#subject-id", "web-1")

    page.wait_for_selector("#estimate-credits")
    assert page.inner_text("#estimate-credits") == "1 credit"
    assert re.fullmatch(r"≈ \d+(\.\d)? s", page.inner_text("#estimate-time"))
    shot(page, "1-timeline")

    page.click("#submit")
    page.wait_for_selector("#render-phase, #result-video")
    if page.locator("#render-phase").count():
        assert "You can close this page" in page.inner_text("#current")
        shot(page, "2-progress", full_page=False)
    page.wait_for_selector("#result-video", timeout=TIMEOUT_MS)
    render_id = page.evaluate("location.hash").removeprefix("#render=")

    # The <video> really loaded the MP4: 1 s title + 1 s + 1 s, the last two overlapping by 0.4 s.
    page.wait_for_function("document.querySelector('#result-video').readyState >= 1", timeout=TIMEOUT_MS)
    duration = page.evaluate("document.querySelector('#result-video').duration")
    assert duration == pytest.approx(2.6, abs=0.1)
    assert page.get_attribute("#download", "download") == f"{render_id}.mp4"

    # The history has it, the filters find it (or not), and the credits went down by its cost.
    page.wait_for_selector(f"#history-list [data-render-id='{render_id}'] .status-complete")
    page.select_option("#history-status", "failed")
    page.wait_for_selector("#history-list .empty")
    page.select_option("#history-status", "")
    page.select_option("#history-subject-type", "movie")
    page.fill("#history-subject-id", "web-1")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function("document.querySelectorAll('#history-list .history-item').length === 1")
    assert page.locator(f"#history-list [data-render-id='{render_id}']").count() == 1
    page.wait_for_function("document.querySelector('#quota-credits').textContent === '99'")
    assert "4 of 5 left" in page.inner_text("#quota-list")

    page.click("#fresh-link")
    assert page.input_value("#share-url").startswith("http")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "3-complete")

    # Leave and come back: the same render, still playable.
    page.goto(gateway.url)
    page.wait_for_selector("#result-video")
    assert page.evaluate("location.hash") == f"#render={render_id}"

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # a layout pass at the new size before the picture, not an assertion
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways on a phone"
    shot(page, "4-phone", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 1000})

    page.click("#delete")
    page.click("#delete")  # the second press confirms
    page.wait_for_selector("text=The video was deleted")
    assert console.errors == []
    page.close()


def test_errors_read_as_sentences_and_a_render_can_be_cancelled(running_stack: Stack, browser_context: Any) -> None:
    _, gateway = running_stack
    page = browser_context.new_page()
    console = Console(page)
    sign_in_with_keyboard(page, gateway.url, "web-errors")

    page.get_by_role("button", name="+ Title").click()
    page.locator(".title-text").fill("Too long")
    duration = page.locator(".scene-title").get_by_label("Duration (s)")
    duration.fill("61")
    page.wait_for_selector("#estimate .error-text")
    assert page.inner_text("#estimate") == (
        "Please check the settings: scene 1, duration: Input should be less than or equal to 60"
    )
    assert duration.get_attribute("aria-invalid") == "true"

    duration.fill("60")
    page.wait_for_selector("#estimate-credits")
    page.click("#submit")
    page.wait_for_selector("#cancel")
    page.click("#cancel")
    page.wait_for_selector("text=Cancelled.")
    page.wait_for_function("document.querySelector('#quota-credits')?.textContent === '100'")

    # Another user's render (or a made-up id) is simply not there.
    page.goto(f"{gateway.url}/#render=00000000-0000-0000-0000-000000000000")
    page.wait_for_selector("#alert:not([hidden])")
    assert "doesn't exist, or it belongs to another account" in page.inner_text("#alert")
    page.wait_for_selector("#current .placeholder")
    shot(page, "5-error", full_page=False)

    # A refused sign-in says so, in words.
    page.click("#sign-out")
    page.wait_for_selector("#user-name")
    page.check("input[value='token']")
    page.fill("#token", "not-a-token")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#signin .error-text:has-text('refused')")
    # The 422, 404 and 401 above are logged by Chromium as failed loads; nothing else may be.
    assert [e for e in console.errors if not e.startswith("Failed to load resource")] == []
    page.close()


def _encode(path: Path, *, pattern: str, profile: str, seconds: float = 1.0, extra: tuple[str, ...] = ()) -> Path:
    """A 720p30 H.264 (the given profile) + AAC 48 kHz clip, as a phone or an app might make it."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"{pattern}=size=1280x720:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile, "-g", "30", "-pix_fmt", "yuv420p", *extra,
         "-c:a", "aac", "-ac", "2", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _render(gateway: Gateway, user: str, scenes: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    import time

    import requests

    http = requests.Session()
    http.headers["Authorization"] = f"Bearer local:{user}"
    for scene in scenes:
        if isinstance(scene.get("src"), Path):
            path = scene["src"]
            size = path.stat().st_size
            ticket = http.post(f"{gateway.url}/uploads", json={"filename": path.name, "contentType": "video/mp4",
                                                                "sizeBytes": size}, timeout=30).json()  # fmt: skip
            requests.put(
                ticket["url"], data=path.read_bytes(), headers=ticket["headers"], timeout=60
            ).raise_for_status()
            scene["src"] = ticket["src"]
    created = http.post(
        f"{gateway.url}/renders", json={"timeline": {"scenes": scenes}, "output": {"resolution": "720p"}}
    )
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        render: dict[str, Any] = http.get(f"{gateway.url}/renders/{created.json()['renderId']}", timeout=30).json()
        if render["status"] in ("complete", "failed", "cancelled"):
            break
        time.sleep(0.2)
    assert render["status"] == "complete", render
    out.write_bytes(requests.get(render["output"]["url"], timeout=60).content)
    return render


def test_copied_clips_play_in_chromium_and_decode_without_an_error(
    running_stack: Stack, browser_context: Any, tmp_path: Path
) -> None:
    """Clips that share one encoding are copied (any profile); next to encoded scenes only our own
    encoding is. Whatever was copied, every frame decodes and the browser plays the file through."""
    import subprocess

    import imageio_ffmpeg

    _, gateway = running_stack
    baseline = [
        _encode(tmp_path / f"baseline{i}.mp4", pattern=p, profile="baseline")
        for i, p in enumerate(("testsrc2", "smptebars"))
    ]
    remux = _render(gateway, "play-copies", [{"type": "clip", "src": p} for p in baseline], tmp_path / "remux.mp4")
    ours = tmp_path / "remux.mp4"
    foreign = _encode(tmp_path / "foreign.mp4", pattern="testsrc", profile="main", extra=("-bf", "3", "-refs", "4"))
    mixed_scenes: list[dict[str, Any]] = [
        {"type": "title", "text": "Copied next to encoded", "duration": 1},
        {"type": "clip", "src": ours},  # our own output: copied
        {"type": "clip", "src": foreign, "trimStart": 0.2},  # another encoding: encoded
    ]
    mixed = _render(gateway, "play-copies", mixed_scenes, tmp_path / "mixed.mp4")

    assert remux["output"]["durationSeconds"] == pytest.approx(2.0, abs=0.05)
    page = browser_context.new_page()
    console = Console(page)
    for name, seconds, url in (("remux", 2.0, remux["output"]["url"]), ("mixed", 3.8, mixed["output"]["url"])):
        video = tmp_path / f"{name}.mp4"
        decoded = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-i", str(video), "-f", "null", "-"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert (decoded.returncode, decoded.stderr) == (0, ""), name
        page.set_content(f'<video id="v" muted playsinline src="{url}"></video>')  # the presigned GET
        page.evaluate("() => { const v = document.getElementById('v'); v.playbackRate = 4; return v.play(); }")
        page.wait_for_function("document.getElementById('v').ended", timeout=TIMEOUT_MS)
        played = page.evaluate(
            """() => { const v = document.getElementById('v'), q = v.getVideoPlaybackQuality();
                       return {error: v.error && v.error.code, duration: v.duration, width: v.videoWidth,
                               corrupted: q.corruptedVideoFrames, decoded: q.totalVideoFrames}; }"""
        )
        assert played["error"] is None, (name, played)
        assert played["duration"] == pytest.approx(seconds, abs=0.1), (name, played)
        assert played["width"] == 1280
        assert played["corrupted"] == 0, (name, played)
        assert played["decoded"] > 0
    assert console.errors == []
