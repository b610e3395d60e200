"""The API document, as clients generate code from it: security, operation ids, errors, no dangling $ref."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from render_service.api.app import STATUS_BY_ERROR, _document
from render_service.api.openapi import ERROR_STATUSES

# What each operation answers (429 everywhere: API Gateway's stage throttling, deployed). A route that
# starts answering another status must say so in its `operation(...)`, and schemathesis
# (tests/e2e/test_contract.py) checks that it does.
ANSWERS = {
    ("get", "/health"): {200, 429},
    ("post", "/renders"): {202, 400, 401, 402, 409, 413, 422, 429, 503},
    ("post", "/renders/estimate"): {200, 400, 401, 413, 422, 429},
    ("get", "/renders"): {200, 401, 422, 429},
    ("post", "/renders/cancel"): {200, 400, 401, 413, 422, 429, 503},
    ("get", "/renders/{renderId}"): {200, 401, 404, 422, 429},
    ("delete", "/renders/{renderId}"): {200, 401, 404, 409, 410, 422, 429},
    ("post", "/renders/{renderId}/cancel"): {200, 401, 404, 409, 422, 429, 503},
    ("post", "/renders/{renderId}/download-url"): {200, 400, 401, 404, 409, 410, 413, 422, 429},
    ("get", "/quota"): {200, 401, 429},
    ("post", "/uploads"): {200, 400, 401, 413, 422, 429},
    # Operators: anyone signed in outside the admins group gets a 403.
    ("get", "/admin/renders"): {200, 401, 403, 422, 429},
    ("get", "/admin/renders/{renderId}"): {200, 401, 403, 404, 422, 429},
    ("post", "/admin/renders/{renderId}/cancel"): {200, 401, 403, 404, 409, 422, 429, 503},
    ("get", "/admin/users/{userId}/renders"): {200, 401, 403, 422, 429},
}
PUBLIC = {("get", "/health")}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(_document(""))  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method, path, op


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_the_bearer_scheme_guards_every_route_but_health(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "local:<userId>" in scheme["description"]
    for method, path, op in operations(doc):
        if (method, path) in PUBLIC:
            assert "security" not in op, path
            assert "401" not in op["responses"], path
        else:
            assert op["security"] == [{"bearerAuth": []}], (method, path)
            assert "401" in op["responses"], (method, path)


def test_every_operation_has_a_unique_id_and_a_written_summary(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)) == len(ANSWERS)
    for method, path, op in operations(doc):
        assert op["operationId"].isidentifier(), op["operationId"]
        assert "_" not in op["operationId"], op["operationId"]  # not Powertools' generated one
        # Powertools' fallback summary is "METHOD /path"; ours say what the operation does.
        assert op["summary"], (method, path)
        assert op["summary"] != f"{method.upper()} {path}", (method, path)


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    found = list(refs(doc))
    assert found
    for ref in found:
        assert ref.startswith("#/"), ref
        node: Any = doc
        for part in ref[2:].split("/"):
            assert isinstance(node, dict), f"dangling {ref}"
            assert part in node, f"dangling {ref}"
            node = node[part]
    # Powertools' own validation shape is never sent, so it is not in the document.
    assert not {"HTTPValidationError", "ValidationError"} & set(doc["components"]["schemas"])


def test_each_operation_documents_what_it_answers_in_the_error_shape(doc: dict[str, Any]) -> None:
    documented = {(method, path): {int(s) for s in op["responses"]} for method, path, op in operations(doc)}
    assert documented == ANSWERS
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"
                }, (method, path, status)
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    detail = doc["components"]["schemas"][error["properties"]["error"]["$ref"].rsplit("/", 1)[1]]
    assert set(detail["required"]) == {"code", "message"}


def test_every_status_an_error_maps_to_is_documented() -> None:
    assert {int(status) for status in STATUS_BY_ERROR.values()} <= set(ERROR_STATUSES)
    assert {400, 401, 402, 404, 409, 410, 413, 422, 429, 503} <= set(ERROR_STATUSES)


def test_retry_after_comes_with_429_and_503(doc: dict[str, Any]) -> None:
    for _, _, op in operations(doc):
        for status, response in op["responses"].items():
            if status in ("429", "503"):
                header = response["headers"]["Retry-After"]
                assert header["schema"]["type"] == "integer"
                assert header["required"] is (status == "429")


def test_submit_documents_the_idempotency_key_and_location(doc: dict[str, Any]) -> None:
    submit = doc["paths"]["/renders"]["post"]
    (key,) = [p for p in submit["parameters"] if p["in"] == "header"]
    assert key["name"].lower() == "idempotency-key"
    assert key["required"] is False
    assert {"minLength": 1, "maxLength": 128}.items() <= key["schema"]["anyOf"][0].items()
    accepted = submit["responses"]["202"]
    assert accepted["headers"]["Location"]["required"] is True
    assert accepted["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RenderCreated"}


@pytest.mark.parametrize(("base_path", "server"), [("", "/"), ("/v1", "/v1"), ("/renders-api", "/renders-api")])
def test_the_server_is_the_path_the_document_was_reached_through(base_path: str, server: str) -> None:
    assert json.loads(_document(base_path))["servers"] == [{"url": server}]


def test_links_lead_to_operations_that_exist(doc: dict[str, Any]) -> None:
    ids = {op["operationId"]: op for _, _, op in operations(doc)}
    created = doc["paths"]["/renders"]["post"]["responses"]["202"]["links"]
    assert created
    for link in created.values():
        target = ids[link["operationId"]]
        assert set(link["parameters"]) == {p["name"] for p in target["parameters"] if p["in"] == "path"}
