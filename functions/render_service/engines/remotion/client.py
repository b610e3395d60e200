"""Speaks to the team's Remotion function: boto3 `lambda.invoke` with the documented payloads, and S3.

Errors are sorted the way the workflow needs them: `RemotionUnavailable` (throttled, timed out,
the function missing) may succeed when retried; `RemotionRefused` (the function answered with an
error: wrong version, unknown composition, bad props) will not, and its message is Remotion's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from render_service import errors
from render_service.engines.remotion.protocol import (
    INLINE_PROPS_MAX_BYTES,
    BucketProps,
    ErrorReply,
    InlineProps,
    RenderProgress,
    StartPayload,
    StartResponse,
    StatusPayload,
    cancel_key,
    input_props_key,
    progress_key,
    serialized_props,
)
from render_service.models.remotion import RemotionRequest

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

# Start answers once the render is planned; keep inside PollRender/StartRender's own timeouts.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60)


@dataclass(frozen=True)
class RemotionConfig:
    """What the engine needs from the settings, and nothing else."""

    function_name: str
    serve_url: str
    region: str
    bucket: str
    version: str


@dataclass(frozen=True)
class StartedRender:
    render_id: str
    bucket: str


class RemotionFunction:
    def __init__(self, config: RemotionConfig, *, lambda_client: LambdaClient, s3: S3Client) -> None:
        self.config = config
        self.lambda_client = lambda_client
        self.s3 = s3

    # --- start ---------------------------------------------------------------------------

    def start_payload(self, request: RemotionRequest) -> StartPayload:
        """The start payload; props too big for an invoke are stored in Remotion's bucket first."""
        text, digest = serialized_props(request.inputProps)
        props: InlineProps | BucketProps
        if len(text.encode()) > INLINE_PROPS_MAX_BYTES:
            self._put(input_props_key(digest), text.encode())
            props = BucketProps(hash=digest, bucketName=self.config.bucket)
        else:
            props = InlineProps(payload=text)
        return StartPayload(
            serveUrl=self.config.serve_url,
            composition=request.composition,
            inputProps=props,
            codec=request.output.codec,
            crf=request.output.crf,
            framesPerLambda=request.framesPerLambda,
            concurrency=request.concurrency,
            forceWidth=request.output.width,
            forceHeight=request.output.height,
            forceFps=request.fps,
            forceDurationInFrames=request.durationInFrames,
            version=self.config.version,
        )

    def start(self, request: RemotionRequest) -> StartedRender:
        reply = self._invoke(self.start_payload(request).model_dump(mode="json"))
        try:
            started = StartResponse.model_validate(reply)
        except ValidationError as exc:
            raise errors.RemotionRefused(f"Remotion's start reply is not a render ({exc.errors()[0]['msg']})") from None
        return StartedRender(render_id=started.renderId, bucket=started.bucketName)

    # --- status --------------------------------------------------------------------------

    def progress(self, render_id: str, bucket: str) -> RenderProgress:
        payload = StatusPayload(renderId=render_id, bucketName=bucket, version=self.config.version)
        reply = self._invoke(payload.model_dump(mode="json"))
        try:
            return RenderProgress.model_validate(reply)
        except ValidationError as exc:
            raise errors.RemotionUnavailable(
                f"Remotion's progress reply is unreadable ({exc.errors()[0]['msg']})"
            ) from None

    # --- cancel --------------------------------------------------------------------------

    def cancel(self, render_id: str, bucket: str) -> bool:
        """Writes Remotion's cancellation signal; False when the render cannot be cancelled (no progress
        document yet, or started without cancellation), which the caller treats as best effort."""
        try:
            document = json.loads(self.s3.get_object(Bucket=bucket, Key=progress_key(render_id))["Body"].read())
        except (ClientError, ValueError):
            return False
        if not isinstance(document, dict) or document.get("cancellationEnabled") is not True:
            return False
        self._put(cancel_key(render_id), json.dumps({"cancelled": True}).encode(), bucket=bucket)
        return True

    # --- transport -----------------------------------------------------------------------

    def _put(self, key: str, body: bytes, *, bucket: str | None = None) -> None:
        try:
            self.s3.put_object(Bucket=bucket or self.config.bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as exc:
            raise errors.RemotionUnavailable(f"could not write {key} to Remotion's bucket: {exc}") from None

    def _invoke(self, payload: dict[str, Any]) -> Any:
        try:
            response = self.lambda_client.invoke(
                FunctionName=self.config.function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise errors.RemotionUnavailable(f"could not invoke {self.config.function_name}: {exc}") from None
        body = response["Payload"].read()
        try:
            reply = json.loads(body or b"null")
        except ValueError:
            raise errors.RemotionUnavailable("Remotion's reply is not JSON") from None
        if response.get("FunctionError"):
            # Lambda's error contract: {errorType, errorMessage, stackTrace}.
            message = reply.get("errorMessage", "") if isinstance(reply, dict) else ""
            raise errors.RemotionRefused(f"Remotion failed: {message or response['FunctionError']}")
        if isinstance(reply, dict) and reply.get("type") == "error":
            refused = ErrorReply.model_validate(reply)
            raise errors.RemotionRefused(f"Remotion refused the render: {refused.message}", details=refused.stack)
        return reply


@cache
def clients_for(region: str) -> tuple[LambdaClient, S3Client]:
    """Clients in the Remotion deployment's region (it may differ from ours)."""
    name = region or None
    lambda_client = boto3.client("lambda", region_name=name, config=_CONFIG)
    s3 = boto3.client("s3", region_name=name, config=_CONFIG.merge(Config(signature_version="s3v4")))
    return lambda_client, s3
