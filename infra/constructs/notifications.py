"""The custom EventBridge bus that announces render lifecycle events."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from constructs import Construct


class RenderNotifications(Construct):
    """`bus` carries "Render Started/Succeeded/Failed/Cancelled"; the archive allows replays."""

    def __init__(self, scope: Construct, construct_id: str, *, archive_retention: Duration) -> None:
        super().__init__(scope, construct_id)
        # No fixed name: CDK derives a unique one, so two stages can share an account.
        self.bus = events.EventBus(self, "Bus", description="Render lifecycle events of the render service")
        self.archive = self.bus.archive(
            "Archive",
            description="Render events, kept for replay into new consumers",
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=archive_retention,
        )
