"""The resolver's routes and the ones API Gateway deploys come from two lists; they must agree, or
a route works locally and is never deployed (or is deployed to a function that answers 404)."""

from __future__ import annotations

from infra.constructs.api import PROTECTED_ROUTES, PUBLIC_ROUTES
from render_service.api.app import app


def test_every_resolver_route_is_deployed_and_every_deployed_route_resolves() -> None:
    paths = app.get_openapi_schema().paths or {}
    documented = {
        (path, method.upper())
        for path, item in paths.items()
        for method in item.model_dump(exclude_none=True)
        if method in {"get", "post", "put", "delete", "patch"}
    }
    undocumented = {("/openapi.json", "GET"), ("/docs", "GET")}  # served, kept out of the document
    assert documented == set(PROTECTED_ROUTES) | set(PUBLIC_ROUTES) - undocumented
