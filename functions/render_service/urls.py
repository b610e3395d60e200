"""The public-URL guard: may the service reach this `https` URL at all?

One function answers it for every URL a user hands us (media sources today, webhook
targets too): `check_public_url` at the door (`POST /renders`), and the same rules again
at fetch time (`sources.fetch_https`), because DNS may answer differently in between.

The rules: `https` only, port 443, no userinfo, and a host that is either a public IP in
canonical notation or a multi-label DNS name. IP literals in any other notation (decimal
`2130706433`, hex `0x7f000001`, octal `0177.0.0.1`, short `127.1`, with a trailing dot)
are refused outright: `inet_aton` and some resolvers read them as addresses, `ipaddress`
does not, and no real host is named that way. IPv6 literals (bracketed, with a zone id,
IPv4-mapped, IPv4-compatible, 6to4 or NAT64) are judged by the IPv4 address they wrap.
A name is resolved and every answer must be public (a mixed answer is an attack).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[Any]]

# getaddrinfo has no timeout of its own; at the door a slow resolver must not hold the request.
DNS_TIMEOUT_SECONDS = 3.0

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)
_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9-]{1,63}\.?$")
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dns")


class UrlRefused(ValueError):
    """The URL breaks one of the rules above; `reason` says which, `where` names the field."""

    def __init__(self, reason: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.where = where


class HostUnresolved(OSError):
    """The name does not resolve (now): not a rule broken, but nothing to connect to."""


@dataclass(frozen=True)
class HttpsTarget:
    url: str
    host: str  # lower case, IDNA-encoded, no trailing dot; an IP literal without brackets or zone
    port: int
    path: str  # path and query, as sent in the request line


def parse_https_url(url: str) -> HttpsTarget:
    """The static rules (no DNS): raises `UrlRefused`."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise UrlRefused("not a valid URL") from None
    if parts.scheme.lower() != "https":
        raise UrlRefused("only https:// URLs are fetched")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UrlRefused("URLs with credentials are refused")
    if port != 443:
        raise UrlRefused("only port 443 is allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlRefused("the URL has no host")
    literal = ip_literal(host)
    if literal is not None:
        if not is_public_address(literal):
            raise UrlRefused(f"address {literal} is not public")
        host = str(literal)
    else:
        host = host.rstrip(".")
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlRefused("invalid host name") from None
        # Single-label names ("metadata", "intranet") only resolve through internal search domains.
        single_label = "." not in host
        if _NUMERIC_HOST.match(host) or not _HOSTNAME.match(host) or single_label or host.endswith(".localhost"):
            raise UrlRefused(f"host '{host}' is not allowed")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return HttpsTarget(url=url, host=host, port=port, path=path)


def ip_literal(host: str) -> Address | None:
    """`host` as an address if it is an IP literal in canonical notation (IPv6 may be bracketed or zoned)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def is_public_address(ip: Address) -> bool:
    """True only for globally routable unicast addresses, looking through IPv6 wrappers of IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return is_public_address(ip.sixtofour)
        if ip.teredo is not None:
            return False
        if ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _IPV4_COMPATIBLE:  # ::a.b.c.d (deprecated) reaches a.b.c.d on some stacks
            return False
        if ip.is_site_local:
            return False
    elif ip in _CGNAT:
        return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def resolve_public(host: str, port: int = 443, *, resolver: Resolver | None = None) -> str:
    """The address to connect to: every answer must be public. Raises `UrlRefused` or `HostUnresolved`."""
    literal = ip_literal(host)
    if literal is not None:
        if not is_public_address(literal):
            raise UrlRefused(f"address {literal} is not public")
        return str(literal)
    resolve = resolver or socket.getaddrinfo
    try:
        answers = resolve(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise HostUnresolved(f"host '{host}' does not resolve") from None
    addresses = []
    for _family, _type, _proto, _canon, sockaddr in answers:
        ip = ip_literal(str(sockaddr[0]))
        if ip is None or not is_public_address(ip):
            raise UrlRefused(f"host '{host}' resolves to a non-public address")
        addresses.append(str(ip))
    if not addresses:
        raise HostUnresolved(f"host '{host}' does not resolve")
    return addresses[0]


def check_public_url(url: str, *, where: str = "", resolver: Resolver | None = None) -> HttpsTarget:
    """The guard for a URL we will reach later (a source, a webhook): raises `UrlRefused`.

    A name that does not resolve now, or not within `DNS_TIMEOUT_SECONDS`, passes: it is
    not surely bad (DNS may catch up), and the fetch checks again before connecting.
    """
    check_public_urls({where: url}, resolver=resolver)
    return parse_https_url(url)


def check_public_urls(urls: Mapping[str, str], *, resolver: Resolver | None = None) -> None:
    """`check_public_url` for each `{where: url}`, resolving in parallel; the first refusal is raised."""
    targets: dict[str, HttpsTarget] = {}
    for where, url in urls.items():
        try:
            targets[where] = parse_https_url(url)
        except UrlRefused as refused:
            raise UrlRefused(refused.reason, where=where) from None
    lookups = {
        host: _pool.submit(_verdict, host, resolver)
        for host in {t.host for t in targets.values()}
        if not ip_literal(host)
    }
    deadline = time.monotonic() + DNS_TIMEOUT_SECONDS
    for where, target in targets.items():
        lookup = lookups.get(target.host)
        if lookup is None:
            continue
        try:
            reason = lookup.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            continue
        if reason:
            raise UrlRefused(reason, where=where)


def _verdict(host: str, resolver: Resolver | None) -> str | None:
    try:
        resolve_public(host, resolver=resolver)
    except UrlRefused as refused:
        return refused.reason
    except HostUnresolved:
        return None
    return None
