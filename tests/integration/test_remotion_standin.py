"""The Remotion client against the local stand-in, over moto's Lambda and S3: the same protocol both ways."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import boto3
import pytest

from render_service import errors
from render_service.engines.remotion.client import RemotionConfig, RemotionFunction
from render_service.engines.remotion.protocol import INLINE_PROPS_MAX_BYTES, RenderProgress
from render_service.models.remotion import RemotionRequest

FUNCTION, BUCKET = "remotion-render-test", "remotionlambda-test"


@pytest.fixture
def remotion(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RemotionFunction]:
    from infra.local import remotion as standin
    from render_service.settings import get_settings

    for key, value in {"REMOTION_BUCKET": BUCKET, "WORK_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    aws.s3.create_bucket(Bucket=BUCKET)
    lam = boto3.client("lambda")
    role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="nodejs22.x",
        Role=role,
        Handler="infra.local.remotion.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
    )
    config = RemotionConfig(FUNCTION, "https://remotion.local/sites/s", "us-east-1", BUCKET, standin.VERSION)
    return RemotionFunction(config, lambda_client=lam, s3=aws.s3)


def _request(composition: str = "TextAnimation", **fields: Any) -> RemotionRequest:
    body = {
        "engine": "remotion",
        "kind": "clip",
        "composition": composition,
        "durationInFrames": 45,
        "fps": 30,
        "inputProps": {"text": "Hello from the stand-in", "style": "slide-up", "fontFamily": "Lato"},
        "output": {"width": 640, "height": 360},
        **fields,
    }
    return RemotionRequest.model_validate(body)


def _wait(remotion: RemotionFunction, render_id: str, bucket: str) -> list[RenderProgress]:
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = remotion.progress(render_id, bucket)
        seen.append(progress)
        if progress.done or progress.fatalErrorEncountered:
            return seen
        time.sleep(0.2)
    raise AssertionError("the stand-in never finished")


def test_a_text_animation_renders_to_a_private_mp4_in_remotions_bucket(
    remotion: RemotionFunction, aws: Any, tmp_path: Path
) -> None:
    started = remotion.start(_request())
    seen = _wait(remotion, started.render_id, started.bucket)
    final = seen[-1]

    assert started.bucket == BUCKET
    assert final.done
    assert not final.errors
    assert [p.overallProgress for p in seen] == sorted(p.overallProgress for p in seen)
    assert final.outKey == f"renders/{started.render_id}/out.mp4"
    assert final.costs.accruedSoFar > 0
    assert final.costs.currency == "USD"
    local = tmp_path / "out.mp4"
    aws.s3.download_file(BUCKET, final.outKey, str(local))
    with av.open(str(local)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        assert (video.codec_context.width, video.codec_context.height, frames) == (640, 360, 45)
        assert video.average_rate == 30
        assert container.streams.audio[0].codec_context.name == "aac"
    document = json.loads(
        aws.s3.get_object(Bucket=BUCKET, Key=f"renders/{started.render_id}/progress.json")["Body"].read()
    )
    assert document["renderMetadata"]["privacy"] == "private"
    assert document["cancellationEnabled"] is True


def test_props_too_big_for_an_invoke_travel_through_the_bucket(remotion: RemotionFunction, aws: Any) -> None:
    big = {"text": "Big props", "style": "fade-in", "padding": "x" * (INLINE_PROPS_MAX_BYTES + 10)}
    payload = remotion.start_payload(_request(inputProps=big))

    assert payload.inputProps.type == "bucket-url"
    stored = aws.s3.get_object(Bucket=BUCKET, Key=f"input-props/{payload.inputProps.hash}.json")["Body"].read()  # type: ignore[union-attr]
    assert json.loads(stored) == big
    started = remotion.start(_request(inputProps=big))
    assert _wait(remotion, started.render_id, started.bucket)[-1].done


def test_a_movie_of_code_scenes_renders_slates_of_the_right_length(remotion: RemotionFunction) -> None:
    scenes = [{"title": f"Scene {i}"} for i in range(3)]
    started = remotion.start(_request("Movie", kind="movie", inputProps={"scenes": scenes}, durationInFrames=30))
    final = _wait(remotion, started.render_id, started.bucket)[-1]
    assert final.done
    assert final.framesRendered == 30


def test_cancel_writes_the_signal_and_the_render_reports_cancelled_error(remotion: RemotionFunction) -> None:
    started = remotion.start(_request(durationInFrames=600, output={"width": 1920, "height": 1080}))
    assert remotion.cancel(started.render_id, started.bucket)
    final = _wait(remotion, started.render_id, started.bucket)[-1]

    assert final.fatalErrorEncountered
    assert not final.done
    assert final.cancelled


def test_an_unknown_composition_is_a_fatal_error_with_remotions_message(remotion: RemotionFunction) -> None:
    started = remotion.start(_request("NoSuchComp"))
    final = _wait(remotion, started.render_id, started.bucket)[-1]
    fatal = final.fatal_error()

    assert fatal is not None
    assert "No composition with the ID NoSuchComp found" in fatal.message
    assert fatal.stack


def test_a_version_mismatch_is_refused_with_remotions_message(remotion: RemotionFunction) -> None:
    wrong = RemotionFunction(
        RemotionConfig(FUNCTION, "https://x", "us-east-1", BUCKET, "3.3.0"),
        lambda_client=remotion.lambda_client,
        s3=remotion.s3,
    )
    with pytest.raises(errors.RemotionRefused, match="Version mismatch"):
        wrong.start(_request())


def test_a_missing_function_is_transient(remotion: RemotionFunction) -> None:
    gone = RemotionFunction(
        RemotionConfig("not-deployed", "https://x", "us-east-1", BUCKET, "4.0.0"),
        lambda_client=remotion.lambda_client,
        s3=remotion.s3,
    )
    with pytest.raises(errors.RemotionUnavailable):
        gone.start(_request())
