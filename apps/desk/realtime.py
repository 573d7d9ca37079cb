"""Desk events about a user's access: a deactivated user's desk sockets close at once."""

from apps.core.realtime import publish_on_commit
from apps.tickets.realtime import desk_user_group


def desk_access_revoked_publish(*, user_id: int) -> None:
    """Close the user's open desk sockets (after commit): they were deactivated or are no
    longer staff. A socket checks again on every frame too; this does not wait for one."""
    publish_on_commit(desk_user_group(user_id), {"type": "desk.revoked"})
