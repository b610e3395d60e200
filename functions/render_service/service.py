"""The service's wiring, built in one place: settings, the repository, accounting and the event bus.

The API, the workflow steps and the lifecycle all take their collaborators from `service()`;
`reset()` forgets everything built from the environment (tests and the local stack change it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from render_service import clients
from render_service.data.accounting import Accounting, Limits
from render_service.data.renders import RenderRepository
from render_service.notify import EventPublisher
from render_service.settings import Settings, get_settings


@dataclass(frozen=True)
class Service:
    settings: Settings
    renders: RenderRepository
    accounting: Accounting
    events: EventPublisher


def limits(settings: Settings) -> Limits:
    return Limits(
        windows=settings.rate_limits,
        max_active=settings.max_active_renders,
        max_queued=settings.max_queued_renders,
        initial_credits=settings.initial_credits,
        credits_enabled=settings.credits_enabled,
    )


def build(settings: Settings) -> Service:
    db = clients.dynamodb()
    return Service(
        settings=settings,
        renders=RenderRepository(db, settings.table_name),
        accounting=Accounting(db, settings.table_name, limits(settings)),
        events=EventPublisher(clients.events(), settings.event_bus_name),
    )


@cache
def service() -> Service:
    return build(get_settings())


_resets: list[Callable[[], None]] = []


def on_reset(forget: Callable[[], None]) -> Callable[[], None]:
    """Registers a module-level cache built from the service, to be forgotten by `reset()`."""
    _resets.append(forget)
    return forget


def reset() -> None:
    """Forget settings, clients and everything built from them."""
    from render_service.engines.remotion.client import clients_for  # noqa: PLC0415 (engine-level cache)

    clients.reset()
    clients_for.cache_clear()  # Remotion's clients, bound to the previous endpoint
    get_settings.cache_clear()
    service.cache_clear()
    for forget in _resets:
        forget()
