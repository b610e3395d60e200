"""A small typed client for the public HTTP API, used by the `render` CLI.

Every failure becomes one `ApiError` with a line a person can read: the API's own error shape
(`{"error": {"code", "message"}}`), a gateway's bare `{"message"}`, or a network problem.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests

LOCAL_API = "http://127.0.0.1:8000"
DEFAULT_LOCAL_USER = "demo"
TERMINAL = frozenset({"complete", "failed", "cancelled"})
# What POST /uploads accepts (models/api.py UploadContentType), by file extension.
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
}
_CHUNK = 256 * 1024
Progress = Callable[[int], None]


class ApiError(Exception):
    """A refused or failed call, with the HTTP status (0 when the API was not reached)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "", retry_after: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.retry_after = message, status, code, retry_after

    def __str__(self) -> str:
        prefix = (
            f"{self.status} {self.code}: " if self.status and self.code else (f"{self.status}: " if self.status else "")
        )
        suffix = f" (retry after {self.retry_after} s)" if self.retry_after else ""
        return f"{prefix}{self.message}{suffix}"


def content_type_for(path: Path) -> str:
    try:
        return CONTENT_TYPES[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(CONTENT_TYPES))
        raise ApiError(f"{path.name}: unsupported file type {path.suffix or '(none)'}; use one of {known}") from None


def local_token(user: str) -> str:
    """The local gateway's stand-in for a Cognito ID token."""
    return f"local:{user}"


def settings_from_env() -> tuple[str, str | None]:
    return os.environ.get("RENDER_API_URL", LOCAL_API), os.environ.get("RENDER_TOKEN")


class _CountingReader:
    """A file body whose reads report progress. `__len__` makes requests send Content-Length
    (S3 refuses a chunked PUT to a presigned URL, and the URL is signed for that length)."""

    def __init__(self, fh: BinaryIO, size: int, progress: Progress | None) -> None:
        self._fh, self._size, self._progress = fh, size, progress

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n if n and n > 0 else _CHUNK)
        if data and self._progress:
            self._progress(len(data))
        return data


@dataclass
class Upload:
    src: str
    size: int


class RenderApi:
    def __init__(
        self, base_url: str, token: str | None, *, timeout: float = 30, session: requests.Session | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # --- transport -------------------------------------------------------------------

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:  # fmt: skip
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(
                method, url, json=json, params=params, headers=headers, timeout=self.timeout
            )
        except requests.ConnectionError:
            raise ApiError(
                f"cannot reach the API at {self.base_url} (is `make serve` running, or is --api right?)"
            ) from None
        except requests.Timeout:
            raise ApiError(f"the API at {self.base_url} did not answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise ApiError(f"request to {url} failed: {exc}") from None
        if response.status_code >= 400:
            raise error_from(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"{response.status_code}: the API answered with something that is not JSON") from None

    # --- renders ---------------------------------------------------------------------

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return dict(self.call("POST", "/renders", json=body, headers=headers))

    def estimate(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "/renders/estimate", json=body))

    def get(self, render_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/renders/{_id(render_id)}"))

    def list(self, *, subject: tuple[str, str] | None = None, status: str | None = None,
             limit: int = 20, cursor: str | None = None) -> dict[str, Any]:  # fmt: skip
        params: dict[str, Any] = {"limit": limit}
        if subject:
            params["subjectType"], params["subjectId"] = subject
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return dict(self.call("GET", "/renders", params=params))

    def history(self, *, subject: tuple[str, str] | None = None, status: str | None = None,
                limit: int = 20) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Up to `limit` renders, newest first, following the cursor across pages."""
        cursor: str | None = None
        left = limit
        while left > 0:
            page = self.list(subject=subject, status=status, limit=min(left, 100), cursor=cursor)
            yield from page["renders"]
            left -= len(page["renders"])
            cursor = page.get("nextCursor")
            if not cursor or not page["renders"]:
                return

    def cancel(self, render_id: str) -> dict[str, Any]:
        return dict(self.call("POST", f"/renders/{_id(render_id)}/cancel"))

    def delete(self, render_id: str) -> dict[str, Any]:
        return dict(self.call("DELETE", f"/renders/{_id(render_id)}"))

    def download_url(self, render_id: str, expires_in: int = 3600) -> dict[str, Any]:
        return dict(self.call("POST", f"/renders/{_id(render_id)}/download-url", json={"expiresInSeconds": expires_in}))

    def quota(self) -> dict[str, Any]:
        return dict(self.call("GET", "/quota"))

    # --- files -----------------------------------------------------------------------

    def upload(self, path: Path, progress: Progress | None = None) -> Upload:
        """Asks for a presigned PUT, then sends the file to it (straight to S3, not through the API)."""
        if not path.is_file():
            raise ApiError(f"{path}: no such file")
        size = path.stat().st_size
        if size == 0:
            raise ApiError(f"{path}: the file is empty")
        ticket = self.call(
            "POST", "/uploads", json={"filename": path.name, "contentType": content_type_for(path), "sizeBytes": size}
        )
        with path.open("rb") as fh:
            try:
                put = requests.request(
                    ticket.get("method", "PUT"),
                    ticket["url"],
                    data=_CountingReader(fh, size, progress),
                    headers=ticket.get("headers") or {},
                    timeout=max(self.timeout, 300),
                )
            except requests.RequestException as exc:
                raise ApiError(f"{path.name}: upload failed: {exc.__class__.__name__}") from None
        if put.status_code >= 300:
            raise ApiError(f"{path.name}: the storage refused the upload ({put.status_code} {_s3_error(put.text)})")
        return Upload(src=str(ticket["src"]), size=size)

    def download(self, url: str, out: Path, progress: Callable[[int, int | None], None] | None = None) -> int:
        """Streams a finished render to `out` (through a partial file, so a failure leaves nothing half-written)."""
        partial = out.with_name(out.name + ".part")
        try:
            with requests.get(url, stream=True, timeout=max(self.timeout, 300)) as response:
                if response.status_code >= 300:
                    raise ApiError(f"download failed: {response.status_code} {_s3_error(response.text)}")
                total = int(response.headers.get("Content-Length") or 0) or None
                written = 0
                with partial.open("wb") as fh:
                    for chunk in response.iter_content(_CHUNK):
                        fh.write(chunk)
                        written += len(chunk)
                        if progress:
                            progress(written, total)
            partial.replace(out)
        except requests.RequestException as exc:
            raise ApiError(f"download failed: {exc.__class__.__name__}") from None
        finally:
            partial.unlink(missing_ok=True)
        return written


def error_from(response: requests.Response) -> ApiError:
    retry_after = response.headers.get("Retry-After")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return ApiError(
            str(error.get("message") or "request refused"),
            status=response.status_code,
            code=str(error.get("code") or ""),
            retry_after=retry_after,
        )
    if isinstance(body, dict) and body.get("message"):
        # API Gateway's own refusals (authorizer, throttling) carry only a message.
        return ApiError(str(body["message"]), status=response.status_code, retry_after=retry_after)
    return ApiError(response.reason or "request failed", status=response.status_code, retry_after=retry_after)


def _id(render_id: str) -> str:
    if not render_id or not all(c.isalnum() or c == "-" for c in render_id) or len(render_id) > 80:
        raise ApiError(f"{render_id!r}: not a render id (letters, digits and dashes)")
    return render_id


def _s3_error(text: str) -> str:
    """S3 answers in XML; its <Code> is the readable part."""
    start, end = text.find("<Code>"), text.find("</Code>")
    return text[start + 6 : end] if 0 <= start < end else text[:120].strip()
