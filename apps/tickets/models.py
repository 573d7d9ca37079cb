"""Tickets: a customer's request for help, its lifecycle (status, pool, assignee, SLA clock) and
what happened to it (activity)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class Ticket(TimeStampedModel):
    """A request for help. A conversation has at most one ticket that is not resolved."""

    class Status(models.TextChoices):
        ROUTING = "routing", "Routing"
        AWAITING_CUSTOMER = "awaiting_customer", "Awaiting customer"
        QUEUED = "queued", "Queued"
        ASSIGNED = "assigned", "Assigned"
        IN_REVIEW = "in_review", "In review"
        RESOLVED = "resolved", "Resolved"

    conversation = models.ForeignKey(
        "chat.Conversation", on_delete=models.CASCADE, related_name="tickets"
    )
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.ROUTING, db_index=True
    )
    pool = models.ForeignKey(
        "pools.Pool", on_delete=models.PROTECT, null=True, blank=True, related_name="tickets"
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
        db_table = "chat_ticket"  # the table predates this app
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


class TicketActivity(models.Model):
    """One thing that happened to a ticket (append-only: the desk shows it, reports count it)."""

    class Kind(models.TextChoices):
        QUEUED = "queued", "Queued"
        ASSIGNED = "assigned", "Assigned"
        CLAIMED = "claimed", "Claimed"
        UNASSIGNED = "unassigned", "Unassigned"
        RETURNED = "returned", "Returned to the queue (agent offline)"
        REROUTED = "rerouted", "Moved to another pool"
        RESOLVED = "resolved", "Resolved"
        REOPENED = "reopened", "Reopened"
        HUMAN_REQUESTED = "human_requested", "Customer asked for a person"
        SLA_BREACHED = "sla_breached", "First-response SLA breached"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    pool = models.ForeignKey(
        "pools.Pool", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "pools_ticketactivity"  # the table predates this app
        ordering = ["created_at", "id"]
        verbose_name_plural = "ticket activities"
        indexes = [models.Index(fields=["kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} ticket={self.ticket_id}"
