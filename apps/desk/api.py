"""Staff REST API of the desk (docs/desk.md). Views parse, call one service or selector, and
serialise; who may see or do what is decided in apps/pools/selectors.py and the services."""

from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat.models import Attachment, Message
from apps.chat.services import staff_display_name
from apps.core.api import ID_MAX, PaginatedApi, errors, query_param
from apps.core.errors import NotFound
from apps.desk import selectors, services
from apps.orchestrator.api import DecisionSerializer
from apps.orchestrator.models import RoutingDecision
from apps.pools import presence
from apps.pools import selectors as pool_selectors
from apps.pools import services as pool_services
from apps.pools.models import AgentProfile, Pool
from apps.review.models import RoutingLabel
from apps.tickets.models import Ticket

PREVIEW_CHARS = 200


def _user(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.get_username(), "name": staff_display_name(user)}


def attachment_url(attachment: Attachment) -> str:
    return f"/api/v1/attachments/{attachment.pk}/"


class PoolRefSerializer(serializers.Serializer[Pool]):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class UserRefSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField(allow_null=True)


class CustomerRefSerializer(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField()


class LastMessageSerializer(serializers.Serializer[dict[str, Any]]):
    sender = serializers.CharField()
    text = serializers.CharField(help_text=f"At most {PREVIEW_CHARS} characters.")
    created_at = serializers.DateTimeField(allow_null=True)


class TicketSummarySerializer(serializers.Serializer[Any]):
    """One row of a desk queue."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    pool = PoolRefSerializer(allow_null=True)
    assignee = serializers.SerializerMethodField()
    customer = serializers.SerializerMethodField()
    human_requested = serializers.BooleanField()
    # Routing found instructions aimed at the router in the customer's text (a rule routed it
    # anyway, or a person did): the agent should read it with that in mind.
    injection_suspected = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    queued_at = serializers.DateTimeField(allow_null=True)
    sla_due_at = serializers.DateTimeField(allow_null=True)
    sla_breached_at = serializers.DateTimeField(allow_null=True)
    first_response_at = serializers.DateTimeField(allow_null=True)
    last_message = serializers.SerializerMethodField()

    @extend_schema_field(UserRefSerializer(allow_null=True))
    def get_assignee(self, ticket: Ticket) -> dict[str, Any] | None:
        return _user(ticket.assignee)

    @extend_schema_field(CustomerRefSerializer)
    def get_customer(self, ticket: Ticket) -> dict[str, Any]:
        return {"name": ticket.conversation.customer.name}

    @extend_schema_field(LastMessageSerializer(allow_null=True))
    def get_last_message(self, ticket: Ticket) -> dict[str, Any] | None:
        text = getattr(ticket, "last_message_text", None)
        sender = getattr(ticket, "last_message_sender", None)
        if sender is None:
            return None
        return {
            "sender": sender,
            "text": (text or "")[:PREVIEW_CHARS],
            "created_at": getattr(ticket, "last_message_at", None),
        }


class AttachmentRefSerializer(serializers.Serializer[Attachment]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_url(self, attachment: Attachment) -> str:
        return attachment_url(attachment)


class DeskMessageSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    sender = serializers.CharField()
    author = serializers.SerializerMethodField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    attachments = AttachmentRefSerializer(many=True, source="attachments.all")

    def get_author(self, message: Message) -> str | None:
        if message.author is None:
            return None
        return staff_display_name(message.author) or message.author.get_username()


class NoteSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.get_username", allow_null=True, default=None)
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class ActivitySerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    label = serializers.CharField(source="get_kind_display")  # type: ignore[assignment]
    actor = serializers.CharField(source="actor.get_username", allow_null=True, default=None)
    data = serializers.JSONField()  # type: ignore[assignment]  # the field is named "data"
    created_at = serializers.DateTimeField()


class LabelSerializer(serializers.Serializer[Any]):
    source = serializers.CharField()  # type: ignore[assignment]  # the field is named "source"
    previous_pool = serializers.CharField(
        source="previous_pool.slug", allow_null=True, default=None
    )
    pool = serializers.CharField(source="pool.slug", allow_null=True, default=None)
    reason = serializers.CharField()
    author = serializers.CharField(source="author.get_username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class DraftSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    text = serializers.CharField()
    error = serializers.CharField()
    model = serializers.CharField()
    prompt_version = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=8)
    latency_ms = serializers.FloatField()
    created_at = serializers.DateTimeField()


class ContextSerializer(serializers.Serializer[Any]):
    earlier_tickets = serializers.JSONField()
    similar_tickets = serializers.JSONField()
    canned_replies = serializers.JSONField()
    missing = serializers.JSONField()
    gathered_at = serializers.DateTimeField()


class TeamShareSerializer(serializers.Serializer[Any]):
    pool = serializers.CharField(allow_null=True)
    messages = serializers.IntegerField()


class TicketDetailSerializer(TicketSummarySerializer):
    """The ticket as the requesting user may see it (pass `context={"user": ...}`)."""

    messages = serializers.SerializerMethodField()
    elsewhere = serializers.SerializerMethodField()
    notes = serializers.SerializerMethodField()
    activities = serializers.SerializerMethodField()
    decisions = serializers.SerializerMethodField()
    labels = serializers.SerializerMethodField()
    context = serializers.SerializerMethodField()  # type: ignore[assignment]  # named "context"
    drafts = serializers.SerializerMethodField()

    def _given(self) -> dict[str, Any]:
        # The serializer's context: its `context` attribute is the ticket context field here.
        given: dict[str, Any] = super().context
        return given

    def _seen(self, ticket: Ticket) -> pool_selectors.ConversationSeen:
        given = self._given()
        if "seen" not in given:
            given["seen"] = pool_selectors.ticket_conversation_visible(
                user=given["user"], ticket=ticket
            )
        seen: pool_selectors.ConversationSeen = given["seen"]
        return seen

    @extend_schema_field(DeskMessageSerializer(many=True))
    def get_messages(self, ticket: Ticket) -> Any:
        messages = self._seen(ticket).messages.prefetch_related(
            Prefetch("attachments", queryset=Attachment.objects.order_by("id"))
        )
        return DeskMessageSerializer(messages.select_related("author"), many=True).data

    @extend_schema_field(TeamShareSerializer(many=True))
    def get_elsewhere(self, ticket: Ticket) -> Any:
        """The customer's messages on other teams' tickets: which team and how many, no text."""
        return TeamShareSerializer(self._seen(ticket).elsewhere, many=True).data

    @extend_schema_field(NoteSerializer(many=True))
    def get_notes(self, ticket: Ticket) -> Any:
        return NoteSerializer(selectors.note_list(ticket=ticket), many=True).data

    @extend_schema_field(ActivitySerializer(many=True))
    def get_activities(self, ticket: Ticket) -> Any:
        return ActivitySerializer(selectors.activity_list(ticket=ticket), many=True).data

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, ticket: Ticket) -> Any:
        decisions = RoutingDecision.objects.filter(ticket=ticket, dry_run=False).select_related(
            "pool", "intent"
        )
        return DecisionSerializer(decisions, many=True).data

    @extend_schema_field(LabelSerializer(many=True))
    def get_labels(self, ticket: Ticket) -> Any:
        labels = RoutingLabel.objects.filter(ticket=ticket).select_related(
            "pool", "previous_pool", "author"
        )
        return LabelSerializer(labels, many=True).data

    @extend_schema_field(ContextSerializer(allow_null=True))
    def get_context(self, ticket: Ticket) -> Any:
        context = getattr(ticket, "context", None)
        if context is None:
            return None
        data = ContextSerializer(context).data
        # Gathered once for every viewer: what this one may not see of other tickets goes.
        data["earlier_tickets"] = pool_selectors.earlier_tickets_for(
            user=self._given()["user"], rows=data["earlier_tickets"]
        )
        return data

    @extend_schema_field(DraftSerializer(many=True))
    def get_drafts(self, ticket: Ticket) -> Any:
        return DraftSerializer(selectors.draft_list(ticket=ticket)[:5], many=True).data


class StaffApi(APIView):
    permission_classes = [IsAdminUser]


class TicketApi(StaffApi):
    """Base for one ticket's endpoints: the ticket is found only if the user may see it."""

    def get_ticket(self, request: Request, ticket_id: int) -> Ticket:
        return pool_selectors.ticket_get_visible(user=request.user, ticket_id=ticket_id)

    def summary(self, request: Request, ticket: Ticket) -> Response:
        fresh = pool_selectors.ticket_get_visible(user=request.user, ticket_id=ticket.pk)
        return Response(TicketSummarySerializer(fresh).data)


class TicketListApi(StaffApi, PaginatedApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("pool", str, description="Pool slug."),
            OpenApiParameter("status", str, enum=Ticket.Status.values),
            OpenApiParameter("conversation", OpenApiTypes.UUID, description="Conversation id."),
            OpenApiParameter("assignee", str, description="`me` or a user id."),
            OpenApiParameter("ordering", str, enum=["queue", "recent"]),
        ],
        responses={200: TicketSummarySerializer(many=True), **errors(404)},
    )
    def get(self, request: Request) -> Response:
        """Tickets the user may see: their pools' (or all, for a supervisor); 404 for an
        unknown `pool`."""
        pool = None
        slug = query_param(request, "pool", serializers.SlugField())
        if slug is not None:
            pool = Pool.objects.filter(slug=slug).first()
            if pool is None:
                raise NotFound(f"No pool {slug!r}.")
        status_filter = query_param(
            request, "status", serializers.ChoiceField(choices=Ticket.Status.values)
        )
        assignee_id = None
        if request.query_params.get("assignee") == "me":
            assignee_id = request.user.pk
        else:
            assignee_id = query_param(
                request, "assignee", serializers.IntegerField(min_value=1, max_value=ID_MAX)
            )
        tickets = pool_selectors.ticket_list_visible(
            user=request.user,
            pool=pool,
            status=status_filter,
            assignee_id=assignee_id,
            conversation_id=query_param(request, "conversation", serializers.UUIDField()),
            queue_order=request.query_params.get("ordering") == "queue",
        )
        return self.page_response(request, tickets, TicketSummarySerializer)


class TicketDetailApi(TicketApi):
    @extend_schema(responses=TicketDetailSerializer)
    def get(self, request: Request, ticket_id: int) -> Response:
        """The whole ticket: conversation, notes, activity, routing trail, context, drafts."""
        ticket = self.get_ticket(request, ticket_id)
        return Response(TicketDetailSerializer(ticket, context={"user": request.user}).data)


class TextInputSerializer(serializers.Serializer[dict[str, str]]):
    # Emptiness and length are checked by the services, with the chat's error codes.
    text = serializers.CharField(trim_whitespace=False, allow_blank=True)


class TicketReplyApi(TicketApi):
    @extend_schema(
        request=TextInputSerializer, responses={201: DeskMessageSerializer, **errors(409)}
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        """Send a reply to the customer (claims a queued ticket)."""
        serializer = TextInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = pool_services.ticket_reply(
            ticket=self.get_ticket(request, ticket_id),
            actor=request.user,
            text=serializer.validated_data["text"],
        )
        return Response(DeskMessageSerializer(message).data, status=status.HTTP_201_CREATED)


class TicketNoteCreateApi(TicketApi):
    @extend_schema(request=TextInputSerializer, responses={201: NoteSerializer})
    def post(self, request: Request, ticket_id: int) -> Response:
        """Add an internal note (never sent to the customer)."""
        serializer = TextInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = services.ticket_note_add(
            ticket=self.get_ticket(request, ticket_id),
            actor=request.user,
            text=serializer.validated_data["text"],
        )
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class TicketClaimApi(TicketApi):
    @extend_schema(request=None, responses={200: TicketSummarySerializer, **errors(409)})
    def post(self, request: Request, ticket_id: int) -> Response:
        """Take a queued ticket of one of your pools."""
        ticket = pool_services.ticket_claim(
            ticket=self.get_ticket(request, ticket_id), actor=request.user
        )
        return self.summary(request, ticket)


class TicketUnassignApi(TicketApi):
    @extend_schema(request=None, responses={200: TicketSummarySerializer, **errors(409)})
    def post(self, request: Request, ticket_id: int) -> Response:
        """Give the ticket back to its pool's queue."""
        ticket = pool_services.ticket_unassign(
            ticket=self.get_ticket(request, ticket_id), actor=request.user
        )
        return self.summary(request, ticket)


class TicketResolveApi(TicketApi):
    @extend_schema(request=None, responses={200: TicketSummarySerializer, **errors(409)})
    def post(self, request: Request, ticket_id: int) -> Response:
        """Close the ticket; the customer sees it resolved."""
        ticket = pool_services.ticket_resolve(
            ticket=self.get_ticket(request, ticket_id), actor=request.user
        )
        return self.summary(request, ticket)


class TicketReopenApi(TicketApi):
    @extend_schema(request=None, responses={200: TicketSummarySerializer, **errors(409)})
    def post(self, request: Request, ticket_id: int) -> Response:
        """Open a resolved ticket again."""
        ticket = pool_services.ticket_reopen(
            ticket=self.get_ticket(request, ticket_id), actor=request.user
        )
        return self.summary(request, ticket)


class TicketRerouteApi(TicketApi):
    class InputSerializer(serializers.Serializer[dict[str, str]]):
        pool = serializers.SlugField()
        reason = serializers.CharField(trim_whitespace=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={200: TicketSummarySerializer, **errors(409)})
    def post(self, request: Request, ticket_id: int) -> Response:
        """ "Wrong pool": move the ticket; the correction is recorded as a routing label."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = self.get_ticket(request, ticket_id)
        pool = Pool.objects.filter(slug=serializer.validated_data["pool"]).first()
        if pool is None:
            raise NotFound(f"No pool {serializer.validated_data['pool']!r}.")
        moved = services.ticket_reroute(
            ticket=ticket, actor=request.user, pool=pool, reason=serializer.validated_data["reason"]
        )
        # The actor may no longer see the ticket after moving it out of their pools.
        return Response(TicketSummarySerializer(moved).data)


class CannedReplyOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    pool = serializers.CharField(allow_null=True)
    text = serializers.CharField()


class TicketCannedReplyListApi(TicketApi):
    @extend_schema(responses=CannedReplyOutputSerializer(many=True))
    def get(self, request: Request, ticket_id: int) -> Response:
        """Canned replies for the ticket's pool, placeholders filled for this ticket and you."""
        data = services.canned_reply_list_rendered(
            ticket=self.get_ticket(request, ticket_id), agent=request.user
        )
        return Response(CannedReplyOutputSerializer(data, many=True).data)


class DeskOverviewApi(StaffApi):
    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        user = UserRefSerializer()
        supervisor = serializers.BooleanField()
        presence = serializers.ChoiceField(choices=AgentProfile.Presence.choices)
        capacity = serializers.IntegerField()
        pools = serializers.ListField(child=serializers.DictField())
        all_pools = PoolRefSerializer(many=True)
        mine = serializers.IntegerField()
        drafts_enabled = serializers.BooleanField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        """Your queues with their counts, your presence, and the pools a ticket can move to."""
        profile = pool_services.agent_profile_get(user=request.user)
        counts = pool_selectors.queue_counts(user=request.user)
        data = {
            "user": _user(request.user),
            "supervisor": pool_selectors.user_is_supervisor(request.user),
            "presence": profile.presence,
            "capacity": profile.capacity,
            "pools": counts["pools"],
            "all_pools": pool_selectors.pool_list(),
            "mine": counts["mine"],
            "drafts_enabled": bool(settings.ANTHROPIC_API_KEY),
        }
        return Response(self.OutputSerializer(data).data)


class DeskPresenceApi(StaffApi):
    class InputSerializer(serializers.Serializer[dict[str, str]]):
        presence = serializers.ChoiceField(
            choices=[AgentProfile.Presence.ONLINE, AgentProfile.Presence.AWAY]
        )

    @extend_schema(request=InputSerializer, responses={200: InputSerializer, **errors(409)})
    def post(self, request: Request) -> Response:
        """Choose online or away (needs an open desk)."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = presence.agent_presence_set(
            user=request.user, presence=serializer.validated_data["presence"]
        )
        return Response({"presence": profile.presence})
