"""Review items, audit samples and the routing labels they and the desk produce."""

from django.conf import settings
from django.db import models

from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.tickets.models import Ticket


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


class ReviewItem(models.Model):
    """A ticket a person must route (kind `review`), or an automatic decision sampled for a
    person to check (kind `audit`, which does not hold the ticket)."""

    class Kind(models.TextChoices):
        REVIEW = "review", "Review"
        AUDIT = "audit", "Audit sample"

    class Reason(models.TextChoices):
        LOW_CONFIDENCE = "low_confidence", "Low confidence"
        NO_POOL_FITS = "no_pool_fits", "No pool fits"
        INVALID_OUTPUT = "invalid_output", "Invalid model output after retry"
        CONSISTENCY = "consistency_failure", "Consistency failure"
        INJECTION = "suspected_injection", "Suspected injection"
        PROVIDER_UNAVAILABLE = "provider_unavailable", "Provider unavailable"
        LLM_DISABLED = "llm_disabled", "No model tier available"
        REFUSED_INPUT = "refused_input", "Input refused by validation"
        HUMAN_REQUESTED = "human_requested_no_pool", "Customer asked for a person, no pool fits"
        AUDIT = "audit", "Audit sample"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    class Verdict(models.TextChoices):
        CONFIRMED = "confirmed", "Suggested pool confirmed"
        ROUTED = "routed", "Routed to a chosen pool"
        NO_POOL = "no_pool", "Other / no pool"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="review_items")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REVIEW)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    # The final routing decision that sent it here (review) or that is audited (audit).
    decision = models.ForeignKey(
        RoutingDecision, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The tier of that decision: audit samples are stratified by it.
    tier = models.CharField(max_length=16, blank=True, db_index=True)
    suggested_pool = models.ForeignKey(
        Pool, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Candidate pools with their scores, best first: [{"pool": slug, "score": 0.62}, ...].
    candidates = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    verdict_pool = models.ForeignKey(
        Pool, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("resolve_reviewitem", "Can resolve review items")]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "kind"],
                condition=models.Q(status="open"),
                name="one_open_review_item_per_ticket_and_kind",
            ),
            models.CheckConstraint(
                condition=models.Q(status="open", verdict="")
                | (models.Q(status="resolved") & ~models.Q(verdict="")),
                name="verdict_iff_resolved",
            ),
        ]
        indexes = [models.Index(fields=["status", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ticket={self.ticket_id} ({self.reason})"


class TrainingExample(models.Model):
    """A curated example the local model was trained on (an imported data set, the shipped seed
    examples): the base every retraining starts from, with people's labels added on top."""

    text = models.TextField()
    # A pool slug, an intent slug (an `Intent` of a pool: the model that learns it is a model
    # of intents) or "other"; a string, not a key, so that a data set may name pools that are
    # inactive or not created yet (a retraining uses the labels of active pools only).
    label = models.CharField(max_length=64, db_index=True)
    dataset = models.CharField(max_length=200, blank=True, help_text="Where it came from.")
    # SHA-256 of (label, text): one row per example, and an index that long texts fit in.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.label}: {self.text[:60]}"
