"""Routing configuration and the append-only record of every routing decision."""

import uuid
from datetime import datetime
from typing import Any, Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q

from apps.core.errors import Conflict
from apps.core.models import TimeStampedModel
from apps.orchestrator.rule_engine import RulePatternError, rule_pattern_compile
from apps.pools.models import Intent, Pool
from apps.tickets.models import Ticket

APPEND_ONLY = "Prompt versions are append-only: create a new version from this one instead."


class PromptVersionQuerySet(models.QuerySet["PromptVersion"]):
    """Bulk writes that would rewrite or remove a version are refused; only the `active` switch
    (done by the activation service, which audits it) may be updated in bulk."""

    def update(self, **kwargs: object) -> int:
        if set(kwargs) - {"active"}:
            raise Conflict(APPEND_ONLY)
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise Conflict(APPEND_ONLY)


class PromptVersion(models.Model):
    """An immutable router prompt: a template with `{pools}`, few-shot examples, and labelled
    examples the router shows until its prefix is long enough to be cached.

    Append-only: a saved version is never rewritten (an edit is a new version whose parent is
    the edited one) and never deleted, so every decision's prompt can be read back as it was.
    """

    purpose = models.CharField(max_length=32, default="router", db_index=True)
    text = models.TextField(help_text="System prompt template; `{pools}` lists the active pools.")
    few_shot = models.JSONField(
        default=list, blank=True, help_text='[{"text": "...", "pool": "billing"}, ...]'
    )
    # Part of the version like the template: a decision's prompt version (with the active
    # pools) says exactly which examples the model saw. Changing them means a new version.
    examples = models.JSONField(
        default=list,
        blank=True,
        help_text="Labelled examples [{text, pool}], most useful first (prompt_examples "
        "chooses them); the router shows as many as fill its cached prefix.",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PromptVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("activate_promptversion", "Can activate prompt versions and run prompt A/B tests")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose"], condition=Q(active=True), name="one_active_prompt_per_purpose"
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose} prompt v{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or set(update_fields) - {"active"}:
                raise Conflict(APPEND_ONLY)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise Conflict(APPEND_ONLY)


class PromptExperiment(models.Model):
    """An A/B test of two prompt versions: the variant serves a stable `split` share of tickets
    (by a hash of experiment id and ticket id), the control the rest. At most one runs per
    purpose; it ends when a manager promotes a winner (the control may win)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        ENDED = "ended", "Ended"

    purpose = models.CharField(max_length=32, default="router")
    control = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    variant = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    split = models.FloatField(default=0.5, help_text="Share of tickets that get the variant.")
    note = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    winner = models.ForeignKey(
        PromptVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose"],
                condition=Q(status="running"),
                name="one_running_prompt_experiment_per_purpose",
            ),
            models.CheckConstraint(
                condition=Q(split__gt=0) & Q(split__lt=1), name="experiment_split_between_0_and_1"
            ),
            models.CheckConstraint(
                condition=~Q(control=models.F("variant")), name="experiment_arms_differ"
            ),
            models.CheckConstraint(
                condition=Q(status="running", ended_at__isnull=True, winner__isnull=True)
                | Q(status="ended", ended_at__isnull=False, winner__isnull=False),
                name="experiment_ended_iff_winner",
            ),
        ]

    def __str__(self) -> str:
        return f"A/B #{self.pk}: v{self.control_id} vs v{self.variant_id}"


class PromptActivation(models.Model):
    """One switch of the active prompt (an activation, a rollback, or an A/B winner promoted):
    who, when, from which version to which. Append-only."""

    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="activations")
    # The version that was active before; None when there was none.
    previous = models.ForeignKey(
        PromptVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Set when the switch promoted the winner of this A/B test.
    experiment = models.ForeignKey(
        PromptExperiment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        previous = f"v{self.previous_id}" if self.previous_id else "none"
        return f"prompt {previous} → v{self.version_id}"


class RoutingRule(TimeStampedModel):
    """An admin-editable pattern that routes a ticket without any model call."""

    class Kind(models.TextChoices):
        KEYWORD = "keyword", "Keyword or phrase (whole words, any case)"
        REGEX = "regex", "Regular expression (any case)"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.KEYWORD)
    pattern = models.CharField(max_length=500)
    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="rules")
    priority = models.IntegerField(default=100, help_text="Higher runs first.")
    active = models.BooleanField(default=True, db_index=True)

    class Meta:
        ordering = ["-priority", "id"]

    def __str__(self) -> str:
        return f"{self.name} → {self.pool.slug}"

    def clean(self) -> None:
        if not self.pattern.strip():
            raise ValidationError({"pattern": "A rule needs a pattern."})
        try:
            rule_pattern_compile(self.pattern, regex=self.kind == self.Kind.REGEX)
        except RulePatternError as exc:
            raise ValidationError({"pattern": str(exc)}) from exc


class ModelVersion(models.Model):
    """A trained local classifier, stored signed, with the metrics it was evaluated on."""

    class Kind(models.TextChoices):
        POOL = "pool", "Pools (a label per pool)"
        INTENT = "intent", "Intents (a pool by the summed probability of its intents)"

    created_at = models.DateTimeField(auto_now_add=True)
    # What it predicts: pool slugs (and `other`), whatever its kind.
    labels = models.JSONField(default=list)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.POOL)
    artifact = models.BinaryField()
    signature = models.CharField(max_length=64, help_text="HMAC-SHA256 of the artifact.")
    metrics = models.JSONField(default=dict, blank=True)
    threshold = models.FloatField(
        help_text="Score at or above which the local tier decides: the margin (top probability "
        "less the runner-up's), with the neighbour gap for a model that keeps its training "
        "texts' embeddings ((margin + gap + 2) / 5); confidence for a model trained before margins."
    )
    # Pool slug -> a lower threshold of its own, for the pools whose own out-of-sample precision
    # holds at it (retraining's fast start); the lower of the two applies.
    pool_thresholds = models.JSONField(default=dict, blank=True)
    training_examples = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=False, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["active"], condition=Q(active=True), name="one_active_model_version"
            ),
            models.CheckConstraint(
                condition=Q(threshold__gte=0) & Q(threshold__lte=1),
                name="model_threshold_between_0_and_1",
            ),
        ]

    def __str__(self) -> str:
        return f"local model v{self.pk}"


class ModelVersionActivation(models.Model):
    """One switch of the active local model (a retraining that passed its gate, or a person
    activating or rolling back to a version): who, when, from which version to which.
    Append-only."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="activations")
    # The version that was active before; None when the local tier was off.
    previous = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # None: automatic (retraining).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        previous = f"v{self.previous_id}" if self.previous_id else "none"
        return f"local model {previous} → v{self.version_id}"


# A decision receipt's columns, written once. The CSV export has them in this order (tools read
# its columns by position, so new ones go at the end); the decisions API and the dry-run API
# serialise the subsets `decision_columns` gives them. `ticket_pool` (the ticket's pool now) and
# `trail` (the run's tiers) are derived, not fields.
DECISION_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "ticket",
    "ticket_pool",
    "request_id",
    "trail",
    "tier",
    "action",
    "pool",
    "model",
    "prompt_version",
    "confidence",
    "valid",
    "error",
    "reason",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "cost_usd",
    "final",
    "input_minimised",
    "attempts",
    "model_version",
    "rule",
    "intent",
)

# Columns named otherwise than their field: the names above are the public contract (API fields,
# CSV headers, the `final=1` drill-down) and stayed when the fields got names that say what they
# hold.
DECISION_COLUMN_FIELDS: dict[str, str] = {"final": "ends_run", "input_minimised": "redacted"}


def decision_columns(*, without: tuple[str, ...] = ()) -> list[str]:
    """The receipt's columns in their one order, less `without` (which must all be columns)."""
    unknown = set(without) - set(DECISION_COLUMNS)
    if unknown:
        raise ValueError(f"not decision columns: {sorted(unknown)}")
    return [column for column in DECISION_COLUMNS if column not in without]


class RoutingDecisionQuerySet(models.QuerySet["RoutingDecision"]):
    """The filters reports, alerts, training and webhooks share.

    Words: a *real* decision belongs to a ticket and is no dry run; a *deciding* decision is
    the attempt that ended its pipeline run (`ends_run`); a ticket's *outcome* is its
    latest deciding decision; a *window* is half-open, [since, until).
    """

    def real(self) -> Self:
        """Decisions of real tickets: no dry runs, no decision without a ticket."""
        return self.filter(dry_run=False, ticket__isnull=False)

    def deciding(self) -> Self:
        """The attempts that ended their pipeline run (one per run)."""
        return self.filter(ends_run=True)

    def ticket_outcomes(self) -> Self:
        """Each ticket's latest deciding decision (among those still in this queryset), when no
        later deciding decision of a real run exists for the ticket."""
        # Decisions are append-only, so a larger id is a later decision.
        later = RoutingDecision.objects.filter(
            ticket=OuterRef("ticket"), ends_run=True, dry_run=False, id__gt=OuterRef("id")
        )
        return self.real().deciding().filter(~Exists(later))

    def in_window(self, *, since: datetime, until: datetime) -> Self:
        """Decisions created in [since, until): `since` included, `until` not, so adjacent
        windows share no decision."""
        return self.filter(created_at__gte=since, created_at__lt=until)


class RoutingDecision(models.Model):
    """One tier's attempt at routing one ticket (or one dry-run text). Never edited."""

    class Tier(models.TextChoices):
        VALIDATION = "validation", "Input validation"
        RULES = "rules", "Rules"
        CACHE = "cache", "Decision cache"
        LOCAL = "local", "Local model"
        LLM = "llm", "Router LLM"
        ESCALATION = "escalation", "Escalation LLM"
        CLARIFY = "clarify", "Clarify"
        HANDOFF = "handoff", "Customer asked for a person"
        REVIEW = "review", "Review queue"

    class Action(models.TextChoices):
        ROUTE = "route", "Route"
        ESCALATE = "escalate", "Escalate"
        CLARIFY = "clarify", "Clarify"
        PASS = "pass", "Pass to next tier"
        REVIEW = "review", "Send to review"

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="decisions"
    )
    request_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    tier = models.CharField(max_length=16, choices=Tier.choices)
    model = models.CharField(max_length=100, blank=True)
    prompt_version = models.ForeignKey(
        PromptVersion, on_delete=models.PROTECT, null=True, blank=True
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True
    )
    rule = models.ForeignKey(RoutingRule, on_delete=models.SET_NULL, null=True, blank=True)
    # The customer text as the router saw it: PII redacted by input validation. The column is
    # `input_minimised` in the APIs and the CSV (DECISION_COLUMN_FIELDS).
    redacted = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    pool = models.ForeignKey(Pool, on_delete=models.SET_NULL, null=True, blank=True)
    # The intent of `pool` a local model of intents routed on (its most likely intent there).
    intent = models.ForeignKey(Intent, on_delete=models.SET_NULL, null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    valid = models.BooleanField(default=True)
    error = models.CharField(max_length=500, blank=True)
    latency_ms = models.FloatField(default=0)
    # HTTP requests a provider call took (1 + the SDK's retries); 0 for tiers that call none.
    attempts = models.PositiveSmallIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_creation_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    # The attempt that ended its pipeline run (the run's outcome; `deciding()`), which is not
    # always a ticket's last decision (`ticket_outcomes()`). The column is `final` in the APIs,
    # the CSV and the `final=1` drill-down (DECISION_COLUMN_FIELDS).
    ends_run = models.BooleanField(default=False)
    dry_run = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = RoutingDecisionQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__isnull=True)
                | (Q(confidence__gte=0) & Q(confidence__lte=1)),
                name="decision_confidence_between_0_and_1",
            ),
            models.CheckConstraint(condition=Q(cost_usd__gte=0), name="decision_cost_not_negative"),
        ]
        indexes = [
            models.Index(fields=["tier", "created_at"]),
            models.Index(fields=["ends_run", "created_at"]),
            models.Index(fields=["pool", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.tier}:{self.action} ticket={self.ticket_id}"
