"""Customers, conversations, messages, tickets and the per-conversation event log."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel
from apps.pools.models import Pool


class Customer(TimeStampedModel):
    """Someone who chats with support. Anonymous unless they tell us who they are."""

    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True, db_index=True)

    def __str__(self) -> str:
        return self.name or self.email or f"Customer {self.pk}"


class Conversation(TimeStampedModel):
    """One chat thread. Its bearer token is stored only as a SHA-256 hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="conversations")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The seq of the newest event; incremented under a row lock so seqs never collide.
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    # The customer asked for a person before writing anything: their first message skips the
    # model tiers.
    wants_human = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"Conversation {self.id}"


class Ticket(TimeStampedModel):
    """A request for help. A conversation has at most one ticket that is not resolved."""

    class Status(models.TextChoices):
        ROUTING = "routing", "Routing"
        AWAITING_CUSTOMER = "awaiting_customer", "Awaiting customer"
        QUEUED = "queued", "Queued"
        ASSIGNED = "assigned", "Assigned"
        IN_REVIEW = "in_review", "In review"
        RESOLVED = "resolved", "Resolved"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="tickets")
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.ROUTING, db_index=True
    )
    pool = models.ForeignKey(
        Pool, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Set by routing: instructions aimed at the router were found; LLM tiers may not auto-route.
    injection_suspected = models.BooleanField(default=False)
    # Facts the chosen pool needs that the customer has not given yet (status awaiting_customer).
    missing_fields = models.JSONField(default=list, blank=True)
    # The customer asked for a person: routed without waiting for the model tiers.
    human_requested = models.BooleanField(default=False)
    # Which routing run may call the models for this ticket, and until when (apps/orchestrator/
    # services.py): a duplicate task gives way to the run in flight, a redelivery of the same
    # task takes it over, and a run whose worker died frees the ticket when its lease runs out.
    routing_lease_owner = models.CharField(max_length=64, blank=True)
    routing_lease_until = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    # Position in the pool's queue: oldest first. Kept when a ticket returns to the queue.
    queued_at = models.DateTimeField(null=True, blank=True)
    # SLA: the first reply by a person is due at `sla_due_at`.
    sla_due_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=~Q(status="resolved"),
                name="one_open_ticket_per_conversation",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["routing", "awaiting_customer", "in_review", "resolved"])
                | Q(pool__isnull=False),
                name="queued_or_assigned_ticket_has_pool",
            ),
            # Only an assigned ticket has an assignee (a resolved one keeps who resolved it).
            models.CheckConstraint(
                condition=Q(status="resolved")
                | Q(status="assigned", assignee__isnull=False)
                | (~Q(status="assigned") & Q(assignee__isnull=True)),
                name="assignee_iff_assigned",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "pool", "created_at"]),
            models.Index(fields=["pool", "status", "queued_at"]),
            models.Index(fields=["assignee", "status"]),
        ]

    def __str__(self) -> str:
        return f"Ticket #{self.pk} ({self.status})"


class Message(TimeStampedModel):
    """One chat message. `client_id` makes customer sends idempotent across reconnects."""

    class Sender(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        BOT = "bot", "Bot"
        AGENT = "agent", "Agent"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    ticket = models.ForeignKey(
        Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    sender = models.CharField(max_length=16, choices=Sender.choices)
    # The staff user who wrote an agent message.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    text = models.TextField(blank=True)
    client_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_client_id_unique_per_conversation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:40]}"


def attachment_path(instance: "Attachment", filename: str) -> str:
    # A random name: the customer's file name is kept in `name`, never used as a path.
    return f"attachments/{instance.conversation_id.hex}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """An image or PDF sent in a conversation, stored through Django's storage API and served
    only to the conversation's participants."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="attachments"
    )
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    sender = models.CharField(max_length=16, choices=Message.Sender.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    file = models.FileField(upload_to=attachment_path, max_length=200)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


class ConversationEvent(models.Model):
    """The append-only log of what a conversation's participants see, numbered by `seq`.

    Sockets replay it after `last_seq` on reconnect; the REST fallback polls it.
    """

    class Type(models.TextChoices):
        MESSAGE = "message", "Message"
        STATUS = "status", "Status"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=16, choices=Type.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="event_seq_unique"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="event_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq}"

    def frame(self) -> dict[str, object]:
        """The frame clients receive for this event."""
        return {**self.payload, "type": self.type, "seq": self.seq}
