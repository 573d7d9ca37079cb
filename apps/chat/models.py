"""Customers, conversations, messages, attachments and the per-conversation event log."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


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
        "tickets.Ticket", on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
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
