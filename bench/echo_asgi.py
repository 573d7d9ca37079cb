"""A bare Channels echo consumer: the floor that bench/chat_roundtrip.py compares against."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings.local")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())])}
)
