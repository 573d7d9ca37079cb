"""Read-side queries for pools, their queues and who may see which ticket.

Permissions live here and in the services, not in views: an agent sees the tickets of the pools
they belong to; a supervisor (the `pools.supervise` permission, or a superuser) sees all.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from apps.chat.models import Attachment, Conversation, Message
from apps.core.errors import NotFound
from apps.core.sql import rows_where
from apps.pools.models import AgentProfile, Intent, Pool, PoolMembership
from apps.tickets.models import Ticket

StaffUser = AbstractBaseUser | AnonymousUser


def pool_list(*, active_only: bool = True) -> QuerySet[Pool]:
    """Pools in display order, by default only those that can receive tickets."""
    pools = Pool.objects.all()
    return pools.filter(active=True) if active_only else pools


def intent_pools(*, active_only: bool = True) -> dict[str, str]:
    """Each intent's pool: {intent slug: pool slug} (of active pools only, by default)."""
    intents = Intent.objects.all()
    if active_only:
        intents = intents.filter(pool__active=True)
    return dict(intents.values_list("slug", "pool__slug"))


def user_is_staff(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def user_id_is_staff(*, user_id: int) -> bool:
    """Whether the user is, as the database says now, an active staff member (a socket holds
    the user it authenticated; this tells whether that user may still act)."""
    return get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).exists()


def user_is_supervisor(user: Any) -> bool:
    """Sees and acts on every pool's tickets."""
    return user_is_staff(user) and bool(user.is_superuser or user.has_perm("pools.supervise"))


def user_pool_ids(*, user: Any) -> list[int]:
    """Ids of the pools `user` works (empty for a non-staff user)."""
    if not user_is_staff(user):
        return []
    return list(
        PoolMembership.objects.filter(user_id=user.pk)
        .order_by("pool_id")
        .values_list("pool_id", flat=True)
    )


def pool_list_for_user(*, user: Any) -> QuerySet[Pool]:
    """The pools whose queues `user` may see: all for a supervisor, their own for an agent."""
    if user_is_supervisor(user):
        return Pool.objects.all()
    return Pool.objects.filter(pk__in=user_pool_ids(user=user))


def _with_last_message(tickets: QuerySet[Ticket]) -> QuerySet[Ticket]:
    # The ticket's own last message: the conversation's may belong to another team's ticket.
    last = Message.objects.filter(ticket_id=OuterRef("pk")).order_by("-created_at", "-id")
    return tickets.annotate(
        last_message_sender=Subquery(last.values("sender")[:1]),
        last_message_text=Subquery(last.values("text")[:1]),
        last_message_at=Subquery(last.values("created_at")[:1]),
    )


def ticket_list_visible(
    *,
    user: Any,
    pool: Pool | None = None,
    status: str | None = None,
    assignee_id: int | None = None,
    conversation_id: Any = None,
    queue_order: bool = False,
) -> QuerySet[Ticket]:
    """Tickets `user` may see, each with its last message, filtered as asked; newest activity
    first, or with `queue_order` oldest queued first (the order they are assigned in)."""
    tickets = _with_last_message(
        Ticket.objects.select_related("pool", "assignee", "conversation__customer")
    )
    if not user_is_supervisor(user):
        tickets = tickets.filter(pool_id__in=user_pool_ids(user=user))
    if pool is not None:
        tickets = tickets.filter(pool=pool)
    if status is not None:
        tickets = tickets.filter(status=status)
    if assignee_id is not None:
        tickets = tickets.filter(assignee_id=assignee_id)
    if conversation_id is not None:
        tickets = tickets.filter(conversation_id=conversation_id)
    if queue_order:
        return tickets.order_by("queued_at", "created_at", "id")
    return tickets.order_by("-updated_at", "-id")


def ticket_can_access(*, user: Any, ticket: Ticket) -> bool:
    """Whether `user` may see and act on `ticket`."""
    if user_is_supervisor(user):
        return True
    return ticket.pool_id is not None and ticket.pool_id in user_pool_ids(user=user)


def conversation_ticket_ids_visible(*, user: Any, conversation_id: Any) -> set[int]:
    """The tickets of a conversation that `user` may see (all of them for a supervisor)."""
    tickets = Ticket.objects.filter(conversation_id=conversation_id)
    if not user_is_supervisor(user):
        tickets = tickets.filter(pool_id__in=user_pool_ids(user=user))
    return set(tickets.values_list("pk", flat=True))


@dataclass(frozen=True)
class TeamShare:
    """What a desk shows of another team's ticket in the same conversation: no text, the team
    and how many messages (docs/security.md)."""

    pool: str | None  # the team's name, None while the ticket has no pool (review)
    messages: int


@dataclass(frozen=True)
class ConversationSeen:
    messages: QuerySet[Message]
    elsewhere: list[TeamShare]


def ticket_conversation_visible(*, user: Any, ticket: Ticket) -> ConversationSeen:
    """The conversation of `ticket` as `user` may see it: the messages of its tickets they may
    see, and messages of no ticket (the bot's before one opened); of the customer's other
    tickets only which team has them and how many messages."""
    visible = conversation_ticket_ids_visible(user=user, conversation_id=ticket.conversation_id)
    mine = Q(ticket_id__in=visible) | Q(ticket__isnull=True)
    everything = Message.objects.filter(conversation_id=ticket.conversation_id)
    hidden = (
        everything.exclude(mine)
        .values("ticket_id", "ticket__pool__name")
        .annotate(n=Count("id"))
        .order_by("ticket_id")
    )
    return ConversationSeen(
        messages=everything.filter(mine).order_by("created_at", "id"),
        elsewhere=[TeamShare(pool=row["ticket__pool__name"], messages=row["n"]) for row in hidden],
    )


def earlier_tickets_for(*, user: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The "earlier tickets" context rows as `user` may see them: another team's ticket keeps
    its team, status and date, not its id or its customer's words."""
    visible = ticket_ids_visible(user=user, ticket_ids=[row["id"] for row in rows])
    return [
        row if row["id"] in visible else {**row, "id": None, "preview": None, "hidden": True}
        for row in rows
    ]


def ticket_ids_visible(*, user: Any, ticket_ids: list[int]) -> set[int]:
    """Which of `ticket_ids` `user` may see."""
    if user_is_supervisor(user):
        return set(ticket_ids)
    return set(
        Ticket.objects.filter(pk__in=ticket_ids, pool_id__in=user_pool_ids(user=user)).values_list(
            "pk", flat=True
        )
    )


def ticket_get_visible(*, user: Any, ticket_id: int) -> Ticket:
    """The ticket, if `user` may see it; otherwise NotFound (its existence is not revealed)."""
    ticket = (
        _with_last_message(
            Ticket.objects.select_related("pool", "assignee", "conversation__customer")
        )
        .filter(pk=ticket_id)
        .first()
    )
    if ticket is None or not ticket_can_access(user=user, ticket=ticket):
        raise NotFound("No such ticket.")
    return ticket


def queue_counts(*, user: Any) -> dict[str, Any]:
    """Open tickets per visible pool by status, and how many are the user's own."""
    pools = pool_list_for_user(user=user)
    per_pool = {
        row["pool_id"]: row
        for row in Ticket.objects.filter(pool__in=pools)
        .values("pool_id")
        .annotate(
            queued=Count("id", filter=Q(status=Ticket.Status.QUEUED)),
            assigned=Count("id", filter=Q(status=Ticket.Status.ASSIGNED)),
            breached=Count(
                "id",
                filter=Q(sla_breached_at__isnull=False)
                & Q(status__in=[Ticket.Status.QUEUED, Ticket.Status.ASSIGNED]),
            ),
        )
    }
    mine = Ticket.objects.filter(assignee_id=user.pk, status=Ticket.Status.ASSIGNED).count()
    online = {
        row["pool_id"]: row["n"]
        for row in PoolMembership.objects.filter(
            pool__in=pools, user__agent_profile__presence=AgentProfile.Presence.ONLINE
        )
        .values("pool_id")
        .annotate(n=Count("id"))
    }
    return {
        "pools": [
            {
                "id": pool.pk,
                "slug": pool.slug,
                "name": pool.name,
                "queued": per_pool.get(pool.pk, {}).get("queued", 0),
                "assigned": per_pool.get(pool.pk, {}).get("assigned", 0),
                "breached": per_pool.get(pool.pk, {}).get("breached", 0),
                "members_online": online.get(pool.pk, 0),
            }
            for pool in pools
        ],
        "mine": mine,
    }


def agent_load(*, user_ids: list[int]) -> dict[int, int]:
    """Assigned (open) tickets per agent: at most their capacity each, counted here from a
    statement written once (a routed ticket's transaction reads it when an agent is online)."""
    assigned = rows_where(
        Ticket,
        [("assignee", "in", user_ids), ("status", "=", Ticket.Status.ASSIGNED)],
        columns=["assignee"],
    )
    return dict(Counter(t.assignee_id for t in assigned if t.assignee_id is not None))


def pool_agents_online(*, pool: Pool, lock: bool = False) -> list[AgentProfile]:
    """The profiles of the pool's online active staff members in id order, each with its user
    (`lock`: the profiles locked for the caller's transaction, as pool assignment needs). Three
    statements written once: every routed ticket's transaction runs them."""
    members = rows_where(PoolMembership, [("pool", "=", pool.pk)], columns=["user"])
    profiles = rows_where(
        AgentProfile,
        [
            ("user", "in", [member.user_id for member in members]),
            ("presence", "=", AgentProfile.Presence.ONLINE),
        ],
        order_by="id",
        lock=lock,
    )
    staff = {
        user.pk: user
        for user in rows_where(
            get_user_model(),
            [
                ("id", "in", [profile.user_id for profile in profiles]),
                ("is_active", "=", True),
                ("is_staff", "=", True),
            ],
        )
    }
    agents = [profile for profile in profiles if profile.user_id in staff]
    for agent in agents:
        agent.user = staff[agent.user_id]
    return agents


def attachment_get_readable(
    *, attachment_id: int, conversation: Conversation | None, user: Any
) -> Attachment:
    """The attachment, if the reader takes part in its conversation: the customer holding its
    token, or staff who may access one of its tickets. Otherwise NotFound, as if it did not
    exist."""
    attachment = (
        Attachment.objects.filter(pk=attachment_id, message__isnull=False)
        .select_related("conversation")
        .first()
    )
    if attachment is None or not _can_read(attachment, conversation=conversation, user=user):
        raise NotFound("No such attachment.")
    return attachment


def _can_read(attachment: Attachment, *, conversation: Conversation | None, user: Any) -> bool:
    if conversation is not None:
        return attachment.conversation_id == conversation.pk
    if not user_is_staff(user):
        return False
    # Staff read the files of the tickets they may see, not the rest of the conversation.
    ticket = Ticket.objects.filter(messages__attachments=attachment).first()
    if ticket is None:
        return user_is_supervisor(user)
    return ticket_can_access(user=user, ticket=ticket)
