"""One validated view of the environment, built on first use.

Built lazily (not at import) so that tests and the local stack can set the
environment first; `get_settings.cache_clear()` rebuilds it.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from render_service.fonts import DEFAULT_FAMILY, FontFamily, font_file
from render_service.models.notifications import Destination
from render_service.models.rates import DEFAULT_RATE_WINDOWS, RateWindows, legacy_rate_window

# The single window of earlier releases; still honoured when RATE_LIMITS is not set (see the README).
LEGACY_RATE_VARIABLES = ("RATE_LIMIT_RENDERS", "RATE_LIMIT_WINDOW_SECONDS")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    table_name: str = Field(validation_alias="TABLE_NAME")
    bucket_name: str = Field(validation_alias="BUCKET_NAME")
    event_bus_name: str = Field("default", validation_alias="EVENT_BUS_NAME")
    state_machine_arn: str = Field("", validation_alias="STATE_MACHINE_ARN")
    chunk_function_name: str = Field("", validation_alias="CHUNK_FUNCTION_NAME")

    # Buckets a timeline may read `s3://` sources from; the service bucket is always allowed.
    allowed_source_buckets: tuple[str, ...] = Field((), validation_alias="ALLOWED_SOURCE_BUCKETS")

    # Every window is checked in the admission transaction: JSON `[{"limit": 5, "seconds": 3600}, ...]`.
    rate_limits: RateWindows = Field(DEFAULT_RATE_WINDOWS, validation_alias="RATE_LIMITS")
    max_active_renders: int = Field(3, ge=1, validation_alias="MAX_ACTIVE_RENDERS")
    max_queued_renders: int = Field(10, ge=1, validation_alias="MAX_QUEUED_RENDERS")
    initial_credits: int = Field(100, ge=0, validation_alias="INITIAL_CREDITS")
    credits_enabled: bool = Field(True, validation_alias="CREDITS_ENABLED")
    upload_rate_limit: int = Field(100, ge=1, validation_alias="UPLOAD_RATE_LIMIT")  # per user per hour
    allow_high_resolution: bool = Field(False, validation_alias="ALLOW_HIGH_RESOLUTION")

    # Step Functions Wait states read these through SecondsPath; the local stack shortens them.
    poll_interval_seconds: int = Field(5, ge=1, validation_alias="POLL_INTERVAL_SECONDS")
    slot_wait_seconds: int = Field(10, ge=1, validation_alias="SLOT_WAIT_SECONDS")
    # A running chunk with no heartbeat for this long is presumed dead and dispatched again.
    chunk_stall_seconds: int = Field(300, ge=5, validation_alias="CHUNK_STALL_SECONDS")
    # A dispatched chunk no worker has claimed for this long is presumed lost (async queue, throttling).
    chunk_dispatch_timeout_seconds: int = Field(900, ge=5, validation_alias="CHUNK_DISPATCH_TIMEOUT_SECONDS")
    # Whole-render retries after a transient failure: attempts in all, and the wait before each retry.
    max_render_attempts: int = Field(3, ge=1, le=10, validation_alias="MAX_RENDER_ATTEMPTS")
    retry_delays_seconds: tuple[int, ...] = Field((30, 120, 300), min_length=1, validation_alias="RETRY_DELAYS_SECONDS")
    download_url_ttl_seconds: int = Field(3600, ge=60, le=604800, validation_alias="DOWNLOAD_URL_TTL_SECONDS")
    # CloudFront signed download URLs (deployed); all three or none. Without them (locally), S3 presigns.
    cdn_domain: str = Field("", validation_alias="CDN_DOMAIN")
    cdn_key_pair_id: str = Field("", validation_alias="CDN_KEY_PAIR_ID")
    cdn_private_key_secret: str = Field("", validation_alias="CDN_PRIVATE_KEY_SECRET")

    # Retention of finished outputs (MP4 and stills), enforced by the bucket's lifecycle rules: one
    # rule per class, so a user's longer retention must be one of the deployment's classes.
    output_retention_days: int = Field(7, ge=1, le=3650, validation_alias="OUTPUT_RETENTION_DAYS")
    retention_classes: tuple[int, ...] = Field((30,), validation_alias="RETENTION_CLASSES")
    # "Render Expiring" goes out this long before an output expires; 0: no reminders.
    expiry_reminder_hours: float = Field(48, ge=0, le=24 * 3650, validation_alias="EXPIRY_REMINDER_HOURS")
    # How long a retention day lasts. S3's is 86400 s; the local stack shortens it to see expiry
    # and reminders happen (moto runs no lifecycle rules, see the README).
    retention_day_seconds: int = Field(86400, ge=1, le=86400, validation_alias="RETENTION_DAY_SECONDS")

    ffmpeg_path: str = Field("", validation_alias="FFMPEG_PATH")
    # Media bounds, checked while planning (see engines/ffmpeg/limits.py). 50 MP covers phone
    # photos (48 MP); 4096x4096 covers DCI 4K and vertical 4K video.
    max_image_pixels: int = Field(50_000_000, ge=1, validation_alias="MAX_IMAGE_PIXELS")
    max_video_pixels: int = Field(4096 * 4096, ge=1, validation_alias="MAX_VIDEO_PIXELS")
    max_source_seconds: float = Field(4 * 3600, gt=0, validation_alias="MAX_SOURCE_SECONDS")
    # Every packet of a source is in the demuxer's index as soon as ffmpeg opens it.
    max_source_packets: int = Field(2_000_000, ge=1, validation_alias="MAX_SOURCE_PACKETS")
    # Each ffmpeg child's memory budget (RLIMIT_AS); 0: the function's memory less the Python's share.
    ffmpeg_memory_mb: int = Field(0, ge=0, validation_alias="FFMPEG_MEMORY_MB")
    lambda_memory_mb: int = Field(0, ge=0, validation_alias="AWS_LAMBDA_FUNCTION_MEMORY_SIZE")  # set by Lambda
    # The app team's Remotion Lambda (engine "remotion"); unset, remotion requests get a 503.
    remotion_function_name: str = Field("", validation_alias="REMOTION_FUNCTION_NAME")
    remotion_serve_url: str = Field("", validation_alias="REMOTION_SERVE_URL")
    remotion_region: str = Field("", validation_alias="REMOTION_REGION")
    remotion_bucket: str = Field("", validation_alias="REMOTION_BUCKET")
    # Remotion refuses a payload whose version is not the deployed function's own.
    remotion_version: str = Field("4.0.0", validation_alias="REMOTION_VERSION")

    # Webhooks: the signing secret (Secrets Manager), and the deliverer's backoff between attempts
    # (base * 2^(n-1), capped): 30 s doubling to 15 min over 9 attempts is about an hour.
    webhook_secret_arn: str = Field("", validation_alias="WEBHOOK_SECRET_ARN")
    webhook_retry_base_seconds: int = Field(30, ge=0, validation_alias="WEBHOOK_RETRY_BASE_SECONDS")
    webhook_retry_cap_seconds: int = Field(900, ge=0, le=43200, validation_alias="WEBHOOK_RETRY_CAP_SECONDS")
    # Local stack and tests only: http:// receivers on loopback (127.0.0.1, ::1, localhost) pass.
    webhook_allow_loopback: bool = Field(False, validation_alias="WEBHOOK_ALLOW_LOOPBACK")

    # Email on completion (SES): the verified sender; unset, `notify.email: true` is refused.
    email_from: str = Field("", validation_alias="EMAIL_FROM")
    email_notify_default: bool = Field(False, validation_alias="EMAIL_NOTIFY_DEFAULT")
    # The email's download link: long, as a person may open it days later (CloudFront-signed deployed).
    email_link_ttl_seconds: int = Field(7 * 86400, ge=3600, le=604800, validation_alias="EMAIL_LINK_TTL_SECONDS")

    # S3-compatible destinations outputs may be copied to (`deliverTo`): JSON {name: Destination}.
    delivery_destinations: dict[str, Destination] = Field(
        default_factory=dict, validation_alias="DELIVERY_DESTINATIONS"
    )
    delivery_retry_base_seconds: int = Field(30, ge=0, validation_alias="DELIVERY_RETRY_BASE_SECONDS")

    # The bundled fonts (the ffmpeg layer's /opt/fonts); empty: the layer's, else the font packages'.
    font_dir: str = Field("", validation_alias="FONT_DIR")
    work_dir: Path = Field(Path("/tmp"), validation_alias="WORK_DIR")

    @model_validator(mode="before")
    @classmethod
    def _legacy_rate_window(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(name in data for name in LEGACY_RATE_VARIABLES):
            return data
        if "RATE_LIMITS" in data or "rate_limits" in data:
            raise ValueError(
                "RATE_LIMITS: set either it or the older RATE_LIMIT_RENDERS / RATE_LIMIT_WINDOW_SECONDS, not both"
            )
        rest = {k: v for k, v in data.items() if k not in LEGACY_RATE_VARIABLES}
        windows = legacy_rate_window(data.get("RATE_LIMIT_RENDERS"), data.get("RATE_LIMIT_WINDOW_SECONDS"))
        return rest | {"RATE_LIMITS": windows}

    @field_validator("allowed_source_buckets", "retention_classes", "retry_delays_seconds", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("retention_classes")
    @classmethod
    def _retention_days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= days <= 3650 for days in value):
            raise ValueError("every retention class must be 1 to 3650 days")
        return value

    @field_validator("delivery_destinations", mode="before")
    @classmethod
    def _destinations_json(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("retry_delays_seconds")
    @classmethod
    def _positive_delays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(delay < 1 for delay in value):
            raise ValueError("RETRY_DELAYS_SECONDS: every wait is at least 1 second")
        return value

    @model_validator(mode="after")
    def _cdn_complete(self) -> Settings:
        given = [bool(v) for v in (self.cdn_domain, self.cdn_key_pair_id, self.cdn_private_key_secret)]
        if any(given) and not all(given):
            raise ValueError("CDN_DOMAIN, CDN_KEY_PAIR_ID and CDN_PRIVATE_KEY_SECRET go together")
        return self

    @property
    def retention_day_classes(self) -> tuple[int, ...]:
        """Every retention an output may have, in days: the default and the longer classes."""
        return tuple(sorted({self.output_retention_days, *self.retention_classes}))

    @property
    def remotion_configured(self) -> bool:
        return bool(self.remotion_function_name and self.remotion_serve_url and self.remotion_bucket)

    @property
    def source_buckets(self) -> frozenset[str]:
        return frozenset((self.bucket_name, *self.allowed_source_buckets))

    @property
    def ffmpeg(self) -> str:
        """The ffmpeg binary: the layer's on Lambda, imageio-ffmpeg's locally."""
        if self.ffmpeg_path:
            return self.ffmpeg_path
        if Path("/opt/bin/ffmpeg").exists():
            return "/opt/bin/ffmpeg"
        import imageio_ffmpeg  # noqa: PLC0415 (only installed for local runs and tests)

        return str(imageio_ffmpeg.get_ffmpeg_exe())

    def font(self, family: FontFamily = DEFAULT_FAMILY) -> str:
        """The TTF drawtext uses for a family (see render_service.fonts)."""
        return str(font_file(family, self.font_dir or None))


@cache
def get_settings() -> Settings:
    return Settings.model_validate({k: v for k, v in os.environ.items() if v != ""})
