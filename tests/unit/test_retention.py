"""Retention arithmetic: the class an output gets, how long links may last, and the local lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from infra.local.lifecycle import ExpirationRule
from render_service.models.jobs import OutputObject
from render_service.retention import expired, link_seconds, reminder_lead, retention_class
from render_service.settings import Settings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def settings(**env: str) -> Settings:
    return Settings.model_validate({"TABLE_NAME": "t", "BUCKET_NAME": "b", **env})


def output(until: datetime | None) -> OutputObject:
    return OutputObject(key="renders/u/r.mp4", size_bytes=1, duration_seconds=1.0, retained_until=until)


def test_an_output_is_kept_under_a_class_that_has_a_lifecycle_rule() -> None:
    s = settings(OUTPUT_RETENTION_DAYS="7", RETENTION_CLASSES="30,90")
    assert s.retention_day_classes == (7, 30, 90)
    assert retention_class(None, s) == 7
    assert retention_class(30, s) == 30
    assert retention_class(60, s) == 30  # a class removed since: the longest one not longer
    assert retention_class(3, s) == 7


def test_retention_settings_refuse_classes_without_a_possible_rule() -> None:
    with pytest.raises(ValidationError, match="retention class"):
        settings(RETENTION_CLASSES="30,0")
    with pytest.raises(ValidationError, match="OUTPUT_RETENTION_DAYS"):
        settings(OUTPUT_RETENTION_DAYS="0")


def test_links_never_outlive_the_output() -> None:
    assert link_seconds(output(NOW + timedelta(seconds=90)), 3600, NOW) == 90
    assert link_seconds(output(NOW + timedelta(days=7)), 3600, NOW) == 3600
    assert link_seconds(output(NOW - timedelta(seconds=5)), 3600, NOW) == 0
    assert link_seconds(output(None), 3600, NOW) == 3600  # made before retention: as asked
    assert expired(output(NOW), NOW)
    assert not expired(output(NOW + timedelta(seconds=1)), NOW)
    assert not expired(output(None), NOW)


def test_the_reminder_lead_runs_on_the_retention_clock() -> None:
    assert reminder_lead(settings()) == timedelta(hours=48)
    assert reminder_lead(settings(RETENTION_DAY_SECONDS="60", EXPIRY_REMINDER_HOURS="24")) == timedelta(seconds=60)


RULE_7 = {
    "Id": "ExpireRenders7Days",
    "Prefix": "renders/",
    "TagFilters": [{"Key": "retention-days", "Value": "7"}],
    "ExpirationInDays": 7,
}


def test_the_local_lifecycle_reads_the_templates_rules_as_s3_applies_them() -> None:
    rules = ExpirationRule.from_template(
        [
            {"Id": "ExpireWorkFiles", "Prefix": "work/", "ExpirationInDays": 2, "Status": "Enabled"},
            {**RULE_7, "Status": "Enabled"},
            {"Id": "AbortIncompleteUploads", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        ]
    )
    assert [(r.prefix, r.tags, r.days) for r in rules] == [("work/", {}, 2), ("renders/", {"retention-days": "7"}, 7)]
    # A shortened retention day shortens outputs' rules only, never a running render's work files.
    short = ExpirationRule.from_template(
        [{"Prefix": "work/", "ExpirationInDays": 2, "Status": "Enabled"}, {**RULE_7, "Status": "Enabled"}],
        output_day_seconds=2,
    )
    assert [r.day_seconds for r in short] == [86400, 2]
    tagged = rules[1]
    created = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert tagged.expiry("renders/u/r.mp4", created, {"retention-days": "7"}) == datetime(2026, 3, 9, tzinfo=UTC)
    assert tagged.expiry("renders/u/r.mp4", created, {"retention-days": "30"}) is None
    assert tagged.expiry("work/r/chunk-0.mp4", created, {"retention-days": "7"}) is None
