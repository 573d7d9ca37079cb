"""Desk events about agents' presence. Events about tickets, and the desk's groups, are the
tickets app's (apps/tickets/realtime.py); access revoked is the desk's (apps/desk/realtime.py)."""

import uuid

from apps.core.realtime import publish_on_commit
from apps.tickets.realtime import DESK_ALL, desk_pool_group


def desk_presence_publish(*, user_id: int, presence: str, pool_ids: list[int]) -> None:
    """After commit, tell the agent's pools (and supervisors) that their presence changed."""
    event = {"type": "desk.presence", "id": uuid.uuid4().hex, "user": user_id, "presence": presence}
    for group in sorted({DESK_ALL, *(desk_pool_group(pool_id) for pool_id in pool_ids)}):
        publish_on_commit(group, event)
