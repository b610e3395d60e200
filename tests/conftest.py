"""Fixtures shared by every tier. Tests are plain files (no `tests` package), fixtures come from here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
TEMPLATE = ROOT / "cdk.out" / "RenderService.template.json"


@pytest.fixture(scope="session")
def load_event() -> Callable[..., dict[str, Any]]:
    """A canonical event from events/*.json, with top-level fields overridden."""

    def load(name: str, **overrides: Any) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
        event.update(overrides)
        return event

    return load


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    if not TEMPLATE.exists():
        pytest.fail(f"{TEMPLATE} is missing: run `make synth` (make test does)")
    return json.loads(TEMPLATE.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and region for in-process moto, and no endpoint left over from a local stack."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def clean_caches() -> Iterator[None]:
    """Settings and clients are built once per process; tests that change the environment rebuild them."""
    import render_service.workflow.steps  # noqa: F401 (registers its caches with reset)
    from render_service.logic import renders  # noqa: F401
    from render_service.service import reset

    reset()
    yield
    reset()
