"""API Gateway (REST, Lambda proxy) on 127.0.0.1: real HTTP in, the same API handler behind it.

Local auth stands in for the Cognito authorizer: `Authorization: Bearer local:<userId>` becomes
the claim `sub`. Anything else carries no claims, and the handler answers 401 as it does deployed.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.local.cloud import LambdaContext

log = logging.getLogger("render_service.local")

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def claims_from(authorization: str | None) -> dict[str, str] | None:
    if not authorization or not authorization.startswith("Bearer local:"):
        return None
    user = authorization.removeprefix("Bearer local:").strip()
    if not user or len(user) > 128 or not all(c.isalnum() or c in "-_.@" for c in user):
        return None
    return {"sub": user, "cognito:username": user}


def to_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    claims = claims_from(headers.get("Authorization") or headers.get("authorization"))
    text = body.decode("utf-8", errors="replace") if body else None
    return {
        "resource": url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "body": text,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": url.path,
            "httpMethod": method,
            "path": f"/local{url.path}",
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "accountId": "123456789012",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "authorizer": {"claims": claims} if claims else None,
        },
    }


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._reply(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"Content-Type": "application/json"},
                json.dumps({"error": {"code": "PAYLOAD_TOO_LARGE", "message": "body: too large"}}).encode(),
            )
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        event = to_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        context = LambdaContext("Api", "arn:aws:lambda:us-east-1:123456789012:function:Api", 512, 29)
        try:
            response = self.server.api_handler(event, context)
        except Exception:
            log.exception("the API handler raised")
            self._reply(
                HTTPStatus.BAD_GATEWAY, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
            )
            return
        payload = response.get("body") or ""
        raw = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._reply(int(response.get("statusCode", 200)), headers, raw)

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api_handler: Handler


class Gateway:
    def __init__(self, api_handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _RequestHandler)
        self._server.api_handler = api_handler
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Gateway:
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
