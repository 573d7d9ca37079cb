"""Where a webhook may go, and the one HTTP request that takes it there.

An admin types the URL, so without care the sender is a way into the network it runs in
(SSRF): `http://127.0.0.1:6379/`, `http://10.0.0.5/admin`, the cloud metadata service at
169.254.169.254. So:

- The host is resolved once per attempt and every address it resolves to must be public: not
  loopback, private, link-local, multicast, reserved, unspecified or shared (carrier-grade NAT),
  also when an IPv6 address embeds an IPv4 one. A name resolving to a mix is refused whole.
- The request connects to the addresses that were checked (the Host header and TLS SNI and
  certificate check use the name): no second lookup a DNS answer could change in between.
- Hosts named in WEBHOOK_ALLOWED_HOSTS (exact names or IP literals) skip the address check,
  for receivers on purpose inside the network; they are still connected to as resolved.
- Redirects are never followed (the standard library's `http.client` does not follow them), and
  proxy variables are not used: the request goes to the checked address.
- What is stored on the delivery is a coarse reason ("connection refused", "timeout",
  "HTTP 500", "refused: private address"), never the socket's message, so the log answers
  "did it arrive?" without becoming a port scanner's output.

Checked again at every attempt (DNS may change after the URL was saved); the admin checks at
save time too, for a clear message (`webhook_url_problem`).
"""

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

REFUSED_PRIVATE = "refused: private address"
REFUSED_SCHEME = "refused: only http and https URLs"
REFUSED_URL = "refused: invalid URL"
DNS_FAILED = "DNS lookup failed"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_SocketAddress = tuple[Any, ...]  # (host, port) or (host, port, flowinfo, scope_id)


class TargetRefused(Exception):
    """The URL may not be sent to; the message is the coarse reason stored on the delivery."""


@dataclass(frozen=True)
class Target:
    """A URL resolved and checked: what to connect to, and what to say it is."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[tuple[socket.AddressFamily, _SocketAddress], ...]


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str


def address_public(address: IPAddress) -> bool:
    """Whether a webhook may be sent to `address` without the host being allowed by name."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and not address_public(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def host_allowed(host: str) -> bool:
    """Whether `host` is named in WEBHOOK_ALLOWED_HOSTS (internal receivers on purpose)."""
    wanted = _host_key(host)
    return any(_host_key(name) == wanted for name in settings.WEBHOOK_ALLOWED_HOSTS)


def _host_key(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _parse(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused(REFUSED_SCHEME)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(REFUSED_URL) from exc
    if not parts.hostname:
        raise TargetRefused(REFUSED_URL)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port, path


def _resolve(host: str, port: int) -> tuple[tuple[socket.AddressFamily, _SocketAddress], ...]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(DNS_FAILED) from exc
    addresses = tuple(dict.fromkeys((family, sockaddr) for family, _, _, _, sockaddr in found))
    if not addresses:
        raise TargetRefused(DNS_FAILED)
    return addresses


def _ip(sockaddr: _SocketAddress) -> IPAddress:
    return ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])


def target_resolve(url: str) -> Target:
    """Resolve `url`'s host once and check every address; TargetRefused (coarse) if it may not
    be sent to."""
    scheme, host, port, path = _parse(url)
    addresses = _resolve(host, port)
    if not host_allowed(host) and not all(address_public(_ip(a)) for _, a in addresses):
        raise TargetRefused(REFUSED_PRIVATE)
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)


def webhook_url_problem(url: str) -> str | None:
    """Why an admin may not save `url` as an endpoint, in words; None when it is fine now."""
    try:
        target_resolve(url)
    except TargetRefused as refused:
        host = urlsplit(url).hostname or url
        reason = str(refused)
        if reason == REFUSED_PRIVATE:
            return (
                f"{host} is, or resolves to, a loopback, private, link-local, multicast or "
                "reserved address: webhooks are not sent inside the network. To allow an "
                "internal receiver, name the host in the WEBHOOK_ALLOWED_HOSTS setting."
            )
        if reason == DNS_FAILED:
            return f"The host name {host} could not be resolved."
        return "Enter an http or https URL with a host name."
    return None


def _connect(
    addresses: Sequence[tuple[socket.AddressFamily, _SocketAddress]], timeout: float
) -> socket.socket:
    """A TCP connection to the first of the checked addresses that answers."""
    last: OSError = OSError("no address")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise last


class _CheckedHTTPConnection(http.client.HTTPConnection):
    """`http.client` speaking to the checked addresses; the Host header names the URL's host."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._target, self._timeout = target, timeout

    def connect(self) -> None:
        self.sock = _connect(self._target.addresses, self._timeout)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked addresses, with SNI and the certificate checked for the URL's host."""

    def __init__(self, target: Target, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._target, self._timeout = target, timeout

    def connect(self) -> None:
        sock = _connect(self._target.addresses, self._timeout)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self._target.host)
        except BaseException:
            sock.close()
            raise


def webhook_post(*, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    """POST `body` to `url` if it may be sent there; the status, or a coarse reason."""
    try:
        target = target_resolve(url)
    except TargetRefused as refused:
        return Answer(None, str(refused))
    kind = _CheckedHTTPSConnection if target.scheme == "https" else _CheckedHTTPConnection
    connection = kind(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        status = response.status
        response.close()  # the body is not read: nothing in it is used
    except TimeoutError:
        return Answer(None, "timeout")
    except ConnectionRefusedError:
        return Answer(None, "connection refused")
    except ConnectionResetError:
        return Answer(None, "connection reset")
    except ssl.SSLError:
        return Answer(None, "TLS error")
    except http.client.HTTPException:
        return Answer(None, "invalid HTTP answer")
    except OSError:
        return Answer(None, "connection failed")
    finally:
        connection.close()
    if 200 <= status < 300:
        return Answer(status, "")
    hint = " (redirects are not followed)" if 300 <= status < 400 else ""
    return Answer(status, f"HTTP {status}{hint}")
