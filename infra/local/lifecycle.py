"""The bucket's lifecycle rules on the local stack, which moto stores but never runs.

The local cloud applies the template's expiration rules itself, as S3 would: an object matching
a rule's prefix and tags expires at its creation time plus the rule's days, rounded up to the
next midnight UTC. For outputs under `renders/` a day is the functions' retention day
(`RETENTION_DAY_SECONDS`, shortened to watch expiry happen); other prefixes (work files, uploads)
keep real days, so a short retention day never removes a running render's chunks. Only
`ExpirationInDays` with `Prefix` and `TagFilters` is handled: what the template uses. S3 deletes
in the background, often hours after; this deletes at the next look.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from render_service.retention import expires_at

log = logging.getLogger("render_service.local")


@dataclass(frozen=True)
class ExpirationRule:
    prefix: str
    tags: dict[str, str]
    days: int
    day_seconds: int = 86400

    @classmethod
    def from_template(
        cls, rules: list[dict[str, Any]], *, output_day_seconds: int = 86400, outputs_prefix: str = "renders/"
    ) -> list[ExpirationRule]:
        found = []
        for rule in rules:
            if rule.get("Status") != "Enabled" or "ExpirationInDays" not in rule:
                continue
            tags = {t["Key"]: t["Value"] for t in rule.get("TagFilters", [])}
            prefix = rule.get("Prefix", "")
            day = output_day_seconds if prefix.startswith(outputs_prefix) else 86400
            found.append(cls(prefix=prefix, tags=tags, days=int(rule["ExpirationInDays"]), day_seconds=day))
        return found

    def expiry(self, key: str, created: datetime, tags: dict[str, str]) -> datetime | None:
        if not key.startswith(self.prefix) or any(tags.get(k) != v for k, v in self.tags.items()):
            return None
        return expires_at(created, self.days, self.day_seconds)


@dataclass
class LocalLifecycle:
    s3: Any
    bucket: str
    rules: list[ExpirationRule]

    def expire(self, now: datetime) -> list[str]:
        """Deletes every object whose earliest matching rule has expired it; returns their keys."""
        expired = []
        for prefix in sorted({rule.prefix for rule in self.rules}):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    if self._expires(obj, now):
                        expired.append(obj["Key"])
        for key in expired:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            log.info("lifecycle expired %s", key)
        return expired

    def _expires(self, obj: dict[str, Any], now: datetime) -> bool:
        candidates = [rule for rule in self.rules if obj["Key"].startswith(rule.prefix)]
        if not candidates:
            return False
        tagging = self.s3.get_object_tagging(Bucket=self.bucket, Key=obj["Key"])["TagSet"]
        tags = {t["Key"]: t["Value"] for t in tagging}
        dates = [d for rule in candidates if (d := rule.expiry(obj["Key"], obj["LastModified"], tags))]
        # Overlapping rules: S3 applies the earliest expiration.
        return bool(dates) and now >= min(dates)
