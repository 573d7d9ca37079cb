"""Who a client is, for rate limits and logs: the address the server sees.

That address is the ASGI scope's `client`: the TCP peer, or, behind a proxy that uvicorn was
told to trust (`--proxy-headers --forwarded-allow-ips`, docs/deploy.md), the address that
proxy put in X-Forwarded-For. Trust is decided there, once. The application never reads
X-Forwarded-For itself (DRF's NUM_PROXIES is 0), so a client cannot name its own address, and
DRF's throttles, the `limits` rate limits, the socket bounds and the logs all see the same one.
"""

from typing import Any

from django.http import HttpRequest

UNKNOWN = "unknown"


def request_client_address(request: HttpRequest) -> str:
    """The client address of an HTTP request (Django's REMOTE_ADDR, from the ASGI scope)."""
    return str(request.META.get("REMOTE_ADDR") or UNKNOWN)


def scope_client_address(scope: dict[str, Any]) -> str:
    """The client address of a WebSocket connection."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN
