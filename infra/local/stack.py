"""Starts the local cloud and the gateway together."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.local.cloud import DEFAULT_TEMPLATE, LocalCloud
from infra.local.gateway import Gateway, admin_users_from

# The reference web app, served at / beside the API (as a static host would be, deployed).
WEB_DIR = Path(__file__).resolve().parents[1] / "client" / "web"


@contextmanager
def local_stack(
    port: int = 0, template: Path = DEFAULT_TEMPLATE, *, remotion: bool = True, admin_users: str | None = None
) -> Iterator[tuple[LocalCloud, Gateway]]:
    """The local cloud and its gateway; `remotion=False` leaves the Remotion engine unconfigured.

    `admin_users` (default: `ADMIN_USERS`, else none) are the users the gateway puts in the admins group.
    """
    cloud = LocalCloud(template, remotion=remotion).start()
    # Imported after the cloud has set the environment the handler's settings read.
    from render_service.handlers.api import handler

    admins = admin_users_from(os.environ.get("ADMIN_USERS") if admin_users is None else admin_users)
    gateway = Gateway(handler, port=port, static_dir=WEB_DIR, admin_users=admins).start()
    try:
        yield cloud, gateway
    finally:
        gateway.stop()
        cloud.stop()
