"""The SSRF guard: every vector is refused before a connection; redirects are checked hop by hop.

No request leaves the machine: resolvers and openers are injected, and the real TLS
connections go to servers on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from render_service import errors, sources
from render_service.sources import (
    HttpsTarget,
    check_s3_allowed,
    fetch_https,
    pinned_opener,
    suffix_of,
)

PUBLIC_IP = "93.184.215.14"


def public_resolver(host: str, port: int, **_: Any) -> list[Any]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port))]


def resolver_to(*ips: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    return resolve


@dataclass
class FakeResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def getheader(self, name: str) -> str | None:
        return self.headers.get(name)

    def read(self, amt: int | None = None) -> bytes:
        data, self.body = self.body[: amt or len(self.body)], self.body[amt or len(self.body) :]
        return data

    def read1(self, n: int = -1) -> bytes:
        return self.read(n if n > 0 else None)

    def close(self) -> None:
        pass


@dataclass
class FakeOpener:
    """Serves canned responses by URL and records where it was asked to connect."""

    routes: dict[str, FakeResponse]
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, target: HttpsTarget, address: str, deadline: float) -> FakeResponse:
        self.calls.append((target.url, address))
        return self.routes[target.url]


def refuse_any_connection(target: HttpsTarget, address: str, deadline: float) -> FakeResponse:
    raise AssertionError(f"connected to {target.url} at {address}")


SSRF_URLS = [
    "https://127.0.0.1/a.mp4",
    "https://localhost/a.mp4",
    "https://sub.localhost/a.mp4",
    "https://localhost./a.mp4",
    "https://metadata/computeMetadata/v1/",  # single-label: internal search domains only
    "https://127%2E0%2E0%2E1/a.mp4",
    "https://10.0.0.8/a.mp4",
    "https://172.16.5.4/a.mp4",
    "https://172.31.255.255/a.mp4",
    "https://192.168.1.1/a.mp4",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/a.mp4",
    "https://0.0.0.0/a.mp4",
    "https://224.0.0.1/a.mp4",
    "https://240.0.0.1/a.mp4",
    "https://[::1]/a.mp4",
    "https://[::]/a.mp4",
    "https://[::ffff:127.0.0.1]/a.mp4",
    "https://[::ffff:169.254.169.254]/a.mp4",
    "https://[fd00:ec2::254]/a.mp4",
    "https://[fe80::1]/a.mp4",
    "https://[2002:7f00:1::]/a.mp4",  # 6to4 wrapping 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/a.mp4",  # NAT64 wrapping 169.254.169.254
    "https://2130706433/a.mp4",  # decimal 127.0.0.1
    "https://0x7f000001/a.mp4",  # hex
    "https://0177.0.0.1/a.mp4",  # octal
    "https://127.1/a.mp4",  # short form
    "https://good.example@127.0.0.1/a.mp4",  # userinfo trick
    "https://user:pass@media.example/a.mp4",
    "https://media.example:8443/a.mp4",
    "http://media.example/a.mp4",
    "file:///etc/passwd",
    "ftp://media.example/a.mp4",
    "gopher://127.0.0.1:6379/_INFO",
    "data:video/mp4;base64,AAAA",
    "s3://bucket/key",
]


@pytest.mark.parametrize("url", SSRF_URLS)
def test_ssrf_vectors_are_refused_before_any_connection(url: str, tmp_path: Path) -> None:
    with pytest.raises(errors.SourceNotAllowed, match=r"^scenes\[0\]\.src: "):
        fetch_https(
            url,
            tmp_path / "x",
            max_bytes=1000,
            where="scenes[0].src",
            resolver=public_resolver,
            opener=refuse_any_connection,
        )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "answers",
    [("10.0.0.1",), ("127.0.0.1",), ("169.254.169.254",), ("::1",), ("fd00::1",), (PUBLIC_IP, "192.168.0.10")],
)
def test_names_resolving_to_private_addresses_are_refused(answers: tuple[str, ...], tmp_path: Path) -> None:
    with pytest.raises(errors.SourceNotAllowed, match="non-public"):
        fetch_https(
            "https://media.example/a.mp4",
            tmp_path / "x",
            max_bytes=1000,
            where="s",
            resolver=resolver_to(*answers),
            opener=refuse_any_connection,
        )


def test_a_public_name_is_fetched_from_the_vetted_address(tmp_path: Path) -> None:
    opener = FakeOpener({"https://media.example/a.mp4": FakeResponse(200, {"Content-Length": "5"}, b"hello")})
    got = fetch_https(
        "https://media.example/a.mp4", tmp_path / "x", max_bytes=10, where="s", resolver=public_resolver, opener=opener
    )

    assert (tmp_path / "x").read_bytes() == b"hello"
    assert got.size_bytes == 5
    assert opener.calls == [("https://media.example/a.mp4", PUBLIC_IP)]


def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    opener = FakeOpener(
        {"https://media.example/a.mp4": FakeResponse(302, {"Location": "https://169.254.169.254/latest/"})}
    )
    with pytest.raises(errors.SourceNotAllowed, match="not public"):
        fetch_https(
            "https://media.example/a.mp4",
            tmp_path / "x",
            max_bytes=10,
            where="s",
            resolver=public_resolver,
            opener=opener,
        )
    assert opener.calls == [("https://media.example/a.mp4", PUBLIC_IP)]


def test_a_redirect_to_a_name_that_resolves_privately_is_refused(tmp_path: Path) -> None:
    def resolver(host: str, port: int, **kw: Any) -> list[Any]:
        return resolver_to("10.1.1.1" if host == "internal.example" else PUBLIC_IP)(host, port)

    opener = FakeOpener({"https://media.example/a": FakeResponse(301, {"Location": "//internal.example/b"})})
    with pytest.raises(errors.SourceNotAllowed, match=r"internal\.example"):
        fetch_https(
            "https://media.example/a", tmp_path / "x", max_bytes=10, where="s", resolver=resolver, opener=opener
        )


def test_a_redirect_to_plain_http_is_refused(tmp_path: Path) -> None:
    opener = FakeOpener({"https://media.example/a": FakeResponse(307, {"Location": "http://media.example/a"})})
    with pytest.raises(errors.SourceNotAllowed, match="https"):
        fetch_https(
            "https://media.example/a", tmp_path / "x", max_bytes=10, where="s", resolver=public_resolver, opener=opener
        )


def test_relative_redirects_are_followed_up_to_three(tmp_path: Path) -> None:
    base = "https://media.example"
    ok = FakeOpener(
        {
            f"{base}/0": FakeResponse(302, {"Location": "/1"}),
            f"{base}/1": FakeResponse(302, {"Location": "/2"}),
            f"{base}/2": FakeResponse(302, {"Location": "/3"}),
            f"{base}/3": FakeResponse(200, {}, b"data"),
        }
    )
    fetch_https(f"{base}/0", tmp_path / "x", max_bytes=10, where="s", resolver=public_resolver, opener=ok)
    assert (tmp_path / "x").read_bytes() == b"data"

    loop = FakeOpener({f"{base}/{n}": FakeResponse(302, {"Location": f"/{n + 1}"}) for n in range(10)})
    with pytest.raises(errors.SourceUnavailable, match="redirects"):
        fetch_https(f"{base}/0", tmp_path / "y", max_bytes=10, where="s", resolver=public_resolver, opener=loop)
    assert len(loop.calls) == 4


def test_downloads_are_bounded(tmp_path: Path) -> None:
    declared = FakeOpener({"https://m.example/a": FakeResponse(200, {"Content-Length": "999999"}, b"x")})
    with pytest.raises(errors.SourceTooLarge):
        fetch_https(
            "https://m.example/a", tmp_path / "a", max_bytes=100, where="s", resolver=public_resolver, opener=declared
        )

    undeclared = FakeOpener({"https://m.example/a": FakeResponse(200, {}, b"x" * (3 << 20))})
    with pytest.raises(errors.SourceTooLarge):
        fetch_https(
            "https://m.example/a",
            tmp_path / "b",
            max_bytes=1 << 20,
            where="s",
            resolver=public_resolver,
            opener=undeclared,
        )


def test_http_errors_are_unavailable_sources(tmp_path: Path) -> None:
    opener = FakeOpener({"https://m.example/a": FakeResponse(404)})
    with pytest.raises(errors.SourceUnavailable, match="404"):
        fetch_https(
            "https://m.example/a", tmp_path / "a", max_bytes=10, where="s", resolver=public_resolver, opener=opener
        )


def test_s3_sources_must_come_from_allowed_buckets() -> None:
    assert check_s3_allowed("s3://media/a.mp4", frozenset({"media"}), where="w").key == "a.mp4"
    with pytest.raises(errors.SourceNotAllowed, match=r"scenes\[2\]\.src: bucket 'x' is not allowed"):
        check_s3_allowed("s3://x/a.mp4", frozenset({"media"}), where="scenes[2].src")


def test_local_suffixes_are_sanitised() -> None:
    assert suffix_of("https://h/v/clip.MP4") == ".mp4"
    assert suffix_of("https://h/v/clip") == ".bin"
    assert suffix_of("https://h/v/../../etc/passwd") == ".bin"
    assert suffix_of("https://h/a.m3u8%2F..%2Fx") == ".bin"


# --- the pinned connection itself, against a TLS server on 127.0.0.1 --------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "media.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("media.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    root = tmp_path_factory.mktemp("tls")
    cert_path, key_path = root / "cert.pem", root / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path]) -> Iterator[tuple[int, dict[str, str]]]:
    """Answers one GET with 200 'ok'; records the SNI name and Host header it saw."""
    cert_path, key_path = tls_files
    seen: dict[str, str] = {}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)

    def on_sni(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        seen["sni"] = name or ""

    ctx.sni_callback = on_sni  # type: ignore[assignment]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                request = tls.recv(4096).decode()
                hosts = [
                    line.split(":", 1)[1].strip() for line in request.splitlines() if line.lower().startswith("host:")
                ]
                seen["host"] = hosts[0]
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except ssl.SSLError:
            pass  # the client refused our certificate: that test expects it

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, seen
    thread.join(timeout=5)
    listener.close()


def test_pinned_connection_goes_to_the_vetted_ip_with_the_name_in_sni_and_host(
    tls_server: tuple[int, dict[str, str]], tls_files: tuple[Path, Path]
) -> None:
    port, seen = tls_server
    ctx = ssl.create_default_context(cafile=str(tls_files[0]))
    # "media.example" does not resolve anywhere; only the pinned address can reach the server.
    target = HttpsTarget(url="https://media.example/a.mp4", host="media.example", port=port, path="/a.mp4")
    response = pinned_opener(ctx)(target, "127.0.0.1", time.monotonic() + 30)

    assert response.status == 200
    assert response.read() == b"ok"
    assert seen["sni"] == "media.example"
    assert seen["host"].split(":")[0] == "media.example"


def test_pinned_connection_still_verifies_the_certificate(
    tls_server: tuple[int, dict[str, str]], tls_files: tuple[Path, Path]
) -> None:
    port, _ = tls_server
    ctx = ssl.create_default_context(cafile=str(tls_files[0]))
    target = HttpsTarget(url="https://evil.example/", host="evil.example", port=port, path="/")
    with pytest.raises(ssl.SSLCertVerificationError):
        pinned_opener(ctx)(target, "127.0.0.1", time.monotonic() + 30)


# --- the total deadline, against servers on 127.0.0.1 that stall or drip ----------------

DRIP_INTERVAL = 0.2


def _stall(
    tls_ctx: ssl.SSLContext, conn: socket.socket, behaviour: str, stop: threading.Event, sent: list[int]
) -> None:
    """'silent': accept TCP, never answer the handshake; 'headers'/'body': drip one byte per interval."""
    if behaviour == "silent":
        stop.wait(10)
        return
    with tls_ctx.wrap_socket(conn, server_side=True) as tls:
        tls.recv(4096)
        if behaviour == "headers":
            tls.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
        else:
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n")
        while not stop.wait(DRIP_INTERVAL):
            tls.sendall(b"a")
            sent[0] += 1


@pytest.fixture
def stalling_server(tls_files: tuple[Path, Path]) -> Iterator[Callable[[str], tuple[int, list[int]]]]:
    """Starts a one-connection server with the given behaviour; returns its port and a sent-byte counter."""
    tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ctx.load_cert_chain(*tls_files)
    stop = threading.Event()
    started: list[tuple[socket.socket, threading.Thread]] = []

    def start(behaviour: str) -> tuple[int, list[int]]:
        listener = socket.create_server(("127.0.0.1", 0))
        sent = [0]

        def serve() -> None:
            conn, _ = listener.accept()
            conn.settimeout(10)
            try:
                _stall(tls_ctx, conn, behaviour, stop, sent)
            except OSError:
                pass  # the client gave up and closed the connection: what the tests expect
            finally:
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started.append((listener, thread))
        return listener.getsockname()[1], sent

    yield start
    stop.set()
    for listener, thread in started:
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize(
    ("behaviour", "read_timeout"),
    [
        ("silent", 30.0),  # only the deadline can cut the handshake short of the 30 s read timeout
        ("headers", 0.5),  # every byte comes within the read timeout: only the deadline ends it
        ("body", 0.5),
    ],
)
def test_a_stalling_or_dripping_server_cannot_outlast_the_total_deadline(
    behaviour: str,
    read_timeout: float,
    stalling_server: Callable[[str], tuple[int, list[int]]],
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sources, "TOTAL_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(sources, "READ_TIMEOUT_SECONDS", read_timeout)
    port, sent = stalling_server(behaviour)
    real = pinned_opener(ssl.create_default_context(cafile=str(tls_files[0])))

    def to_loopback(target: HttpsTarget, address: str, deadline: float) -> Any:
        # The real pinned connection, sent to the local server instead of the vetted public address.
        assert address == PUBLIC_IP
        return real(dataclasses.replace(target, port=port), "127.0.0.1", deadline)

    started = time.monotonic()
    with pytest.raises(errors.SourceUnavailable, match=r"^scenes\[3\]\.src: media\.example did not finish within 1 s$"):
        fetch_https(
            "https://media.example/clip.mp4",
            tmp_path / "x",
            max_bytes=1 << 30,
            where="scenes[3].src",
            resolver=public_resolver,
            opener=to_loopback,
        )
    elapsed = time.monotonic() - started

    assert elapsed < 5  # generous; without the deadline the drip would run for days
    if behaviour != "silent":
        assert sent[0] >= 2  # bytes kept arriving faster than the read timeout


def test_the_total_budget_ends_well_before_the_start_render_lambda_timeout() -> None:
    start_render_timeout = 5 * 60  # infra/constructs/functions.py
    budget = sources.TOTAL_TIMEOUT_SECONDS
    # A slow source must fail as SOURCE_UNAVAILABLE, with time left to report it, not as a sandbox timeout.
    assert budget <= start_render_timeout - 60
    assert budget > sources.READ_TIMEOUT_SECONDS


def test_a_caller_deadline_shortens_the_budget(tmp_path: Path) -> None:
    # The render-wide budget (several sources in one StartRender) is already spent: no connection is made.
    with pytest.raises(errors.SourceUnavailable, match=r"^scenes\[1\]\.src: media\.example did not finish"):
        sources.fetch_https(
            "https://media.example/a.mp4",
            tmp_path / "a.mp4",
            max_bytes=1000,
            where="scenes[1].src",
            resolver=public_resolver,
            opener=refuse_any_connection,
            deadline=time.monotonic() - 1,
        )
