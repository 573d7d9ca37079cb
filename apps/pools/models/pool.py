"""Agent pools (the teams a ticket can be routed to; the set is data, not code), their members,
their capacity and presence."""

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel

FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def validate_required_fields(value: Any) -> None:
    """Required fields are a list of distinct snake_case names."""
    if not isinstance(value, list) or not all(
        isinstance(item, str) and FIELD_NAME.match(item) for item in value
    ):
        raise ValidationError('Give a list of snake_case names, e.g. ["order_number"].')
    if len(set(value)) != len(value):
        raise ValidationError("Required fields must not repeat.")


class Pool(TimeStampedModel):
    """A team of agents. Only active pools can receive tickets."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(
        help_text="What this team handles; the router reads it to choose a pool."
    )
    active = models.BooleanField(default=True, db_index=True)
    required_fields = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_required_fields],
        help_text='Facts the team needs before it can act, e.g. ["order_number"].',
    )
    first_response_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(1)],
        help_text="SLA: minutes from a ticket's arrival to the first reply by a person.",
    )

    class Meta:
        ordering = ["name"]
        permissions = [("supervise", "Can see and act on the tickets of every pool")]

    def __str__(self) -> str:
        return self.name


class PoolMembership(TimeStampedModel):
    """A staff user works a pool's queue."""

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pool_memberships"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "user"], name="one_membership_per_pool_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.pool}"


class AgentProfile(TimeStampedModel):
    """A staff user's capacity and presence. Presence comes from their desk sockets."""

    class Presence(models.TextChoices):
        ONLINE = "online", "Online"
        AWAY = "away", "Away"
        OFFLINE = "offline", "Offline"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile"
    )
    capacity = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Most tickets assigned to this agent at once.",
    )
    presence = models.CharField(
        max_length=16, choices=Presence.choices, default=Presence.OFFLINE, db_index=True
    )
    # Open desk sockets; presence is offline when none is left (or none was heard from lately).
    sockets = models.PositiveIntegerField(default=0)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # When the last socket closed; assigned tickets return to the queue after a grace period.
    offline_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(presence="offline") | Q(sockets=0), name="offline_agent_has_no_socket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.presence})"
