"""Fetching user-named sources safely (shared by every engine).

A timeline names its media as `s3://bucket/key` or `https://...`. Neither URL is
ever handed to ffmpeg: we download the bytes to a local file ourselves, bounded
in size and time, and only then let ffmpeg (restricted to local files) look at it.

- `s3://`: only buckets on the allow list (`Settings.source_buckets`); the caller
  checks that with `check_s3_allowed`, then `fetch_s3` downloads, pinned to the
  object's ETag so a worker reads the same bytes the planner probed.
- `https://` (SSRF guard): the rules of `urls` (the same ones `POST /renders` applies),
  checked again here because DNS may answer differently by now: the host is resolved
  once and every address must be public. The TCP connection goes to that vetted address
  while TLS SNI, certificate check and the Host header use the name, so a second
  DNS answer (rebinding) cannot redirect it. Redirects are followed by hand, at
  most 3, and every hop is checked again. The body is streamed and aborted past
  `max_bytes`. The whole fetch (every hop's connect, TLS handshake, request, headers
  and body) shares one wall-clock deadline: every socket operation is given at most
  what is left of it, and the body is read with `read1` (whatever has arrived), so a
  server dripping a byte at a time cannot hold a download open past the budget.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import shutil
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin

from botocore.exceptions import BotoCoreError, ClientError

from render_service import errors, urls
from render_service.urls import HostUnresolved, HttpsTarget, Resolver, UrlRefused, parse_https_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_REDIRECTS = 3
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 30.0
# The whole https fetch, all hops included. StartRender, which fetches and probes the
# sources, is a Lambda with a 5-minute timeout (infra/constructs/functions.py); the
# budget must end well before that so a slow source fails as SOURCE_UNAVAILABLE naming
# its field, not as a sandbox timeout reported as INTERNAL. 180 s leaves room for the
# probe, the upload to S3 and the planning that follow.
TOTAL_TIMEOUT_SECONDS = 180.0
BLOCK = 1 << 20


# --- parsing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


def parse_s3(src: str) -> S3Location | None:
    if not src.startswith("s3://"):
        return None
    bucket, _, key = src[5:].partition("/")
    return S3Location(bucket, key)


def check_s3_allowed(src: str, allowed: frozenset[str], *, where: str) -> S3Location:
    loc = parse_s3(src)
    if loc is None or not loc.bucket or not loc.key:
        raise errors.SourceNotAllowed(f"{where}: only s3:// and https:// sources are accepted")
    if loc.bucket not in allowed:
        raise errors.SourceNotAllowed(f"{where}: bucket '{loc.bucket}' is not allowed")
    return loc


def suffix_of(path: str) -> str:
    """A safe file suffix for a local copy ('.mp4'), or '.bin'; the demuxer is chosen by probing anyway."""
    name = path.rsplit("/", 1)[-1]
    match = re.search(r"(\.[A-Za-z0-9]{1,5})$", name)
    return match.group(1).lower() if match else ".bin"


# --- S3 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    size_bytes: int
    etag: str | None = None
    content_type: str | None = None


def link_or_copy(local: Path, target: Path) -> None:
    """A file fetched earlier in the same step, under another name: a hard link where the file
    system allows one (no bytes copied), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(local, target)
    except OSError:
        shutil.copyfile(local, target)


def fetch_s3(
    s3: S3Client,
    bucket: str,
    key: str,
    dest: Path,
    *,
    max_bytes: int,
    where: str,
    etag: str | None = None,
) -> Fetched:
    """Download one object, refusing it past `max_bytes`; with `etag`, only that version."""
    kwargs = {"Bucket": bucket, "Key": key}
    if etag:
        kwargs["IfMatch"] = etag
    try:
        obj = s3.get_object(**kwargs)  # type: ignore[arg-type]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise errors.SourceUnavailable(f"{where}: s3://{bucket}/{key} does not exist") from None
        if code in ("PreconditionFailed", "412"):
            raise errors.SourceUnavailable(f"{where}: s3://{bucket}/{key} changed during the render") from None
        if code in ("AccessDenied", "403", "NoSuchBucket"):
            raise errors.SourceUnavailable(f"{where}: s3://{bucket}/{key} cannot be read ({code})") from None
        raise
    length = obj.get("ContentLength", 0)
    if length > max_bytes:
        obj["Body"].close()
        raise errors.SourceTooLarge(f"{where}: {length} bytes; at most {max_bytes}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with dest.open("wb") as out:
            for block in obj["Body"].iter_chunks(BLOCK):
                size += len(block)
                if size > max_bytes:
                    raise errors.SourceTooLarge(f"{where}: more than {max_bytes} bytes")
                out.write(block)
    except (BotoCoreError, OSError) as exc:
        raise errors.SourceTemporarilyUnavailable(f"{where}: download interrupted ({type(exc).__name__})") from None
    finally:
        obj["Body"].close()
    return Fetched(size_bytes=size, etag=obj.get("ETag"), content_type=obj.get("ContentType"))


# --- HTTPS -----------------------------------------------------------------------------


def check_https_url(url: str, *, where: str) -> HttpsTarget:
    """Refuse everything but a plain https URL to a DNS name or a public IP literal (`urls`' rules)."""
    try:
        return parse_https_url(url)
    except UrlRefused as refused:
        raise errors.SourceNotAllowed(f"{where}: {refused.reason}") from None


def resolve_public(host: str, port: int, *, where: str, resolver: Resolver = socket.getaddrinfo) -> str:
    """Resolve once, now, right before connecting; every answer must be public. Returns the address to use."""
    try:
        return urls.resolve_public(host, port, resolver=resolver)
    except UrlRefused as refused:
        raise errors.SourceNotAllowed(f"{where}: {refused.reason}") from None
    except HostUnresolved as unresolved:
        raise errors.SourceUnavailable(f"{where}: {unresolved}") from None


class Response(Protocol):
    status: int

    def getheader(self, name: str) -> str | None: ...

    def read(self, amt: int | None = None) -> bytes: ...

    def read1(self, n: int = -1) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[HttpsTarget, str, float], Response]
"""(target, vetted address, deadline on `time.monotonic()`'s clock) -> the response, headers read."""
HttpsFetcher = Callable[..., "Fetched"]
"""`fetch_https`'s shape (url, dest, *, max_bytes, where) -> Fetched; injectable in tests."""


def _time_left(deadline: float, cap: float) -> float:
    """The timeout for the next socket operation: `cap`, cut to what is left before `deadline`."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the fetch's time budget is spent")
    return min(cap, left)


class _DeadlineSocket:
    """The TLS socket as http.client sees it, re-armed before every send and receive.

    A plain socket timeout bounds each call, not their sum; here each call gets at most
    `READ_TIMEOUT_SECONDS` and never more than what is left before the deadline, so
    neither the headers nor the body can be dripped past it.
    """

    def __init__(self, sock: ssl.SSLSocket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._files = 0
        self._closed = False

    def _arm(self) -> None:
        self._sock.settimeout(_time_left(self._deadline, READ_TIMEOUT_SECONDS))

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._arm()
        self._sock.sendall(data, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self._arm()
        return self._sock.recv_into(buffer, nbytes, flags)

    def fileno(self) -> int:
        return self._sock.fileno()

    def makefile(self, mode: str = "r", *_: Any, **__: Any) -> io.BufferedReader:
        # http.client only asks for "rb" (the response); the reader calls back into recv_into.
        if mode != "rb":
            raise ValueError(f"unsupported mode {mode!r}")
        self._files += 1
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]

    def _decref_socketios(self) -> None:
        # Called by SocketIO.close(); as for a real socket, the last reader closes a closed socket.
        self._files = max(0, self._files - 1)
        if self._closed:
            self.close()

    def close(self) -> None:
        self._closed = True
        if self._files == 0:
            self._sock.close()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed, already vetted IP; SNI, certificate and Host still use the name."""

    def __init__(self, target: HttpsTarget, address: str, context: ssl.SSLContext, deadline: float) -> None:
        super().__init__(target.host, target.port, timeout=CONNECT_TIMEOUT_SECONDS, context=context)
        self._address = address
        self._ctx = context
        self._deadline = deadline

    def connect(self) -> None:
        timeout = _time_left(self._deadline, CONNECT_TIMEOUT_SECONDS)
        sock = socket.create_connection((self._address, self.port), timeout=timeout)
        try:
            # The TLS handshake, however many reads it takes, is bounded by this one timeout.
            sock.settimeout(_time_left(self._deadline, READ_TIMEOUT_SECONDS))
            tls = self._ctx.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(tls, self._deadline)


def pinned_opener(context: ssl.SSLContext | None = None) -> Opener:
    ctx = context or ssl.create_default_context()

    def open_(target: HttpsTarget, address: str, deadline: float) -> Response:
        conn = _PinnedHTTPSConnection(target, address, ctx, deadline)
        try:
            conn.request("GET", target.path, headers={"User-Agent": "render-service/1", "Accept-Encoding": "identity"})
            return conn.getresponse()
        except BaseException:
            conn.close()  # no response owns the socket yet
            raise

    return open_


def fetch_https(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    where: str,
    resolver: Resolver = socket.getaddrinfo,
    opener: Opener | None = None,
    max_redirects: int = MAX_REDIRECTS,
    deadline: float | None = None,
) -> Fetched:
    """Download a public https URL to `dest` under the SSRF rules above.

    `deadline` (a `time.monotonic()` value) shortens the budget when the caller has several
    sources to fetch within one Lambda invocation.
    """
    open_ = opener or pinned_opener()
    deadline = min(deadline or float("inf"), time.monotonic() + TOTAL_TIMEOUT_SECONDS)
    for _hop in range(max_redirects + 1):
        target = check_https_url(url, where=where)
        if time.monotonic() >= deadline:
            raise _too_slow(where, target.host)
        address = resolve_public(target.host, target.port, where=where, resolver=resolver)
        try:
            response = open_(target, address, deadline)
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise _too_slow(where, target.host) from None
            raise errors.SourceTemporarilyUnavailable(
                f"{where}: {target.host} could not be fetched ({type(exc).__name__})"
            ) from None
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise errors.SourceUnavailable(f"{where}: redirect without a Location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                # A server error or a throttle may pass; a 404 or 403 will not.
                transient = response.status >= 500 or response.status in (408, 429)
                failure = errors.SourceTemporarilyUnavailable if transient else errors.SourceUnavailable
                raise failure(f"{where}: {target.host} answered HTTP {response.status}")
            return _stream(response, dest, max_bytes=max_bytes, where=where, host=target.host, deadline=deadline)
        finally:
            response.close()
    raise errors.SourceUnavailable(f"{where}: more than {max_redirects} redirects")


def _too_slow(where: str, host: str) -> errors.SourceUnavailable:
    return errors.SourceTemporarilyUnavailable(f"{where}: {host} did not finish within {TOTAL_TIMEOUT_SECONDS:g} s")


def _stream(response: Response, dest: Path, *, max_bytes: int, where: str, host: str, deadline: float) -> Fetched:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise errors.SourceTooLarge(f"{where}: {declared} bytes; at most {max_bytes}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with dest.open("wb") as out:
            # read1: whatever has arrived (up to BLOCK), not a wait for a full block.
            while block := response.read1(BLOCK):
                size += len(block)
                if size > max_bytes:
                    raise errors.SourceTooLarge(f"{where}: more than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise _too_slow(where, host)
                out.write(block)
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline:
            raise _too_slow(where, host) from None
        raise errors.SourceTemporarilyUnavailable(f"{where}: download interrupted ({type(exc).__name__})") from None
    return Fetched(size_bytes=size, content_type=response.getheader("Content-Type"))
