"""Intents: the fine-grained labels a pool holds (the local model can learn them and route to
the pool by the summed probability of its intents; docs/orchestrator.md, "Intents")."""

from django.db import models

from apps.core.models import TimeStampedModel
from apps.pools.models.pool import Pool


class Intent(TimeStampedModel):
    """What a customer wants, finer than a pool (`cancel_order` in refund). Each intent belongs
    to exactly one pool: its slug is unique."""

    slug = models.SlugField(max_length=64, unique=True)
    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="intents")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["pool__name", "slug"]

    def __str__(self) -> str:
        return f"{self.slug} ({self.pool.slug})"
