"""The local gateway serves the web app's files, and only them; no file can shadow an API route."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.gateway import STATIC_TYPES, static_file
from infra.local.stack import WEB_DIR


def test_root_is_the_index_and_files_are_found_by_path() -> None:
    assert static_file(WEB_DIR, "/") == (WEB_DIR / "index.html").resolve()
    assert static_file(WEB_DIR, "/?api=http://x") == (WEB_DIR / "index.html").resolve()
    assert static_file(WEB_DIR, "/js/app.js") == (WEB_DIR / "js" / "app.js").resolve()


@pytest.mark.parametrize(
    "path",
    [
        "/../../pyproject.toml",
        "/%2e%2e/%2e%2e/pyproject.toml",
        "/js/../../cli.py",
        "/renders",
        "/health",
        "/js",
        "/.hidden.js",
        "/index.html%00.png",
    ],
)
def test_anything_else_goes_to_the_api(path: str, tmp_path: Path) -> None:
    assert static_file(WEB_DIR, path) is None


def test_only_known_types_are_served(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "page.html").write_text("<p>")
    assert static_file(tmp_path, "/notes.txt") is None
    assert static_file(tmp_path, "/page.html") == (tmp_path / "page.html").resolve()


def test_every_web_file_is_served_and_none_shadows_an_api_route() -> None:
    from render_service.api.app import app

    routes = {path.strip("/").split("/")[0] for path in app.get_openapi_schema().paths or {}}
    files = [p for p in WEB_DIR.rglob("*") if p.is_file()]
    assert files, f"{WEB_DIR} is empty"
    for file in files:
        assert file.suffix in STATIC_TYPES, f"{file.name}: the gateway would not serve it"
        assert file.relative_to(WEB_DIR).parts[0] not in routes
