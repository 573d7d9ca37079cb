"""Write-side operations for pools: membership, assignment, and what agents do to the tickets
of their queues (claim, unassign, resolve, reopen, reply). Every action checks the actor's right
to the ticket here, not in a view. Presence is in `apps/pools/presence.py`; the desk's own
actions (notes, "wrong pool", canned replies) in `apps/desk/services.py`.

Assignment: a queued ticket goes to the least-loaded online member of its pool with room under
their capacity; when everyone is full it waits, oldest first, and is assigned as soon as
capacity frees (a resolve, an unassign, an agent coming online, a capacity change).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from apps.chat.models import Attachment, Message
from apps.core.errors import Conflict, NotFound, PermissionDenied
from apps.core.sql import rows_where
from apps.pools import selectors
from apps.pools.hooks import ticket_queued_listeners
from apps.pools.models import AgentProfile, Intent, Pool, PoolMembership
from apps.tickets.models import Ticket, TicketActivity
from apps.tickets.payloads import ticket_resolved_payload, ticket_routed_payload
from apps.tickets.realtime import desk_ticket_publish
from apps.tickets.services import ticket_activity_add, ticket_message_post, ticket_status_set
from apps.webhooks.services import webhook_event_emit

Status = Ticket.Status
Kind = TicketActivity.Kind
Presence = AgentProfile.Presence
OPEN_FOR_AGENTS = (Status.QUEUED, Status.ASSIGNED)


@transaction.atomic
def pool_upsert(
    *,
    slug: str,
    name: str,
    description: str,
    required_fields: list[str] | None = None,
    first_response_minutes: int | None = None,
) -> Pool:
    """Create the pool `slug` or update its name, description, required fields and SLA."""
    defaults: dict[str, Any] = {
        "name": name,
        "description": description,
        "required_fields": list(required_fields or []),
    }
    if first_response_minutes is not None:
        defaults["first_response_minutes"] = first_response_minutes
    pool, _created = Pool.objects.update_or_create(slug=slug, defaults=defaults)
    pool.full_clean()
    return pool


def intent_ensure(*, slug: str, pool: Pool) -> Intent:
    """The intent `slug` of `pool`, created if new. An intent belongs to one pool: one already
    in another pool is a Conflict (moving it is an admin's decision, not a training run's)."""
    intent, _created = Intent.objects.select_related("pool").get_or_create(
        slug=slug, defaults={"pool": pool}
    )
    if intent.pool_id != pool.pk:
        raise Conflict(f"Intent {slug!r} is in pool {intent.pool.slug!r}, not {pool.slug!r}.")
    intent.full_clean()
    return intent


def agent_profile_get(*, user: Any) -> AgentProfile:
    """The user's agent profile, created with the default capacity on first use."""
    profile, _created = AgentProfile.objects.get_or_create(user_id=user.pk)
    return profile


@transaction.atomic
def pool_membership_set(*, user: Any, pools: Iterable[Pool], capacity: int | None = None) -> None:
    """Make `user` a member of exactly `pools` (and set their capacity), then fill their queue."""
    wanted = {pool.pk: pool for pool in pools}
    PoolMembership.objects.filter(user_id=user.pk).exclude(pool_id__in=wanted).delete()
    for pool in wanted.values():
        PoolMembership.objects.get_or_create(user_id=user.pk, pool=pool)
    profile = agent_profile_get(user=user)
    if capacity is not None:
        profile.capacity = capacity
        profile.full_clean()
        profile.save(update_fields=["capacity", "updated_at"])
    agent_queues_fill(user=user)


@transaction.atomic
def agent_queues_fill(*, user: Any) -> list[int]:
    """After the user's pools or capacity changed: tickets assigned to them in pools they no
    longer work (and so can no longer open) go back to those queues, and the waiting tickets of
    their pools fill their free slots, longest waiting first. Returns the ids assigned."""
    if not selectors.user_is_supervisor(user):
        left = (
            Ticket.objects.select_for_update(no_key=True)
            .filter(status=Status.ASSIGNED, assignee_id=user.pk)
            .exclude(pool_id__in=selectors.user_pool_ids(user=user))
        )
        for ticket in left:
            ticket_requeue(ticket=ticket, kind=Kind.UNASSIGNED, actor=None)
    return agent_slots_fill(user_id=user.pk)


# --- queue and assignment -------------------------------------------------------------------


def ticket_queue(
    *,
    ticket: Ticket,
    pool: Pool,
    actor: Any = None,
    exclude_user_id: int | None = None,
    tier: str | None = None,
) -> Ticket:
    """Put a ticket in `pool`'s queue and assign it if a member has room.

    Called by routing (which names the `tier` that chose the pool), by the review queue and by
    "wrong pool". The SLA clock starts when the ticket first reaches a queue and is not
    restarted by a move.
    """
    with transaction.atomic(savepoint=False):  # see ticket_status_set
        previous_pool_id, previous_assignee_id = ticket.pool_id, ticket.assignee_id
        previous_pool_slug = ticket.pool.slug if ticket.pool is not None else None
        now = timezone.now()
        ticket.assignee = None
        ticket.assigned_at = None
        ticket.queued_at = ticket.queued_at or now
        ticket.pool = pool
        if ticket.sla_due_at is None:
            ticket.sla_due_at = ticket.created_at + timedelta(minutes=pool.first_response_minutes)
        ticket_status_set(
            ticket=ticket,
            status=Status.QUEUED,
            change="queued",
            previous_pool_id=previous_pool_id,
            previous_assignee_id=previous_assignee_id,
        )
        ticket_activity_add(ticket, Kind.QUEUED, actor=actor, pool=pool.slug)
        assigned = pool_assign_waiting(pool=pool, exclude_user_id=exclude_user_id, held=ticket)
        assigned += agent_slots_fill(user_id=previous_assignee_id)
        # Listeners (the desk gathers the agent's context: the pool's canned replies, similar
        # tickets) hear of every arrival in a queue (routed, reviewed, moved, reopened).
        # Robust: what they do is a help for the agent; failing it must not fail the move.
        ticket_id = ticket.pk
        for listener in ticket_queued_listeners():
            transaction.on_commit(partial(listener, ticket_id), robust=True)
    if ticket.pk in assigned and ticket.status != Status.ASSIGNED:
        ticket.refresh_from_db()  # assigned through another instance of it (a freed slot)
    webhook_event_emit(
        event="ticket.routed",
        payload=lambda: ticket_routed_payload(
            ticket=ticket, previous_pool=previous_pool_slug, actor=actor, tier=tier
        ),
    )
    return ticket


def _ticket_assign(ticket: Ticket, agent: Any, *, kind: str, actor: Any = None) -> None:
    previous_assignee_id = ticket.assignee_id
    ticket.assignee = agent
    ticket.assigned_at = timezone.now()
    ticket_status_set(
        ticket=ticket,
        status=Status.ASSIGNED,
        change="assigned",
        previous_assignee_id=previous_assignee_id,
    )
    ticket_activity_add(ticket, kind, actor=actor, assignee=agent.get_username())


def ticket_requeue(*, ticket: Ticket, kind: str, actor: Any) -> None:
    """Back to the front of its pool's queue (its `queued_at` is kept), then reassign."""
    previous_assignee_id = ticket.assignee_id
    ticket.assignee = None
    ticket.assigned_at = None
    ticket_status_set(
        ticket=ticket,
        status=Status.QUEUED,
        change="unassigned",
        previous_assignee_id=previous_assignee_id,
    )
    ticket_activity_add(ticket, kind, actor=actor)
    assert ticket.pool is not None
    pool_assign_waiting(pool=ticket.pool, exclude_user_id=previous_assignee_id)
    agent_slots_fill(user_id=previous_assignee_id)


def agent_slots_fill(*, user_id: int | None, pool: Pool | None = None) -> list[int]:
    """Offer the free slots of `user_id` (who came online, or whose ticket left them) to the
    waiting tickets of all their active pools, the pool whose ticket has waited longest first;
    `pool`'s queue is filled too. Returns the ids assigned."""
    pool_ids = set(
        Pool.objects.filter(memberships__user_id=user_id, active=True).values_list("pk", flat=True)
        if user_id is not None
        else []
    )
    if pool is not None:
        pool_ids.add(pool.pk)
    if not pool_ids:
        return []
    waiting = (
        Pool.objects.filter(pk__in=pool_ids, tickets__status=Status.QUEUED)
        .annotate(oldest=Min("tickets__queued_at"))
        .order_by("oldest", "pk")
    )
    assigned: list[int] = []
    for waiting_pool in waiting:
        assigned += pool_assign_waiting(pool=waiting_pool)
    return assigned


def pool_assign_waiting(
    *, pool: Pool, exclude_user_id: int | None = None, held: Ticket | None = None
) -> list[int]:
    """Assign the pool's queued tickets, oldest first, each to the least-loaded online member
    with room. Returns the ids of the tickets assigned. `held`: the caller's current instance
    of one of them (the ticket it just queued), assigned as itself.

    Serialised per pool by a row lock; the members' profiles are locked in id order so two
    pools sharing an agent cannot both fill their last slot.
    """
    assigned: list[int] = []
    with transaction.atomic(savepoint=False):  # see ticket_status_set
        rows_where(Pool, [("id", "=", pool.pk)], columns=["id"], lock=True)  # every routed ticket
        agents = selectors.pool_agents_online(pool=pool, lock=True)
        if not agents:
            return assigned
        load = selectors.agent_load(user_ids=[agent.user_id for agent in agents])
        room = {agent.user_id: agent.capacity - load.get(agent.user_id, 0) for agent in agents}
        slots = sum(max(0, free) for free in room.values())
        if slots == 0:
            return assigned
        waiting = rows_where(
            Ticket,
            [("pool", "=", pool.pk), ("status", "=", Status.QUEUED)],
            order_by=("queued_at", "id"),
            limit=slots,
            lock=True,
        )
        users = {agent.user_id: agent.user for agent in agents}
        for ticket in waiting:
            if held is not None and held.pk == ticket.pk:
                ticket = held
            ticket.pool = pool
            # The excluded agent (who just gave a ticket back) is passed over only while
            # someone else has room: a free slot is never left idle while tickets wait.
            others_have_room = any(
                free > 0 for user_id, free in room.items() if user_id != exclude_user_id
            )
            choices = [
                user_id
                for user_id, free in room.items()
                if free > 0 and not (user_id == exclude_user_id and others_have_room)
            ]
            if not choices:
                break
            # Least loaded first; ties go to whoever has the most room, then the lowest id.
            user_id = min(choices, key=lambda uid: (load.get(uid, 0), -room[uid], uid))
            _ticket_assign(ticket, users[user_id], kind=Kind.ASSIGNED)
            load[user_id] = load.get(user_id, 0) + 1
            room[user_id] -= 1
            assigned.append(ticket.pk)
    return assigned


# --- what agents do to tickets ----------------------------------------------------------------


def ticket_lock_visible(*, ticket: Ticket, actor: Any) -> Ticket:
    """`ticket` locked for a change (inside the caller's transaction), if `actor` may see it;
    otherwise NotFound (its existence is not revealed)."""
    locked = (
        Ticket.objects.select_for_update(of=("self",), no_key=True)
        .select_related("pool", "conversation", "assignee")
        .get(pk=ticket.pk)
    )
    if not selectors.ticket_can_access(user=actor, ticket=locked):
        raise NotFound("No such ticket.")
    return locked


def _is_member(actor: Any, pool_id: int | None) -> bool:
    return pool_id is not None and pool_id in selectors.user_pool_ids(user=actor)


def ticket_claim(*, ticket: Ticket, actor: Any) -> Ticket:
    """The actor takes a queued ticket of their pool (capacity does not stop a deliberate claim)."""
    with transaction.atomic():
        locked = ticket_lock_visible(ticket=ticket, actor=actor)
        if locked.status == Status.ASSIGNED and locked.assignee_id == actor.pk:
            return locked
        if locked.status != Status.QUEUED:
            raise Conflict("Only a queued ticket can be claimed.")
        if not (_is_member(actor, locked.pool_id) or selectors.user_is_supervisor(actor)):
            raise PermissionDenied("Only members of the ticket's pool can claim it.")
        _ticket_assign(locked, actor, kind=Kind.CLAIMED, actor=actor)
    return locked


def ticket_unassign(*, ticket: Ticket, actor: Any) -> Ticket:
    """Give an assigned ticket back to its pool's queue (the assignee or a supervisor)."""
    with transaction.atomic():
        locked = ticket_lock_visible(ticket=ticket, actor=actor)
        if locked.status != Status.ASSIGNED:
            raise Conflict("Only an assigned ticket can be unassigned.")
        if locked.assignee_id != actor.pk and not selectors.user_is_supervisor(actor):
            raise PermissionDenied("Only the assignee or a supervisor can unassign this ticket.")
        ticket_requeue(ticket=locked, kind=Kind.UNASSIGNED, actor=actor)
    locked.refresh_from_db()
    return locked


def ticket_resolve(*, ticket: Ticket, actor: Any) -> Ticket:
    """Close a ticket; the customer is told, and the agent's freed slot takes the next in line."""
    with transaction.atomic():
        locked = ticket_lock_visible(ticket=ticket, actor=actor)
        if locked.status == Status.RESOLVED:
            raise Conflict("The ticket is already resolved.")
        if locked.status not in OPEN_FOR_AGENTS and not selectors.user_is_supervisor(actor):
            raise Conflict("Only a queued or assigned ticket can be resolved from the desk.")
        previous_assignee_id = locked.assignee_id
        if locked.assignee_id is None and locked.status in OPEN_FOR_AGENTS:
            locked.assignee = actor
        ticket_status_set(
            ticket=locked,
            status=Status.RESOLVED,
            change="resolved",
            previous_assignee_id=previous_assignee_id,
        )
        ticket_activity_add(locked, Kind.RESOLVED, actor=actor)
        agent_slots_fill(user_id=previous_assignee_id, pool=locked.pool)
        webhook_event_emit(event="ticket.resolved", payload=ticket_resolved_payload(ticket=locked))
    return locked


def ticket_reopen(*, ticket: Ticket, actor: Any) -> Ticket:
    """Open a resolved ticket again: assigned to the actor if they work its pool, else queued."""
    with transaction.atomic():
        locked = ticket_lock_visible(ticket=ticket, actor=actor)
        if locked.status != Status.RESOLVED:
            raise Conflict("Only a resolved ticket can be reopened.")
        others = Ticket.objects.filter(conversation_id=locked.conversation_id).exclude(
            status=Status.RESOLVED
        )
        if others.exists():
            raise Conflict("The customer has opened a newer ticket in this conversation.")
        if locked.pool is None:
            raise Conflict("The ticket has no pool; route it through the review queue.")
        locked.assignee = None
        ticket_activity_add(locked, Kind.REOPENED, actor=actor)
        if _is_member(actor, locked.pool_id):
            locked.queued_at = locked.queued_at or timezone.now()
            _ticket_assign(locked, actor, kind=Kind.CLAIMED, actor=actor)
        else:
            ticket_queue(ticket=locked, pool=locked.pool, actor=actor)
    locked.refresh_from_db()
    return locked


def ticket_reply(
    *, ticket: Ticket, actor: Any, text: str, attachments: Sequence[Attachment] = ()
) -> Message:
    """Send the actor's reply (a text, or files with an optional caption) to the customer, live
    in their widget. Replying to a queued ticket claims it; the first reply stops the SLA
    clock."""
    with transaction.atomic():
        locked = ticket_lock_visible(ticket=ticket, actor=actor)
        if locked.status == Status.RESOLVED:
            raise Conflict("The ticket is resolved; reopen it to reply.")
        if locked.status == Status.QUEUED and _is_member(actor, locked.pool_id):
            _ticket_assign(locked, actor, kind=Kind.CLAIMED, actor=actor)
        posted = ticket_message_post(
            conversation=locked.conversation,
            text=text,
            sender=Message.Sender.AGENT,
            author=actor,
            attachments=attachments,
        )
        if locked.first_response_at is None:
            Ticket.objects.filter(pk=locked.pk).update(first_response_at=posted.message.created_at)
    return posted.message


def tickets_sla_check(*, now: datetime | None = None) -> list[int]:
    """Mark tickets whose first reply is overdue as breached, tell the desk; return their ids."""
    now = now or timezone.now()
    overdue = Ticket.objects.filter(
        status__in=OPEN_FOR_AGENTS,
        first_response_at__isnull=True,
        sla_breached_at__isnull=True,
        sla_due_at__lt=now,
    ).values_list("pk", flat=True)
    breached = []
    for ticket_id in list(overdue):
        with transaction.atomic():
            ticket = (
                Ticket.objects.select_for_update(of=("self",), no_key=True)
                .select_related("pool")
                .get(pk=ticket_id)
            )
            if ticket.sla_breached_at is not None or ticket.first_response_at is not None:
                continue
            ticket.sla_breached_at = now
            ticket.save(update_fields=["sla_breached_at", "updated_at"])
            ticket_activity_add(
                ticket,
                Kind.SLA_BREACHED,
                due=ticket.sla_due_at.isoformat() if ticket.sla_due_at else None,
            )
            desk_ticket_publish(ticket, change="sla_breached")
            breached.append(ticket.pk)
    return breached
