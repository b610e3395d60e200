"""The local gateway over real HTTP, with a stand-in handler."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import requests
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from infra.local.gateway import Gateway

pytestmark = pytest.mark.e2e


def test_metrics_do_not_pile_up_across_requests_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request ends its metrics as a Lambda invocation does; otherwise the 100th value of one
    metric makes Powertools serialize mid-request, which fails without a namespace (a 502)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = Metrics(namespace=None)

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="Refused", unit=MetricUnit.Count, value=1)
        return {"statusCode": 200, "body": "{}"}

    gateway = Gateway(handler).start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            statuses = [requests.get(f"{gateway.url}/health", timeout=10).status_code for _ in range(120)]
    finally:
        gateway.stop()
    assert set(statuses) == {200}
