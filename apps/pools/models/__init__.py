"""Pools and the desk: teams, their members, canned replies, and what agents do to tickets."""

from apps.pools.models.desk import DraftReply, InternalNote, TicketContext
from apps.pools.models.pool import (
    AgentProfile,
    CannedReply,
    Pool,
    PoolMembership,
    validate_required_fields,
)

__all__ = [
    "AgentProfile",
    "CannedReply",
    "DraftReply",
    "InternalNote",
    "Pool",
    "PoolMembership",
    "TicketContext",
    "validate_required_fields",
]
