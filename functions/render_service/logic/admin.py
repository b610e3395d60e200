"""What an operator does: every user's active renders, any render with its workflow, anyone's cancel.

The API's `/admin/...` routes and `python -m infra.admin` both call these. Each names the operator
(`admin`), and every action is logged with them first, so that whatever follows (a refusal, the
lifecycle's own logs) can be traced to a person.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from render_service.lifecycle import lifecycle
from render_service.logic import renders
from render_service.models import api
from render_service.models.jobs import RenderJob, RenderStatus
from render_service.service import service

logger = Logger(child=True)


def console_url(execution_arn: str) -> str:
    """The execution's page in the Step Functions console (its region is the ARN's)."""
    region = execution_arn.split(":")[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def to_admin_view(job: RenderJob, view: api.RenderView | None = None) -> api.AdminRenderView:
    arn = lifecycle().execution_arn(job.render_id)
    age = max(0, int((datetime.now(UTC) - job.created_at).total_seconds()))
    return api.AdminRenderView.model_validate(
        {
            **(view or renders.to_view(job)).model_dump(),
            "userId": job.user_id,
            "ageSeconds": age,
            "executionArn": arn,
            "consoleUrl": console_url(arn),
        }
    )


def _audit(admin: str, action: str, **keys: Any) -> None:
    logger.info("admin action", extra={"admin": admin, "admin_action": action, **keys})


def active(admin: str, *, limit: int = 50, cursor: str | None = None) -> api.AdminRenderPage:
    """Every user's queued and rendering renders, newest first."""
    _audit(admin, "list_active", limit=limit)
    jobs, next_cursor = service().renders.list_active(limit=limit, cursor=cursor)
    return api.AdminRenderPage(renders=[to_admin_view(job) for job in jobs], nextCursor=next_cursor)


def show(admin: str, render_id: str) -> api.AdminRenderView:
    _audit(admin, "show", render_id=render_id)
    job = service().renders.require(render_id)
    return to_admin_view(job, renders.detail(job))


def cancel(admin: str, render_id: str) -> api.AdminRenderView:
    """The user's own cancel (`lifecycle().cancel`): the same refund, slot release and event."""
    job = service().renders.require(render_id)
    _audit(admin, "cancel", render_id=render_id, render_user=job.user_id, status=job.status.value)
    finished = lifecycle().cancel(render_id)
    logger.warning(
        "render cancelled by an admin",
        extra={
            "admin": admin,
            "render_id": render_id,
            "render_user": job.user_id,
            "credits_refunded": job.cost - finished.cost,
        },
    )
    return to_admin_view(finished)


def user_renders(
    admin: str, user_id: str, *, status: RenderStatus | None = None, limit: int = 20, cursor: str | None = None
) -> api.AdminRenderPage:
    """One user's renders, newest first (their history index)."""
    _audit(admin, "list_user", render_user=user_id)
    jobs, next_cursor = service().renders.list_for_user(user_id, status=status, limit=limit, cursor=cursor)
    return api.AdminRenderPage(renders=[to_admin_view(job) for job in jobs], nextCursor=next_cursor)
