"""WebSocket URL routing."""

from django.urls import path

from apps.chat.consumers import CustomerChatConsumer
from apps.desk.consumers import DeskConsumer

websocket_urlpatterns = [
    path("ws/chat/", CustomerChatConsumer.as_asgi()),
    path("ws/desk/", DeskConsumer.as_asgi()),
]
