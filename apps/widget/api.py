"""Customer REST fallback: the same services as the WebSocket (docs/protocol.md)."""

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.chat import selectors, services
from apps.chat.authentication import ConversationTokenAuthentication, HasConversationToken
from apps.chat.models import Attachment, Conversation, Message
from apps.core.api import ID_MAX, errors, query_param
from apps.core.errors import NotFound
from apps.core.pagination import MAX_PAGE_SIZE
from apps.flows import messages as flows
from apps.tickets.selectors import conversation_current_ticket

EVENTS_PAGE = 200
# Messages in a conversation's detail: the latest this many (`limit` asks for up to 200).
MESSAGES_PAGE = 50


class AttachmentSerializer(serializers.Serializer[Attachment]):
    """`{"id","name","content_type","size","url"}`, as in the message events."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.CharField()

    def to_representation(self, instance: Attachment) -> dict[str, Any]:
        return services.attachment_payload(instance)


class MessageSerializer(serializers.ModelSerializer[Message]):
    attachments = AttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = Message
        fields = ["id", "client_id", "sender", "text", "created_at", "attachments"]


class EventSerializer(serializers.Serializer[dict[str, object]]):
    """A stored event frame, exactly as the socket sends it."""

    type = serializers.ChoiceField(choices=["message", "status"])
    seq = serializers.IntegerField()

    def to_representation(self, instance: dict[str, object]) -> dict[str, object]:
        return instance


class ConversationApiView(APIView):
    """Base for endpoints authenticated by the conversation's bearer token."""

    authentication_classes = [ConversationTokenAuthentication]
    permission_classes = [HasConversationToken]

    def get_conversation(self, request: Request, conversation_id: uuid.UUID) -> Conversation:
        conversation = request.auth
        # A token for another conversation looks exactly like a conversation that does not exist.
        if not isinstance(conversation, Conversation) or conversation.id != conversation_id:
            raise NotFound("Conversation not found.")
        return conversation


class ConversationCreateApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "conversation_create"

    class InputSerializer(serializers.Serializer[dict[str, str]]):
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        email = serializers.EmailField(required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer[dict[str, object]]):
        id = serializers.UUIDField()
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        """Open a conversation; the token in the answer is shown only this once."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.conversation_create(**serializer.validated_data)
        output = self.OutputSerializer({"id": created.conversation.id, "token": created.token})
        return Response(output.data, status=status.HTTP_201_CREATED)


class ConversationDetailSerializer(serializers.Serializer[dict[str, object]]):
    id = serializers.UUIDField()
    status = serializers.CharField(allow_null=True)
    pool = serializers.CharField(allow_null=True)
    pool_name = serializers.CharField(allow_null=True)
    last_seq = serializers.IntegerField()
    messages = MessageSerializer(many=True, help_text="The latest messages, oldest first.")
    has_more = serializers.BooleanField(
        help_text="Older messages exist: ask again with `before` = the first message's id."
    )


def conversation_detail_data(
    conversation: Conversation, *, before: int | None = None, limit: int = MESSAGES_PAGE
) -> dict[str, Any]:
    """The conversation's ticket status and pool, and a page of its messages, the latest
    (before message `before`) first in line (never a confidence)."""
    ticket = conversation_current_ticket(conversation=conversation)
    page = selectors.message_page(conversation=conversation, before=before, limit=limit)
    data: dict[str, object] = {
        "id": conversation.id,
        "status": ticket.status if ticket else None,
        "pool": ticket.pool.slug if ticket and ticket.pool else None,
        "pool_name": ticket.pool.name if ticket and ticket.pool else None,
        "last_seq": conversation.last_seq,
        "messages": page.messages,
        "has_more": page.has_more,
    }
    return dict(ConversationDetailSerializer(data).data)


class ConversationDetailApi(ConversationApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "before",
                int,
                description="Only messages older than this message id (page back).",
            ),
            OpenApiParameter(
                "limit",
                int,
                description=f"Messages: {MESSAGES_PAGE} by default, at most {MAX_PAGE_SIZE} "
                f"(a larger limit gives {MAX_PAGE_SIZE}).",
            ),
        ],
        responses=ConversationDetailSerializer,
    )
    def get(self, request: Request, conversation_id: uuid.UUID) -> Response:
        """The conversation's ticket status and pool, and its latest messages (never a
        confidence); `before` pages back."""
        conversation = self.get_conversation(request, conversation_id)
        before = query_param(
            request, "before", serializers.IntegerField(min_value=1, max_value=ID_MAX)
        )
        limit = query_param(request, "limit", serializers.IntegerField(min_value=1))
        return Response(
            conversation_detail_data(
                conversation, before=before, limit=min(limit or MESSAGES_PAGE, MAX_PAGE_SIZE)
            )
        )


class ConversationHandoffApi(ConversationApiView):
    @extend_schema(request=None, responses={200: ConversationDetailSerializer, **errors(429)})
    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        """The customer asks for a person ("Talk to a person"); the model tiers are skipped."""
        conversation = self.get_conversation(request, conversation_id)
        flows.conversation_handoff(conversation=conversation)
        conversation.refresh_from_db(fields=["last_seq"])
        return Response(conversation_detail_data(conversation))


class ConversationMessageCreateApi(ConversationApiView):
    class InputSerializer(serializers.Serializer[dict[str, object]]):
        # Length and emptiness are checked by the service, with the same codes as the socket.
        text = serializers.CharField(trim_whitespace=False, allow_blank=True)
        client_id = serializers.UUIDField(required=False, allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={201: MessageSerializer, 200: MessageSerializer, **errors(429)},
    )
    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        """Post a customer message; a repeated client_id returns the stored message (200)."""
        conversation = self.get_conversation(request, conversation_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        posted = flows.message_post(
            conversation=conversation,
            text=serializer.validated_data["text"],
            sender=Message.Sender.CUSTOMER,
            client_id=serializer.validated_data.get("client_id"),
        )
        code = status.HTTP_201_CREATED if posted.created else status.HTTP_200_OK
        return Response(MessageSerializer(posted.message).data, status=code)


class ConversationEventListApi(ConversationApiView):
    class OutputSerializer(serializers.Serializer[dict[str, object]]):
        events = EventSerializer(many=True)
        last_seq = serializers.IntegerField()

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="Return events with seq > after.")],
        responses=OutputSerializer,
    )
    def get(self, request: Request, conversation_id: uuid.UUID) -> Response:
        """Stored events after `after`, as the socket sends them (polling fallback)."""
        conversation = self.get_conversation(request, conversation_id)
        after = query_param(request, "after", serializers.IntegerField(min_value=0)) or 0
        events = selectors.event_list_after(
            conversation_id=conversation.id, after=after, limit=EVENTS_PAGE
        )
        return Response(
            {"events": [event.frame() for event in events], "last_seq": conversation.last_seq}
        )
