"""The HTTP API: routes, auth and error mapping. Routes stay thin; `logic/renders.py` does the work."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from functools import cache, lru_cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import Server
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from render_service import errors
from render_service.api.openapi import (
    BODY,
    BY_ID,
    PARAMS,
    RETRY_AFTER,
    SECURITY_SCHEMES,
    finish,
    links_to_render,
    operation,
)
from render_service.logic import admin, pricing, renders
from render_service.models import api
from render_service.models.api import ADMIN_GROUP
from render_service.models.jobs import RenderStatus
from render_service.models.requests import ENGINES, AnyRenderRequest
from render_service.service import service

logger = Logger(child=True)

MAX_BODY_BYTES = 256 * 1024

STATUS_BY_ERROR: dict[type[errors.ServiceError], HTTPStatus] = {
    errors.Unauthorized: HTTPStatus.UNAUTHORIZED,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    errors.RenderNotFound: HTTPStatus.NOT_FOUND,
    errors.InvalidRequest: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
    errors.InsufficientCredits: HTTPStatus.PAYMENT_REQUIRED,
    errors.RenderAlreadyFinished: HTTPStatus.CONFLICT,
    errors.RenderNotComplete: HTTPStatus.CONFLICT,
    errors.OutputGone: HTTPStatus.GONE,
    errors.IdempotencyConflict: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.SubmissionFailed: HTTPStatus.SERVICE_UNAVAILABLE,
    errors.ServiceBusy: HTTPStatus.SERVICE_UNAVAILABLE,
    errors.EngineNotConfigured: HTTPStatus.SERVICE_UNAVAILABLE,
}
# POST /renders and /renders/estimate: one body per engine (see models/requests.py).
RenderBody = Annotated[AnyRenderRequest, Body(description="An ffmpeg timeline or a Remotion composition, by `engine`.")]


def _parse_json(body: str) -> Any:
    """json.loads, with the parser's own limits (nesting depth, digits in an integer) reported as
    invalid JSON, so they reach the resolver's 400 path and not a 500.

    A top-level array comes back as a tuple: Powertools' validation takes the first element of a
    list for a parameter that is not a sequence, so `[{...}, "junk"]` would pass as `{...}`. A
    tuple reaches pydantic whole, which refuses it for an object body (and accepts it for a list).
    """
    try:
        value = json.loads(body)
    except (RecursionError, ValueError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc)[:200], body[:100], 0) from None
    return tuple(value) if isinstance(value, list) else value


def cors_config(origins: str) -> CORSConfig:
    """CORS for the origins configured as API Gateway's (`CORS_ALLOWED_ORIGINS`, comma-separated; `*` for any).

    A request from an origin not listed gets no CORS headers, so the browser refuses it.
    """
    allowed = [origin.strip() for origin in origins.split(",") if origin.strip()] or ["*"]
    return CORSConfig(
        allow_origin=allowed[0],
        extra_origins=allowed[1:],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["Location", "Retry-After"],
        max_age=600,
    )


# The resolver is built at import, before Settings can be (tests set the environment later);
# CDK sets this from the same context key as API Gateway's preflight (corsAllowedOrigins).
CORS = cors_config(os.environ.get("CORS_ALLOWED_ORIGINS", "*"))
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=_parse_json, cors=CORS)
app.configure_openapi(
    title="Render service",
    version="1.0.0",
    description=(
        "Render videos from timelines (ffmpeg) or Remotion compositions in the background; "
        "poll or listen for completion. "
        'Every error is `{"error": {"code", "message", "details"}}`, the message starting with the field.'
    ),
    security_schemes=SECURITY_SCHEMES,
)

ID = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,80}$", description="The render id returned by POST /renders.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="A retry with the same key returns the same render and is charged once; "
        "the same key with another body is a 422 (`IDEMPOTENCY_CONFLICT`). Kept for 24 hours.",
    ),
]


def _error(
    status: HTTPStatus, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    body = api.ErrorResponse(error=api.ErrorDetail(code=code, message=message, details=details))
    return Response(
        status_code=status.value,
        content_type="application/json",
        body=body.model_dump_json(),
        headers=headers or {},
    )


def user_id() -> str:
    """The caller: Cognito's `sub` claim, put there by the API Gateway authorizer (or the local server)."""
    context = app.current_event.request_context
    claims = (context.authorizer.claims if context.authorizer else None) or {}
    sub = claims.get("sub")
    if not sub:
        raise errors.Unauthorized("missing or invalid Authorization")
    return str(sub)


def admin_id() -> str:
    """The caller, if they are in the admins group; anyone else signed in gets a 403. `handle`
    refuses them before any /admin route runs; this names the operator and is a second line."""
    caller = user_id()
    authorizer = app.current_event.request_context.authorizer
    if ADMIN_GROUP not in groups((authorizer.claims if authorizer else None) or {}):
        raise errors.Forbidden(f"Authorization: not in the {ADMIN_GROUP} group")
    return caller


def _is_admin_path(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


def groups(claims: dict[str, Any]) -> frozenset[str]:
    """The caller's Cognito groups. API Gateway's Cognito authorizer hands over every claim as a
    string, the groups joined by commas (`admins,editors`); the HTTP API's JWT authorizer writes
    `[admins editors]`. A list (a test, another authorizer) is taken as it is."""
    raw = claims.get("cognito:groups")
    parts = raw if isinstance(raw, list) else re.split(r"[,\s]+", str(raw or "").strip().strip("[]"))
    return frozenset(str(part) for part in parts if part)


def user_email() -> str | None:
    """The caller's address (Cognito's `email` claim), captured at submit for `notify.email`."""
    context = app.current_event.request_context
    claims = (context.authorizer.claims if context.authorizer else None) or {}
    email = claims.get("email")
    return str(email) if email else None


PUBLIC_ROUTES = frozenset({("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs")})


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Refuses oversize and unauthenticated requests before body validation, then resolves the route.

    Deployed, API Gateway's Cognito authorizer and its 10 MB cap act first; this is the same rule
    for the local server and a second line of defence.
    """
    method, path = event.get("httpMethod", ""), event.get("path", "")
    body = event.get("body") or ""
    refusal: Response[Any] | None = None
    if body_bytes(body, base64_encoded=bool(event.get("isBase64Encoded"))) > MAX_BODY_BYTES:
        refusal = _error(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            errors.PayloadTooLarge.code,
            f"body: must be at most {MAX_BODY_BYTES} bytes",
        )
    elif _protected(method, path):
        claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
        if not claims.get("sub"):
            refusal = _error(HTTPStatus.UNAUTHORIZED, errors.Unauthorized.code, "Authorization: missing or invalid")
        elif _is_admin_path(path) and ADMIN_GROUP not in groups(claims):
            # Before validation, so a non-admin learns nothing about the routes' parameters either.
            logger.warning("admin route refused", extra={"user_id": claims["sub"], "method": method, "path": path})
            refusal = _error(
                HTTPStatus.FORBIDDEN, errors.Forbidden.code, f"Authorization: not in the {ADMIN_GROUP} group"
            )
    if refusal is not None:
        return _proxy_response(refusal, event)
    if body:
        # The API speaks only JSON. Clients that send it as text/plain or form-encoded (curl's
        # default, fetch() with a string body) mean JSON too; a body that isn't JSON gets a 400.
        headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
        event = {**event, "headers": {**headers, "Content-Type": "application/json"}}
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    return app.resolve(event, context)


def _protected(method: str, path: str) -> bool:
    """A route that exists and is not public. Anything else has nothing to guard, and the resolver
    answers it (a 405 with `Allow` for a known path, a 404, or a CORS preflight, which carries no token)."""
    if (method, path) in PUBLIC_ROUTES:
        return False
    return any(method in methods for pattern, methods in _route_methods() if pattern.fullmatch(path))


def body_bytes(body: str, *, base64_encoded: bool) -> int:
    """The body's size on the wire: bytes, not characters (one emoji is four bytes of UTF-8)."""
    if base64_encoded:
        return len(body) * 3 // 4 - body[-2:].count("=")
    return len(body.encode("utf-8", errors="surrogatepass"))


def _proxy_response(refusal: Response[Any], event: dict[str, Any]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    # CORS headers too (as the resolver would add them), or a browser could not read why it was refused.
    cors = CORS.to_dict(CORS.allowed_origin(headers.get("origin", "")))
    return {
        "statusCode": refusal.status_code,
        "headers": {"Content-Type": "application/json", **cors, **{k: str(v) for k, v in refusal.headers.items()}},
        "body": refusal.body,
        "isBase64Encoded": False,
    }


# --- errors ----------------------------------------------------------------------------


@app.exception_handler(errors.ServiceError)
def _service_error(exc: errors.ServiceError) -> Response[Any]:
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), HTTPStatus.INTERNAL_SERVER_ERROR)
    retry_after = getattr(exc, "retry_after", None)
    headers = {RETRY_AFTER: str(retry_after)} if retry_after is not None else None
    if status >= 500:
        logger.error("service error", extra={"code": exc.code, "error": exc.message})
    return _error(status, exc.code, exc.message, exc.details, headers)


def _field(loc: Sequence[Any]) -> str:
    """Powertools locates errors as ("body", "timeline", ...) or ("query", "limit"); users want the field."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if parts and parts[0] in ENGINES:
        parts = parts[1:]  # the request union's branch, not a field
    return ".".join(parts) or "body"


def _union_field(error: Any) -> str:
    where = _field(error.get("loc", ()))
    tag = (error.get("ctx") or {}).get("discriminator", "")
    if where == "body":
        return "engine"
    return f"{where}.{tag.strip(chr(39))}" if tag else where


@app.exception_handler(RequestValidationError)
def _invalid(exc: RequestValidationError) -> Response[Any]:
    problems = [
        {
            # An unknown or missing engine is reported by the union, at the body; a scene's unknown
            # or missing `type` by the scenes' union, at the scene (`timeline.scenes.0.type`).
            "field": _union_field(e) if e.get("type", "").startswith("union_tag_") else _field(e.get("loc", ())),
            "rule": e.get("msg", ""),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]
    if any(p["type"] == "json_invalid" for p in problems):
        return _error(HTTPStatus.BAD_REQUEST, "INVALID_JSON", "body: is not valid JSON")
    first = problems[0] if problems else {"field": "body", "rule": "is invalid"}
    return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", f"{first['field']}: {first['rule']}", problems)


@app.exception_handler(IdempotencyValidationError)
def _idempotency_mismatch(exc: IdempotencyValidationError) -> Response[Any]:
    return _error(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        errors.IdempotencyConflict.code,
        "Idempotency-Key: was already used with a different body",
    )


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _idempotency_in_progress(exc: IdempotencyAlreadyInProgressError) -> Response[Any]:
    return _error(
        HTTPStatus.CONFLICT,
        "IDEMPOTENCY_IN_PROGRESS",
        "a request with this Idempotency-Key is still in progress",
        headers={"Retry-After": "1"},
    )


@app.exception_handler(json.JSONDecodeError)
def _bad_json(exc: json.JSONDecodeError) -> Response[Any]:
    return _error(HTTPStatus.BAD_REQUEST, "INVALID_JSON", f"body: is not valid JSON ({exc.msg})")


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[Any]:
    # Still the one error shape, and nothing internal in it; the log has the traceback.
    logger.exception("unhandled error")
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL", "an unexpected error occurred; it has been logged")


@app.not_found
def _no_route(exc: Exception) -> Response[Any]:
    method, path = app.current_event.http_method, app.current_event.path
    allowed = sorted(m for pattern, methods in _route_methods() for m in methods if pattern.fullmatch(path))
    if allowed:
        return _error(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            f"{method}: not allowed on {path}; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )
    return _error(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no route {method} {path}")


@cache
def _route_methods() -> list[tuple[re.Pattern[str], list[str]]]:
    """Each documented path as a pattern, with its methods: a known path with another method is a 405."""
    paths = app.get_openapi_schema().paths or {}
    return [
        (
            re.compile(re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path))),
            [m.upper() for m in item.model_dump(exclude_none=True) if m in HTTP_METHODS],
        )
        for path, item in paths.items()
    ]


HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


# --- routes ----------------------------------------------------------------------------


@app.get("/health", tags=["ops"], **operation("getHealth", "Health check", public=True))
def health() -> api.Health:
    return api.Health()


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, "application/json", _document(_base_path()))


@app.get("/docs", include_in_schema=False)
def docs() -> Response[str]:
    # Powertools' own Swagger route would render a second document (its servers ignore base path
    # mappings); this one shows exactly what /openapi.json serves.
    spec = _document(_base_path()).replace("</", "<\\/")  # the spec is inlined in a <script>
    js, css = _swagger_assets()
    return Response(200, "text/html", generate_swagger_html(spec, js, css, "", None, persist_authorization=True))


@cache
def _swagger_assets() -> tuple[str, str]:
    from pathlib import Path as FilePath  # noqa: PLC0415 (only the docs route reads the bundled files)

    from aws_lambda_powertools.event_handler.openapi import swagger_ui  # noqa: PLC0415

    folder = FilePath(swagger_ui.__file__).parent
    return (
        (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (folder / "swagger-ui.min.css").read_text(encoding="utf-8"),
    )


@lru_cache(maxsize=8)
def _document(base_path: str) -> str:
    """The document, with the server the caller reached it through (`/v1` on the execute-api
    domain, a base path mapping or `/` on a custom domain, `/` locally), relative so it holds
    on any host."""
    schema = json.loads(app.get_openapi_json_schema(servers=[Server(url=base_path or "/")]))
    return json.dumps(finish(schema), indent=2)


CREATED_HEADERS = {
    "Location": {
        "description": "The render's URL, with the stage or base path the client called.",
        "required": True,
        "schema": {"type": "string"},
    }
}


@app.post(
    "/renders",
    tags=["renders"],
    **operation(
        "createRender",
        "Submit a render",
        *BODY,
        402,
        409,
        429,
        503,
        status=HTTPStatus.ACCEPTED,
        description="Admitted: the render is queued and runs in the background.",
        headers=CREATED_HEADERS,
        links=links_to_render(("getRender", "cancelRender", "createDownloadUrl", "deleteRenderOutput")),
    ),
)
def create_render(request: RenderBody, idempotency_key: IdempotencyKey = None) -> Response[api.RenderCreated]:
    created = renders.submit(user_id(), request, idempotency_key, email=user_email())
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type="application/json",
        body=created,
        headers={"Location": f"{_base_path()}/renders/{created.renderId}"},
    )


def _base_path() -> str:
    """What stands before our routes in the caller's URL: the stage (`/v1`) on the execute-api
    domain, a base path mapping (or nothing) on a custom domain. API Gateway reports the full
    path it received in `requestContext.path`, and the route's path in `path`."""
    full, route = app.current_event.request_context.path or "", app.current_event.path
    return full[: -len(route)] if route and full.endswith(route) else ""


@app.post(
    "/renders/estimate", tags=["renders"], **operation("estimateRender", "Price a render without submitting it", *BODY)
)
def estimate_render(request: RenderBody) -> api.Estimate:
    caller = user_id()
    settings = service().settings
    pricing.check(request, caller, settings)
    return pricing.estimate(request, settings)


@app.get("/renders", tags=["renders"], **operation("listRenders", "List your renders, newest first", *PARAMS))
def list_renders(
    subjectType: Annotated[str | None, Query(pattern=r"^(movie|generation|clip)$")] = None,
    subjectId: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")] = None,
    status: Annotated[RenderStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> api.RenderPage:
    caller = user_id()
    if bool(subjectType) != bool(subjectId):
        raise errors.InvalidRequest("subjectType and subjectId: give both or neither")
    return renders.list_renders(
        caller, subject_type=subjectType, subject_id=subjectId, status=status, limit=limit, cursor=cursor
    )


@app.post(
    "/renders/cancel",
    tags=["renders"],
    **operation("cancelSubjectRenders", "Cancel every active render of a subject", *BODY, 503),
)
def cancel_subject(body: api.CancelBySubject) -> api.CancelledRenders:
    return renders.cancel_subject(user_id(), body.subject)


@app.get("/renders/<renderId>", tags=["renders"], **operation("getRender", "Get a render", *BY_ID))
def get_render(renderId: ID) -> api.RenderView:
    return renders.get(user_id(), renderId)


@app.delete(
    "/renders/<renderId>",
    tags=["renders"],
    **operation("deleteRenderOutput", "Delete a render's output (the record stays)", *BY_ID, 409, 410),
)
def delete_render_output(renderId: ID) -> api.RenderView:
    return renders.delete_output(user_id(), renderId)


@app.post(
    "/renders/<renderId>/cancel", tags=["renders"], **operation("cancelRender", "Cancel a render", *BY_ID, 409, 503)
)
def cancel_render(renderId: ID) -> api.RenderView:
    return renders.cancel(user_id(), renderId)


@app.post(
    "/renders/<renderId>/download-url",
    tags=["renders"],
    **operation("createDownloadUrl", "Sign a download link for a render's output", *BY_ID, *BODY, 409, 410),
)
def create_download_url(renderId: ID, body: api.DownloadUrlRequest | None = None) -> api.DownloadUrl:
    caller = user_id()
    return renders.download_url(caller, renderId, (body or api.DownloadUrlRequest()).expiresInSeconds)


@app.get("/quota", tags=["account"], **operation("getQuota", "Your limits, usage and credits"))
def get_quota() -> api.QuotaView:
    return renders.quota(user_id())


@app.post("/uploads", tags=["account"], **operation("createUpload", "Get a presigned upload for a source", *BODY, 429))
def create_upload(body: api.UploadRequest) -> api.UploadTicket:
    return renders.create_upload(user_id(), body)


# --- admin: operators (the Cognito group `admins`) see and cancel every user's renders --------

UserId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._@-]{1,128}$", description="The user's Cognito `sub`.")]
Cursor = Annotated[str | None, Query(max_length=2048, description="`nextCursor` of the previous page.")]


@app.get(
    "/admin/renders",
    tags=["admin"],
    **operation("adminListActiveRenders", "Every user's active renders, newest first", *PARAMS, 403),
)
def admin_list_renders(
    active: Annotated[bool, Query(description="Only `true`: the active renders (queued or rendering).")] = True,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Cursor = None,
) -> api.AdminRenderPage:
    caller = admin_id()
    if not active:
        raise errors.InvalidRequest("active: must be true; a user's whole history is /admin/users/{userId}/renders")
    return admin.active(caller, limit=limit, cursor=cursor)


@app.get(
    "/admin/renders/<renderId>",
    tags=["admin"],
    **operation("adminGetRender", "Any user's render, with its Step Functions execution", *BY_ID, 403),
)
def admin_get_render(renderId: ID) -> api.AdminRenderView:
    return admin.show(admin_id(), renderId)


@app.post(
    "/admin/renders/<renderId>/cancel",
    tags=["admin"],
    **operation(
        "adminCancelRender",
        "Cancel any user's render (refunded, as the user's own cancel)",
        *BY_ID,
        403,
        409,
        503,
        description="Cancelled: refunded, slot freed, Render Cancelled published.",
    ),
)
def admin_cancel_render(renderId: ID) -> api.AdminRenderView:
    return admin.cancel(admin_id(), renderId)


@app.get(
    "/admin/users/<userId>/renders",
    tags=["admin"],
    **operation("adminListUserRenders", "One user's renders, newest first", *PARAMS, 403),
)
def admin_list_user_renders(
    userId: UserId,
    status: Annotated[RenderStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> api.AdminRenderPage:
    return admin.user_renders(admin_id(), userId, status=status, limit=limit, cursor=cursor)
