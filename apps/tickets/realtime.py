"""Who hears about a ticket, and the events services publish to them.

Desks listen in channel-layer groups: one per pool, one per staff user, one for supervisors (every
ticket, including those without a pool) and one per ticket for the staff viewing it. Change events
name a ticket and what changed, never customer text: desks refetch what they may see. Customer
text reaches a desk only through a ticket it subscribed to after a permission check.
"""

import uuid
from typing import Any

from apps.core.realtime import Publication, publish_many_on_commit, publish_on_commit
from apps.tickets.models import Ticket

DESK_ALL = "desk.all"  # supervisors: every ticket, including those without a pool


def desk_pool_group(pool_id: int) -> str:
    return f"desk.pool.{pool_id}"


def desk_user_group(user_id: int) -> str:
    return f"desk.user.{user_id}"


def desk_ticket_group(ticket_id: int) -> str:
    """Staff viewing one ticket: notes, activity, drafts (never the customer's group)."""
    return f"desk.ticket.{ticket_id}"


def desk_ticket_publications(
    ticket: Ticket,
    *,
    change: str,
    previous_pool_id: int | None = None,
    previous_assignee_id: int | None = None,
) -> list[Publication]:
    """The desk events that tell every desk listing this ticket (before or after the change).

    Every desk that can list or view a ticket is in its pool's group or is a supervisor's
    (assignees work the pool; a move is heard in the old pool too), so those groups suffice:
    each group costs a channel-layer round trip on every customer message. A socket in several
    of them (a supervisor who works a pool) drops repeats by the event's `id`.
    """
    event = {
        "type": "desk.ticket",
        "id": uuid.uuid4().hex,
        "ticket": ticket.pk,
        "change": change,
        "status": ticket.status,
        "pool": ticket.pool_id,
        "assignee": ticket.assignee_id,
    }
    groups = {DESK_ALL}
    for pool_id in (ticket.pool_id, previous_pool_id):
        if pool_id is not None:
            groups.add(desk_pool_group(pool_id))
    for user_id in (ticket.assignee_id, previous_assignee_id):
        if user_id is not None and ticket.pool_id is None and previous_pool_id is None:
            groups.add(desk_user_group(user_id))  # not reached through a pool
    return [(group, event) for group in sorted(groups)]


def desk_ticket_publish(
    ticket: Ticket,
    *,
    change: str,
    previous_pool_id: int | None = None,
    previous_assignee_id: int | None = None,
) -> None:
    """After commit, tell every desk that lists this ticket (before or after the change)."""
    publish_many_on_commit(
        desk_ticket_publications(
            ticket,
            change=change,
            previous_pool_id=previous_pool_id,
            previous_assignee_id=previous_assignee_id,
        )
    )


def desk_ticket_item_publish(ticket_id: int, kind: str, item: dict[str, Any]) -> None:
    """After commit, send a staff-only item (note, activity, draft) to the ticket's viewers."""
    publish_on_commit(
        desk_ticket_group(ticket_id),
        {"type": "desk.item", "ticket": ticket_id, "kind": kind, "item": item},
    )
