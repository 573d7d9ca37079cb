"""WebSocket URL routing."""

from django.urls import path

from apps.desk.consumers import DeskConsumer
from apps.widget.consumers import CustomerChatConsumer

websocket_urlpatterns = [
    path("ws/chat/", CustomerChatConsumer.as_asgi()),
    path("ws/desk/", DeskConsumer.as_asgi()),
]
