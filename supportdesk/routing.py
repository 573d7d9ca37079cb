"""WebSocket URL routing."""

from django.urls import path

from apps.chat.consumers import CustomerChatConsumer

websocket_urlpatterns = [
    path("ws/chat/", CustomerChatConsumer.as_asgi()),
]
