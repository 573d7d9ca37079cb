"""Pools: teams, their members, and each agent's capacity and presence."""

from apps.pools.models.intent import Intent
from apps.pools.models.pool import (
    AgentProfile,
    Pool,
    PoolMembership,
    validate_required_fields,
)

__all__ = [
    "AgentProfile",
    "Intent",
    "Pool",
    "PoolMembership",
    "validate_required_fields",
]
