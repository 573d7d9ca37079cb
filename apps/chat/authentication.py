"""`Authorization: Bearer TOKEN` for the customer REST fallback."""

from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.chat.models import Conversation
from apps.chat.selectors import conversation_get_by_token


class ConversationTokenAuthentication(BaseAuthentication):
    """Authenticates a conversation (not a user): `request.auth` is the Conversation."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, Conversation] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Use `Authorization: Bearer TOKEN`.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token is not valid.") from exc
        conversation = conversation_get_by_token(token=token)
        if conversation is None:
            raise exceptions.AuthenticationFailed("The token is not valid.")
        return AnonymousUser(), conversation

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class HasConversationToken(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Conversation)


class ConversationTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = ConversationTokenAuthentication
    name = "conversationToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "The conversation token."}
