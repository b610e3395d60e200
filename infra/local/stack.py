"""Starts the local cloud and the gateway together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.local.cloud import DEFAULT_TEMPLATE, LocalCloud
from infra.local.gateway import Gateway

# The reference web app, served at / beside the API (as a static host would be, deployed).
WEB_DIR = Path(__file__).resolve().parents[1] / "client" / "web"


@contextmanager
def local_stack(
    port: int = 0, template: Path = DEFAULT_TEMPLATE, *, remotion: bool = True
) -> Iterator[tuple[LocalCloud, Gateway]]:
    """The local cloud and its gateway; `remotion=False` leaves the Remotion engine unconfigured."""
    cloud = LocalCloud(template, remotion=remotion).start()
    # Imported after the cloud has set the environment the handler's settings read.
    from render_service.handlers.api import handler

    gateway = Gateway(handler, port=port, static_dir=WEB_DIR).start()
    try:
        yield cloud, gateway
    finally:
        gateway.stop()
        cloud.stop()
