"""Desk events about agents: presence, and access revoked. Events about tickets, and the desk's
groups, are the tickets app's (apps/tickets/realtime.py)."""

import uuid

from apps.core.realtime import publish_on_commit
from apps.tickets.realtime import DESK_ALL, desk_pool_group, desk_user_group


def desk_presence_publish(*, user_id: int, presence: str, pool_ids: list[int]) -> None:
    """After commit, tell the agent's pools (and supervisors) that their presence changed."""
    event = {"type": "desk.presence", "id": uuid.uuid4().hex, "user": user_id, "presence": presence}
    for group in sorted({DESK_ALL, *(desk_pool_group(pool_id) for pool_id in pool_ids)}):
        publish_on_commit(group, event)


def desk_access_revoked_publish(*, user_id: int) -> None:
    """Close the user's open desk sockets (after commit): they were deactivated or are no
    longer staff. A socket checks again on every frame too; this does not wait for one."""
    publish_on_commit(desk_user_group(user_id), {"type": "desk.revoked"})
