"""Agent pools: the teams a ticket can be routed to. The set is data, not code."""

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

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

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
