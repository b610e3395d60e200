"""The API document's shared parts: the bearer scheme, the one error shape for every status, and
the metadata each route passes, so that a new route is documented truthfully by one call:

    @app.post("/admin/credits", **operation("grantCredits", "Grant credits", *BODY, 404))

Clients are generated from `/openapi.json`, and `tests/e2e/test_contract.py` runs schemathesis
against the local stack to keep every documented response true.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, SecurityScheme

from render_service.models import api

BEARER = "bearerAuth"
SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    BEARER: HTTPBearer(
        bearerFormat="JWT",
        description=(
            "Deployed: the Cognito user pool's ID token (the user is its `sub`). "
            "On the local stack: `local:<userId>`, e.g. `local:alice` (Swagger UI's Authorize takes the same)."
        ),
    )
}
PROTECTED: list[dict[str, list[str]]] = [{BEARER: []}]

RETRY_AFTER = "Retry-After"
_RETRY_AFTER_HEADER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 0}}

# Each status the API answers with an error, with the codes it carries (see the README's table).
ERROR_STATUSES: dict[int, str] = {
    400: "`INVALID_JSON`: the body is not JSON (or nests too deep, or holds numbers too long to parse).",
    401: "`UNAUTHORIZED`: no or invalid `Authorization`.",
    403: "`FORBIDDEN`: the caller is not in the Cognito group `admins` (the /admin routes).",
    402: "`INSUFFICIENT_CREDITS`: the balance does not cover the cost (`details: {cost, balance}`).",
    404: "`NOT_FOUND`: unknown id, or another user's render.",
    409: "`RENDER_ALREADY_FINISHED`, `RENDER_NOT_COMPLETE`, or `IDEMPOTENCY_IN_PROGRESS` (with `Retry-After`).",
    410: "`OUTPUT_GONE`: the output expired or was deleted.",
    413: "`PAYLOAD_TOO_LARGE`: the body is over 256 KiB.",
    422: (
        "`VALIDATION_ERROR` (a field breaks a rule; `details` lists each as `{field, rule, type}`), "
        "`INVALID_REQUEST` (a policy refusal naming the field), "
        "`IDEMPOTENCY_CONFLICT` (a key reused with another body)."
    ),
    429: (
        "`RATE_LIMITED` (`details: {limit, seconds, resetAt}` name the full window, or none when it is the "
        "API's own request throttling, deployed, on any route) or `TOO_MANY_QUEUED`."
    ),
    503: (
        "`SUBMISSION_FAILED` (nothing was charged) or `BUSY` (too many concurrent writes for the account), "
        "both with `Retry-After`; `ENGINE_NOT_CONFIGURED`."
    ),
}
# `Retry-After` is on every 429; on a 409 or 503 only where a retry can succeed.
_RETRY_AFTER_REQUIRED = {429: True, 409: False, 503: False}

# The errors that come with a kind of route; a route adds its own (402, 409, 410, 429, 503).
BODY = (400, 413, 422)  # a JSON body: not JSON, too large, invalid
PARAMS = (422,)  # path or query parameters that break a rule
BY_ID = (404, 422)  # /renders/{renderId}...: unknown (or another user's) id, malformed id


def error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": f"{HTTPStatus(status).phrase}. {ERROR_STATUSES[status]}",
        "content": {"application/json": {"model": api.ErrorResponse}},
    }
    if status in _RETRY_AFTER_REQUIRED:
        response["headers"] = {RETRY_AFTER: {**_RETRY_AFTER_HEADER, "required": _RETRY_AFTER_REQUIRED[status]}}
    return response


def operation(
    operation_id: str,
    summary: str,
    *errors: int,
    status: int = 200,
    description: str | None = None,
    headers: dict[str, dict[str, Any]] | None = None,
    links: dict[str, dict[str, Any]] | None = None,
    public: bool = False,
) -> dict[str, Any]:
    """The resolver's route arguments for one operation: its id, summary, the bearer scheme (unless
    `public`), the success response (its schema comes from the route's return type) and one error
    response per status, all of them the error shape. Every protected route can answer 401, and
    every route 429: deployed, API Gateway throttles the stage (infra/constructs/api.py)."""
    success: dict[str, Any] = {"description": description or HTTPStatus(status).phrase}
    if headers:
        success["headers"] = headers
    if links:
        success["links"] = links
    statuses = sorted({*errors, 429} | (set() if public else {401}))
    return {
        "operation_id": operation_id,
        "summary": summary,
        "security": None if public else PROTECTED,
        "responses": {status: success, **{code: error_response(code) for code in statuses}},
    }


def links_to_render(operation_ids: tuple[str, ...], render_id: str = "$response.body#/renderId") -> dict[str, Any]:
    """OpenAPI links from a response that names a render to the operations on it."""
    return {op: {"operationId": op, "parameters": {"renderId": render_id}} for op in operation_ids}


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Removes what the resolver adds on its own and the API never sends: a 422 in Powertools'
    validation shape on every route (where a route can answer 422, `operation` documents ours),
    and then every schema no operation reaches."""
    validation_ref = {"$ref": "#/components/schemas/HTTPValidationError"}
    for item in document.get("paths", {}).values():
        for op in item.values():
            responses = op.get("responses", {})
            for status, response in list(responses.items()):
                if response.get("content", {}).get("application/json", {}).get("schema") == validation_ref:
                    del responses[status]
            op["responses"] = dict(sorted(responses.items()))
    schemas = document.get("components", {}).get("schemas", {})
    reached: set[str] = set()
    pending = _schema_refs(document.get("paths", {}))
    while pending:
        name = pending.pop()
        if name not in reached and name in schemas:
            reached.add(name)
            pending |= _schema_refs(schemas[name])
    for name in set(schemas) - reached:
        del schemas[name]
    return document


def _schema_refs(node: Any) -> set[str]:
    """The component schemas a part of the document refers to directly."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        own = {ref.removeprefix(_SCHEMAS)} if isinstance(ref, str) and ref.startswith(_SCHEMAS) else set()
        return own.union(*(_schema_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_schema_refs(value) for value in node))
    return set()


_SCHEMAS = "#/components/schemas/"
