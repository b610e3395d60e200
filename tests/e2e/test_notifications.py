"""Notifications on the local stack: bus rules -> SQS -> the webhook deliverer (a receiver on
localhost) and the email notifier (moto's SES)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from infra.constructs.webhooks import MAX_RECEIVE_COUNT
from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack
from render_service.models.events import DetailType, RenderEvent
from render_service.signatures import EVENT_ID_HEADER, verify_signature

pytestmark = pytest.mark.e2e
TITLE = {"timeline": {"scenes": [{"type": "title", "text": "Hooked", "duration": 1}]}, "output": {"resolution": "720p"}}


class Receiver:
    """An HTTP receiver on 127.0.0.1 that answers `status` and keeps every request it got."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]

    def wait_for(self, predicate: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver saw only {[b.get('type') for b in self.bodies()]}")
            time.sleep(0.2)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    with local_stack(remotion=False) as running:
        yield running


def _secret(cloud: LocalCloud) -> str:
    arn = cloud.environment["WEBHOOK_SECRET_ARN"]
    return str(cloud.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def _submit(gateway: Gateway, user: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{gateway.url}/renders", json=body, headers={"Authorization": f"Bearer local:{user}"}, timeout=30
    )


def test_a_receiver_gets_signed_started_and_succeeded(stack: tuple[LocalCloud, Gateway]) -> None:
    cloud, gateway = stack
    receiver = Receiver(204)
    try:
        custom = {"projectId": "p-1", "tags": ["a", "b"]}
        created = _submit(gateway, "hooked", {**TITLE, "webhook": {"url": receiver.url, "customData": custom}})
        assert created.status_code == 202, created.text
        render_id = created.json()["renderId"]
        receiver.wait_for(lambda: {"Render Started", "Render Succeeded"} <= {b["type"] for b in receiver.bodies()})

        secret = _secret(cloud)
        for headers, body in receiver.requests:
            document = json.loads(body)
            assert document["renderId"] == render_id
            assert document["customData"] == custom
            assert verify_signature(secret, headers, body)
            assert not verify_signature("another-secret", headers, body)
            assert headers[EVENT_ID_HEADER] == RenderEvent.event_id(render_id, DetailType(document["type"]))
            assert headers["Content-Type"] == "application/json"
        succeeded = next(b for b in receiver.bodies() if b["type"] == "Render Succeeded")
        assert succeeded["status"] == "complete"
        assert succeeded["output"]["key"] == f"renders/hooked/{render_id}.mp4"
        assert "webhook" not in succeeded
        assert receiver.url not in json.dumps(succeeded)
    finally:
        receiver.close()


def test_a_failing_receiver_is_retried_then_the_event_is_dead_lettered(stack: tuple[LocalCloud, Gateway]) -> None:
    cloud, gateway = stack
    receiver = Receiver(500)
    try:
        created = _submit(gateway, "hooked-500", {**TITLE, "webhook": {"url": receiver.url}})
        assert created.status_code == 202, created.text
        render_id = created.json()["renderId"]
        succeeded_id = RenderEvent.event_id(render_id, DetailType.succeeded)

        def attempts() -> int:
            return sum(1 for headers, _ in receiver.requests if headers[EVENT_ID_HEADER] == succeeded_id)

        receiver.wait_for(lambda: attempts() >= MAX_RECEIVE_COUNT)
        deadline = time.monotonic() + 60
        dead: list[dict[str, Any]] = []
        while not dead and time.monotonic() < deadline:
            dead = [
                m
                for m in cloud.queue_messages("WebhooksDeliveriesDeadLetters")
                if m["detail"]["renderId"] == render_id and m["detail-type"] == "Render Succeeded"
            ]
            time.sleep(0.5)
        assert dead, "the succeeded event never reached the dead-letter queue"
        assert attempts() == MAX_RECEIVE_COUNT  # then no more
    finally:
        receiver.close()


def test_a_receivers_4xx_is_not_retried(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    receiver = Receiver(410)
    try:
        created = _submit(gateway, "hooked-410", {**TITLE, "webhook": {"url": receiver.url}})
        render_id = created.json()["renderId"]
        succeeded_id = RenderEvent.event_id(render_id, DetailType.succeeded)
        receiver.wait_for(lambda: any(h[EVENT_ID_HEADER] == succeeded_id for h, _ in receiver.requests))
        started_id = RenderEvent.event_id(render_id, DetailType.started)
        # The started event was answered 410 long before the succeeded one was sent: had it been
        # retried (1 s backoff here), a second copy would have arrived by now.
        assert [h[EVENT_ID_HEADER] for h, _ in receiver.requests].count(started_id) == 1
    finally:
        receiver.close()


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest", "https://10.0.0.7/hook", "https://192.168.1.10/x", "ftp://example.com/x"],
)
def test_a_webhook_to_a_non_public_address_is_a_422(stack: tuple[LocalCloud, Gateway], url: str) -> None:
    _, gateway = stack
    refused = _submit(gateway, "hooked-422", {**TITLE, "webhook": {"url": url}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"]["field"] == "webhook.url"


def test_custom_data_over_a_kilobyte_is_a_422(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    refused = _submit(
        gateway, "hooked-422", {**TITLE, "webhook": {"url": "https://example.com/h", "customData": {"x": "y" * 1100}}}
    )
    assert refused.status_code == 422, refused.text
    assert "customData" in refused.text


def _wait_for_email(cloud: LocalCloud, to: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = [m for m in cloud.sent_emails() if m["to"] == [to]]
        if sent:
            assert len(sent) == 1, sent
            return sent[0]
        time.sleep(0.3)
    raise AssertionError(f"no email to {to}")


def test_a_render_that_asked_is_emailed_with_its_name_length_and_a_working_link(
    stack: tuple[LocalCloud, Gateway],
) -> None:
    cloud, gateway = stack
    body = {**TITLE, "subject": {"type": "movie", "id": "m-42"}, "notify": {"email": True}}
    created = _submit(gateway, "mailer", body)
    assert created.status_code == 202, created.text
    render_id = created.json()["renderId"]

    email = _wait_for_email(cloud, "mailer@example.test")
    assert email["source"] == "renders@example.test"
    assert email["subject"] == "Your video movie m-42 is ready"
    assert "Length: 0:01" in email["body"]
    link = next(line.removeprefix("Download: ") for line in email["body"].splitlines() if line.startswith("Download: "))
    video = requests.get(link, timeout=30)
    assert video.status_code == 200
    render = requests.get(
        f"{gateway.url}/renders/{render_id}", headers={"Authorization": "Bearer local:mailer"}, timeout=30
    ).json()
    assert len(video.content) == render["output"]["sizeBytes"]


def test_a_render_that_finally_fails_is_emailed_with_the_reason(stack: tuple[LocalCloud, Gateway]) -> None:
    cloud, gateway = stack
    missing = f"s3://{cloud.bucket_name}/inputs/mailer-fail/nothing-here.mp4"
    body = {"timeline": {"scenes": [{"type": "clip", "src": missing}]}, "notify": {"email": True}}
    created = _submit(gateway, "mailer-fail", body)
    assert created.status_code == 202, created.text
    render_id = created.json()["renderId"]

    email = _wait_for_email(cloud, "mailer-fail@example.test")
    assert email["subject"] == f"Your video {render_id} could not be rendered"
    assert "refunded" in email["body"]
    assert "Download" not in email["body"]


def test_an_output_delivered_to_the_r2_stand_in_arrives_byte_identical(stack: tuple[LocalCloud, Gateway]) -> None:
    cloud, gateway = stack
    auth = {"Authorization": "Bearer local:deliverer"}
    created = _submit(gateway, "deliverer", {**TITLE, "deliverTo": "r2"})
    assert created.status_code == 202, created.text
    render_id = created.json()["renderId"]

    deadline = time.monotonic() + 120
    render: dict[str, Any] = {}
    while time.monotonic() < deadline:
        render = requests.get(f"{gateway.url}/renders/{render_id}", headers=auth, timeout=30).json()
        if render["deliveries"] and render["deliveries"][0]["status"] != "pending":
            break
        time.sleep(0.3)
    assert render["status"] == "complete"
    assert render["deliveries"] == [
        {"destination": "r2", "key": f"exports/{render_id}.mp4", "status": "delivered", "error": None}
    ]
    ours = requests.get(render["output"]["url"], timeout=30).content
    theirs = cloud.r2_client().get_object(Bucket="r2-exports", Key=f"exports/{render_id}.mp4")
    assert theirs["Body"].read() == ours
    assert theirs["ContentType"] == "video/mp4"


def test_an_unknown_destination_is_a_422_naming_the_known_ones(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    refused = _submit(gateway, "deliverer", {**TITLE, "deliverTo": "dropbox"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"] == {"field": "deliverTo", "allowed": ["r2"]}
