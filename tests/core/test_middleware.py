"""Under ASGI, Django runs the middleware chain and the view in one thread per request."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

calls: list[tuple[str, str, int]] = []  # (probe, how it was called, thread)


class Probe:
    """A middleware that can run either way, recording which way Django called it."""

    sync_capable = True
    async_capable = True
    name = "probe"

    def __init__(self, get_response: Callable[..., Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        calls.append((self.name, "sync", threading.get_ident()))
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        calls.append((self.name, "async", threading.get_ident()))
        return await self.get_response(request)


class BelowWhiteNoise(Probe):
    name = "below whitenoise"


class Innermost(Probe):
    name = "innermost"


@pytest.mark.django_db
async def test_every_middleware_runs_synchronously_in_the_requests_one_thread(
    async_client, settings
):
    """WhiteNoise runs only synchronously; with the last middleware synchronous too, Django
    enters the request's thread once and runs the whole chain there. With an asynchronous one
    last, the middleware between them ran in the event loop, each stepping into the thread
    and back for its hooks (a third of an API request's CPU)."""
    chain = list(settings.MIDDLEWARE)
    whitenoise = chain.index("whitenoise.middleware.WhiteNoiseMiddleware")
    chain.insert(whitenoise + 1, f"{__name__}.BelowWhiteNoise")
    chain.insert(len(chain) - 1, f"{__name__}.Innermost")
    calls.clear()
    settings.MIDDLEWARE = chain
    response = await async_client.get("/healthz")
    assert response.status_code == 200
    assert [(name, how) for name, how, _ in calls] == [
        ("below whitenoise", "sync"),
        ("innermost", "sync"),
    ]
    assert calls[0][2] == calls[1][2] != threading.get_ident()  # one thread, not the loop's
