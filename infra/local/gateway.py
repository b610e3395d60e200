"""API Gateway (REST, Lambda proxy) on 127.0.0.1: real HTTP in, the same API handler behind it.

Local auth stands in for the Cognito authorizer: `Authorization: Bearer local:<userId>` becomes
the claims `sub` and `email` (`<userId>@example.test`), and a user named in the gateway's admin
users (`ADMIN_USERS` for `make serve`) is put in the `admins` group (`cognito:groups`), as Cognito
would for a member. Anything else carries no claims, and the handler answers 401 as it does deployed.
Like API Gateway it takes a burst of connections (a deep listen backlog, a thread each), reads
`Content-Length` and chunked bodies, and answers what it cannot pass on in the API's error shape.
Given a `static_dir`, it also serves the web app's files (GET and HEAD of a path that is one of
them, `/` being `index.html`), as a static host would beside the API; every other request goes on
to the API.
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from infra.local.cloud import LambdaContext, forget_metrics
from render_service.models.api import ADMIN_GROUP, ErrorDetail, ErrorResponse

log = logging.getLogger("render_service.local")

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
# http.server's default backlog is 5: a burst of clients got connection resets before any
# handler ran. The kernel caps this at net.core.somaxconn.
LISTEN_BACKLOG = 1024
_MAX_CHUNK_LINE = 1024
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
# The only files served, by suffix: nothing else under the folder (a stray .py, a dotfile) leaks.
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def static_file(root: Path, url_path: str) -> Path | None:
    """The web app's file for a request path, or None when the path is not one (the API answers it)."""
    relative = unquote(urlsplit(url_path).path).lstrip("/") or "index.html"
    if "\x00" in relative or any(part.startswith(".") for part in relative.split("/")):
        return None
    base = root.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or candidate.suffix not in STATIC_TYPES or not candidate.is_file():
        return None
    return candidate


class _Refused(Exception):
    """A request the gateway answers itself, before the API sees it."""

    def __init__(self, status: HTTPStatus, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def claims_from(authorization: str | None, admin_users: frozenset[str] = frozenset()) -> dict[str, str] | None:
    if not authorization or not authorization.startswith("Bearer local:"):
        return None
    user = authorization.removeprefix("Bearer local:").strip()
    if not user or len(user) > 128 or not all(c.isalnum() or c in "-_.@" for c in user):
        return None
    # Every local user has an address, as a Cognito user with a verified email does.
    claims = {"sub": user, "cognito:username": user, "email": f"{user}@example.test"}
    if user in admin_users:
        claims["cognito:groups"] = ADMIN_GROUP  # a string, as API Gateway's Cognito authorizer passes it
    return claims


def admin_users_from(value: str | None) -> frozenset[str]:
    """`ADMIN_USERS`: user names separated by commas or spaces."""
    return frozenset(name for name in (value or "").replace(",", " ").split() if name)


def to_event(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    admin_users: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    claims = claims_from(headers.get("Authorization") or headers.get("authorization"), admin_users)
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
            # Served at the root, as behind a custom domain: no stage in front of the routes.
            "path": url.path,
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
        try:
            body = self._read_body()
        except _Refused as refused:
            self._refuse(refused)
            return
        if self.command in ("GET", "HEAD") and self.server.static_dir is not None:
            found = static_file(self.server.static_dir, self.path)
            if found is not None:
                self._serve_file(found)
                return
        event = to_event(
            self.command, self.path, dict(self.headers.items()), body, self.client_address[0], self.server.admin_users
        )
        context = LambdaContext("Api", "arn:aws:lambda:us-east-1:123456789012:function:Api", 512, 29)
        try:
            # One request at a time, as in one Lambda execution environment: the Powertools
            # resolver keeps the request it is answering (current_event, context) on itself, so two
            # threads in it at once would answer with each other's route and claims.
            with self.server.handler_lock:
                response = self.server.api_handler(event, context)
        except Exception:
            log.exception("the API handler raised")
            self._reply(
                HTTPStatus.BAD_GATEWAY, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
            )
            return
        finally:
            forget_metrics()
        payload = response.get("body") or ""
        raw = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._reply(int(response.get("statusCode", 200)), headers, raw)

    def _serve_file(self, path: Path) -> None:
        headers = {
            "Content-Type": STATIC_TYPES[path.suffix],
            # Served for development: an edited file shows on the next reload.
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        self._reply(HTTPStatus.OK, headers, path.read_bytes())

    def _read_body(self) -> bytes:
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding:
            if encoding != "chunked":
                raise _Refused(
                    HTTPStatus.NOT_IMPLEMENTED, "NOT_IMPLEMENTED", f"Transfer-Encoding: {encoding} is not supported"
                )
            return self._read_chunked()
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit():
            raise _Refused(HTTPStatus.BAD_REQUEST, "BAD_REQUEST", "Content-Length: must be a number of bytes")
        length = int(declared)
        if length > MAX_REQUEST_BYTES:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE", "body: too large")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        """RFC 9112 section 7.1: hex size lines (extensions ignored), data, CRLF; a zero size ends it."""
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Refused(HTTPStatus.BAD_REQUEST, "BAD_REQUEST", "body: malformed chunked encoding") from None
            if size < 0:
                raise _Refused(HTTPStatus.BAD_REQUEST, "BAD_REQUEST", "body: malformed chunked encoding")
            if size == 0:
                break
            total += size
            if total > MAX_REQUEST_BYTES:
                raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE", "body: too large")
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.readline(_MAX_CHUNK_LINE).strip():
                raise _Refused(HTTPStatus.BAD_REQUEST, "BAD_REQUEST", "body: malformed chunked encoding")
            parts.append(data)
        while self.rfile.readline(_MAX_CHUNK_LINE).strip():  # trailer fields, which we ignore
            pass
        return b"".join(parts)

    def _refuse(self, refused: _Refused) -> None:
        # The body may be unread (or unreadable): this connection cannot carry another request.
        self.close_connection = True
        error = ErrorResponse(error=ErrorDetail(code=refused.code, message=refused.message))
        headers = {"Content-Type": "application/json", **refused.headers}
        self._reply(refused.status, headers, error.model_dump_json().encode())

    def _unknown_method(self) -> None:
        self._refuse(
            _Refused(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                f"{self.command}: method not allowed",
                {"Allow": ", ".join(METHODS)},
            )
        )

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler looks up `do_<METHOD>` and answers a bare-HTML 501 when it is
        # missing; any other method gets a 405 in the API's error shape instead.
        if name.startswith("do_"):
            return self._unknown_method
        raise AttributeError(name)

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    api_handler: Handler
    handler_lock: threading.Lock
    static_dir: Path | None
    admin_users: frozenset[str]


class Gateway:
    def __init__(
        self,
        api_handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        static_dir: Path | None = None,
        admin_users: frozenset[str] = frozenset(),
    ) -> None:
        self._server = _Server((host, port), _RequestHandler)
        self._server.api_handler = api_handler
        self._server.handler_lock = threading.Lock()
        self._server.static_dir = static_dir
        self._server.admin_users = admin_users
        self._thread: threading.Thread | None = None

    @property
    def admin_users(self) -> frozenset[str]:
        return self._server.admin_users

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
