"""What the desk keeps beside a ticket: internal notes, AI drafts, gathered context, and the
canned replies agents share. The tables keep the names they had in the pools app."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class InternalNote(TimeStampedModel):
    """A note between staff on a ticket. Stored apart from messages: it has no path to the
    customer's event log."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    text = models.TextField()

    class Meta:
        db_table = "pools_internalnote"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note on ticket {self.ticket_id}"


class DraftReply(models.Model):
    """An AI-drafted answer for an agent to edit. Never sent by itself; its cost is recorded."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # asked for; the model is called in the background
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="drafts")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    text = models.TextField(blank=True)
    model = models.CharField(max_length=100, blank=True)
    prompt_version = models.CharField(max_length=40, blank=True)
    error = models.CharField(max_length=500, blank=True)
    latency_ms = models.FloatField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_creation_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "pools_draftreply"
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(cost_usd__gte=0), name="draft_cost_not_negative")
        ]

    def __str__(self) -> str:
        return f"draft {self.status} ticket={self.ticket_id}"


class TicketContext(models.Model):
    """Background for the agent, gathered when the ticket is routed. Each source is
    time-bounded; one that timed out or failed is named in `missing`."""

    ticket = models.OneToOneField(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="context"
    )
    earlier_tickets = models.JSONField(default=list, blank=True)
    similar_tickets = models.JSONField(default=list, blank=True)
    canned_replies = models.JSONField(default=list, blank=True)
    timings_ms = models.JSONField(default=dict, blank=True)
    missing = models.JSONField(default=list, blank=True)
    gathered_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "pools_ticketcontext"

    def __str__(self) -> str:
        return f"context of ticket {self.ticket_id}"


class CannedReply(TimeStampedModel):
    """A saved answer. Placeholders: {customer_name}, {agent_name}, {pool_name}, {ticket_id}."""

    pool = models.ForeignKey(
        "pools.Pool",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_replies",
        help_text="Leave empty to offer it in every pool.",
    )
    title = models.CharField(max_length=120)
    text = models.TextField()
    active = models.BooleanField(default=True)

    class Meta:
        db_table = "pools_cannedreply"
        ordering = ["title"]
        verbose_name_plural = "canned replies"

    def __str__(self) -> str:
        return self.title
