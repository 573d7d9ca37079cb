"""Review items, audit samples and the routing labels they and the desk produce."""

from django.conf import settings
from django.db import models

from apps.chat.models import Ticket
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool


class RoutingLabel(models.Model):
    """The pool a ticket truly belonged to, as a person said: the truth accuracy reports and
    retraining use. Append-only."""

    class Source(models.TextChoices):
        REROUTE = "reroute", "Agent moved it to another pool"
        REVIEW = "review", "Review verdict"
        AUDIT = "audit", "Audit verdict"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="labels")
    # The automatic decision this label judges (the ticket's final routing decision).
    decision = models.ForeignKey(
        RoutingDecision, on_delete=models.SET_NULL, null=True, blank=True, related_name="labels"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    previous_pool = models.ForeignKey(
        Pool, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # None: no pool fits ("other").
    pool = models.ForeignKey(
        Pool, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    text = models.TextField(blank=True, help_text="The minimised customer text, for retraining.")
    reason = models.CharField(max_length=500, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["source", "created_at"])]

    def __str__(self) -> str:
        return f"{self.source}: ticket {self.ticket_id} → {self.pool_id}"
