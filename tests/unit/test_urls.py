"""The public-URL guard shared by the door (POST /renders), the fetch and, later, webhooks."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from render_service import urls
from render_service.urls import UrlRefused, check_public_url, check_public_urls

# Every way of writing an address that is not public, as a URL's host.
LITERAL_ADDRESSES = [
    "127.0.0.1",
    "127.0.0.1.",  # trailing dot
    "10.1.2.3",
    "172.16.0.1",
    "192.168.0.1",
    "169.254.169.254",  # instance metadata
    "100.100.100.200",  # CGNAT (Alibaba's metadata address)
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "2130706433",  # decimal
    "017700000001",  # octal, one part
    "0x7f000001",  # hex, one part
    "0X7F.0.0.1",  # hex, upper case
    "0x7f.0x0.0x0.0x1",
    "0177.0.0.1",  # octal
    "0177.0.0.01",
    "127.1",  # short forms
    "127.0.1",
    "10.1",
    "0",
    "0x0",
    "00000000000000000000000000000177.0.0.1",
    "%31%32%37.0.0.1",  # percent-encoded
    "\uff11\uff12\uff17.0.0.1",  # fullwidth digits, NFKC-folded by IDNA
    "[::1]",
    "[::]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[::127.0.0.1]",  # IPv4-compatible
    "[::7f00:1]",
    "[::a9fe:a9fe]",
    "[fe80::1%25eth0]",  # link-local with a zone id
    "[fe80::1%eth0]",
    "[fd00:ec2::254]",  # unique local (EC2's IPv6 metadata)
    "[fc00::1]",
    "[fec0::1]",  # site-local
    "[ff02::1]",  # multicast
    "[2002:7f00:1::]",  # 6to4 around 127.0.0.1
    "[2002:a9fe:a9fe::1]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 around 169.254.169.254
    "[64:ff9b::7f00:1]",
    "[2001::1]",  # Teredo
    "[2001:db8::1]",  # documentation
    "[::ffff:0:127.0.0.1]",
    "localhost",
    "localhost.",
    "api.localhost",
    "metadata",  # single label: internal search domains only
    "metadata.google.internal.",
]


def _loopback(*_: Any, **__: Any) -> list[Any]:
    # A name that slips through the static rules resolves to loopback, as an attacker's would.
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))]


@pytest.mark.parametrize("host", LITERAL_ADDRESSES)
def test_non_public_hosts_are_refused_in_every_notation(host: str) -> None:
    with pytest.raises(UrlRefused, match=r"^timeline\.scenes\[0\]\.src: "):
        check_public_url(f"https://{host}/a.mp4", where="timeline.scenes[0].src", resolver=_loopback)


@pytest.mark.parametrize(
    "url",
    [
        "http://media.example/a.mp4",
        "https://media.example:8443/a.mp4",
        "https://user@media.example/a.mp4",
        "https://good.example@127.0.0.1/a.mp4",
        "https:///a.mp4",
        "https://[::1/a.mp4",
        "https://exa mple.com/a.mp4",
        "file:///etc/passwd",
    ],
)
def test_other_rules_are_refused_without_dns(url: str) -> None:
    def resolver(*_: Any, **__: Any) -> list[Any]:
        raise AssertionError("resolved a URL the static rules refuse")

    with pytest.raises(UrlRefused):
        check_public_url(url, resolver=resolver)


def resolving_to(*ips: str) -> urls.Resolver:
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    return resolve


@pytest.mark.parametrize(
    "answers", [("10.0.0.5",), ("93.184.215.14", "169.254.169.254"), ("::ffff:10.0.0.1",), ("fd12::1",)]
)
def test_names_that_resolve_to_any_non_public_address_are_refused(answers: tuple[str, ...]) -> None:
    with pytest.raises(UrlRefused, match="non-public"):
        check_public_url("https://rebind.example/a.mp4", where="soundtrack.src", resolver=resolving_to(*answers))


def test_public_names_and_literals_pass() -> None:
    public = resolving_to("93.184.215.14", "2606:2800:220:1::1")
    assert check_public_url("https://Media.Example./a.mp4?x=1", resolver=public).host == "media.example"
    assert check_public_url("https://93.184.215.14/a.mp4", resolver=public).host == "93.184.215.14"
    assert check_public_url("https://[2606:2800:220:1::1]/a.mp4", resolver=public).host == "2606:2800:220:1::1"


def test_a_name_that_does_not_resolve_yet_passes_and_the_fetch_decides() -> None:
    def nxdomain(*_: Any, **__: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    check_public_url("https://not-yet.example/a.mp4", resolver=nxdomain)


def test_a_hanging_resolver_does_not_hold_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*_: Any, **__: Any) -> list[Any]:
        release.wait(30)
        return []

    monkeypatch.setattr(urls, "DNS_TIMEOUT_SECONDS", 0.2)
    try:
        check_public_urls({"a": "https://slow-one.example/a", "b": "https://slow-two.example/b"}, resolver=hang)
    finally:
        release.set()


def test_the_first_refused_field_is_named() -> None:
    mixed = {
        "timeline.scenes[0].src": "https://fine.example/a.mp4",
        "timeline.scenes[1].src": "https://internal.example/b.mp4",
    }

    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return resolving_to("10.0.0.1" if host.startswith("internal") else "93.184.215.14")(host, port)

    with pytest.raises(UrlRefused) as refused:
        check_public_urls(mixed, resolver=resolve)
    assert refused.value.where == "timeline.scenes[1].src"
