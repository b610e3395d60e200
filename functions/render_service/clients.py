"""AWS clients, created on first use so that the environment (endpoint, region) is read then."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_CONFIG)


@cache
def s3() -> S3Client:
    # SigV4 so that presigned URLs work in every region.
    return boto3.client("s3", config=_CONFIG.merge(Config(signature_version="s3v4")))


@cache
def sfn() -> SFNClient:
    # StartExecution answers in milliseconds; short timeouts leave room, inside the API's 29 s,
    # to roll an admission back when it does not answer at all.
    return boto3.client(
        "stepfunctions",
        config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5),
    )


@cache
def events() -> EventBridgeClient:
    return boto3.client("events", config=_CONFIG)


@cache
def lambda_() -> LambdaClient:
    return boto3.client("lambda", config=_CONFIG)


@cache
def secretsmanager() -> SecretsManagerClient:
    return boto3.client("secretsmanager", config=_CONFIG)


@cache
def ses() -> SESClient:
    return boto3.client("ses", config=_CONFIG)


@cache
def sqs() -> SQSClient:
    return boto3.client("sqs", config=_CONFIG)


def reset() -> None:
    """Forget every client (tests and the local stack change the endpoint)."""
    for factory in (dynamodb, s3, sfn, events, lambda_, secretsmanager, ses, sqs):
        factory.cache_clear()
