"""A deployment without a Remotion function, over HTTP: remotion requests are refused at the door."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack

pytestmark = pytest.mark.e2e

BODY = {
    "engine": "remotion",
    "kind": "clip",
    "composition": "TextAnimation",
    "inputProps": {"text": "Hello", "style": "fade-in"},
    "durationInFrames": 30,
    "output": {"width": 640, "height": 360},
}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    with local_stack(remotion=False) as running:
        yield running


def test_remotion_without_a_function_is_a_503_that_costs_nothing(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    session = requests.Session()
    session.headers["Authorization"] = "Bearer local:e2e-no-remotion"
    before = session.get(f"{gateway.url}/quota", timeout=30).json()

    refused = session.post(f"{gateway.url}/renders", json=BODY, timeout=30)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "ENGINE_NOT_CONFIGURED"
    assert refused.json()["error"]["message"].startswith("engine: remotion is not configured")

    assert session.get(f"{gateway.url}/quota", timeout=30).json() == before
    assert session.get(f"{gateway.url}/renders", timeout=30).json()["renders"] == []
