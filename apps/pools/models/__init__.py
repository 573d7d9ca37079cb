"""Pools: teams, their members, and each agent's capacity and presence."""

from apps.pools.models.pool import (
    AgentProfile,
    Pool,
    PoolMembership,
    validate_required_fields,
)

__all__ = [
    "AgentProfile",
    "Pool",
    "PoolMembership",
    "validate_required_fields",
]
