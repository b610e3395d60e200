"""Integration tier: our code against moto in-process, with the table the CDK template defines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.cloud import create_table, patch_moto

TABLE = "renders-test"
BUCKET = "renders-test-bucket"
BUS = "renders-test-bus"
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:RenderWorkflow"


@dataclass
class Aws:
    dynamodb: Any
    s3: Any
    events: Any
    sqs: Any
    events_queue_url: str

    def received_events(self) -> list[dict[str, Any]]:
        import json

        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.events_queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.events_queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def aws(
    monkeypatch: pytest.MonkeyPatch, template: dict[str, Any], clean_caches: None, fake_aws_credentials: None
) -> Iterator[Aws]:
    """A ready moto account: the template's table, a bucket, an event bus whose events land in a queue."""
    env = {
        "TABLE_NAME": TABLE,
        "BUCKET_NAME": BUCKET,
        "EVENT_BUS_NAME": BUS,
        "STATE_MACHINE_ARN": MACHINE_ARN,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "RenderServiceTest",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    patch_moto()
    with mock_aws():
        table = next(r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table")
        dynamodb = boto3.client("dynamodb")
        create_table(dynamodb, TABLE, table)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        events = boto3.client("events")
        bus_arn = events.create_event_bus(Name=BUS)["EventBusArn"]
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventBusName=BUS, EventPattern='{"source": ["render-service"]}')
        events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
        assert bus_arn
        yield Aws(dynamodb=dynamodb, s3=s3, events=events, sqs=sqs, events_queue_url=queue_url)
