"""The service bucket's layout and S3 operations that are not media work.

- `inputs/<user>/<uuid>/<filename>`: uploads through presigned PUT URLs
- `work/<renderId>/...`: staged sources, and each attempt's plan and chunks under `attempt-<n>/`
  (expired by a lifecycle rule)
- `renders/<user>/<renderId>.mp4`: finished outputs, with their stills beside them:
  `renders/<user>/<renderId>.poster.jpg` and `renders/<user>/<renderId>.thumb.jpg`
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def output_key(user_id: str, render_id: str) -> str:
    return f"renders/{user_id}/{render_id}.mp4"


def poster_key(user_id: str, render_id: str) -> str:
    return f"renders/{user_id}/{render_id}.poster.jpg"


def thumbnail_key(user_id: str, render_id: str) -> str:
    return f"renders/{user_id}/{render_id}.thumb.jpg"


def output_keys(user_id: str, render_id: str) -> list[str]:
    """Every object a finished render owns: the MP4 and its stills."""
    return [output_key(user_id, render_id), poster_key(user_id, render_id), thumbnail_key(user_id, render_id)]


def delete_output(s3: S3Client, bucket: str, user_id: str, render_id: str) -> None:
    """Removes a render's MP4 and stills (deleting a key that is not there is not an error)."""
    keys = [{"Key": key} for key in output_keys(user_id, render_id)]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})  # type: ignore[typeddict-item]


def work_prefix(render_id: str) -> str:
    return f"work/{render_id}/"


def attempt_prefix(render_id: str, attempt: int) -> str:
    """Each attempt of a render plans and renders its own chunks: a late worker of an earlier
    attempt can never overwrite the current one's."""
    return f"{work_prefix(render_id)}attempt-{attempt}/"


def plan_key(render_id: str, attempt: int) -> str:
    return f"{attempt_prefix(render_id, attempt)}plan.json"


def inline_output_key(render_id: str, attempt: int) -> str:
    """What StartRender made when it rendered a plan inline, for FinalizeRender to pass on."""
    return f"{attempt_prefix(render_id, attempt)}output.json"


def input_key(user_id: str, upload_id: str, filename: str) -> str:
    return f"inputs/{user_id}/{upload_id}/{filename}"


def presign_get(
    s3: S3Client, bucket: str, key: str, expires_in: int, filename: str | None = None
) -> tuple[str, datetime]:
    params = {"Bucket": bucket, "Key": key}
    if filename:
        params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
    url = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
    return url, datetime.now(UTC) + timedelta(seconds=expires_in)


def presign_put(
    s3: S3Client, bucket: str, key: str, content_type: str, size: int, expires_in: int
) -> tuple[str, datetime]:
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": content_type, "ContentLength": size},
        ExpiresIn=expires_in,
    )
    return url, datetime.now(UTC) + timedelta(seconds=expires_in)


def exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def delete_prefix(s3: S3Client, bucket: str, prefix: str) -> None:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})  # type: ignore[typeddict-item]
