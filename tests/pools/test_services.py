"""The pools' services against the database: assignment, presence, permissions, ticket actions,
SLA and the presence events they publish after commit (the desk's own actions are in the
permission matrix too; their tests are in tests/desk/test_services.py; how a ticket's changes
are announced to the desks is in tests/tickets/test_realtime.py)."""

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.chat.models import ConversationEvent, Message
from apps.chat.services import conversation_create
from apps.core.errors import Conflict, EmptyText, NotFound, PermissionDenied
from apps.desk.models import InternalNote
from apps.desk.services import ticket_note_add, ticket_reroute
from apps.flows.demo import DEFAULT_POOLS
from apps.flows.messages import message_post
from apps.pools.models import AgentProfile, Pool
from apps.pools.presence import (
    agent_presence_connect,
    agent_presence_disconnect,
    agent_presence_heartbeat,
    agent_presence_set,
    agents_offline_release,
)
from apps.pools.services import (
    agent_queues_fill,
    pool_membership_set,
    pool_upsert,
    ticket_claim,
    ticket_queue,
    ticket_reopen,
    ticket_reply,
    ticket_resolve,
    ticket_unassign,
    tickets_sla_check,
)
from apps.review.models import RoutingLabel
from apps.tickets.models import Ticket, TicketActivity
from apps.tickets.realtime import desk_pool_group

pytestmark = pytest.mark.django_db

Status = Ticket.Status
Kind = TicketActivity.Kind


@pytest.fixture
def pools(db) -> dict[str, Pool]:
    return {spec["slug"]: pool_upsert(**spec) for spec in DEFAULT_POOLS}


def staff(
    username: str,
    *,
    pools: tuple[Pool, ...] = (),
    capacity: int = 5,
    first_name: str = "",
    supervisor: bool = False,
    superuser: bool = False,
) -> User:
    user = User.objects.create_user(
        username,
        password="pw",
        is_staff=True,
        is_superuser=superuser,
        first_name=first_name,
    )
    if supervisor:
        user.user_permissions.add(Permission.objects.get(codename="supervise"))
    if pools:
        pool_membership_set(user=user, pools=pools, capacity=capacity)
    return user


def queued(pool: Pool, text: str = "Where is my invoice?", name: str = "Grace") -> Ticket:
    """A customer's ticket put in `pool`'s queue (and assigned if a member has room)."""
    conversation = conversation_create(name=name).conversation
    message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    return ticket_queue(ticket=Ticket.objects.get(conversation=conversation), pool=pool)


def fresh(ticket: Ticket) -> Ticket:
    ticket.refresh_from_db()
    return ticket


def assignee(ticket: Ticket) -> User | None:
    return fresh(ticket).assignee


def presence(user: User) -> str:
    return AgentProfile.objects.get(user=user).presence


# --- assignment ---------------------------------------------------------------------------


def test_a_queued_ticket_goes_to_the_least_loaded_online_member(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,))
    bob = staff("bob", pools=(billing,))
    agent_presence_connect(user=ann)
    first, second = queued(billing), queued(billing)
    assert (assignee(first), assignee(second)) == (ann, ann)  # the only one online
    agent_presence_connect(user=bob)
    third, fourth = queued(billing), queued(billing)
    assert (assignee(third), assignee(fourth)) == (bob, bob)  # fewer tickets than Ann
    assert assignee(queued(billing)) == ann  # 2 against 2: the tie goes to the lower id
    assert fresh(third).status == Status.ASSIGNED
    assert fresh(third).assigned_at is not None


def test_the_queued_ticket_returned_is_current_and_never_read_back(pools):
    """`ticket_queue` returns the ticket as stored without reading it back: assigned by the
    queue, the instance it queued is the one assigned; left waiting, it is already current."""
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=1)
    agent_presence_connect(user=ann)
    conversations = [conversation_create(name="Grace").conversation for _ in range(2)]
    for conversation in conversations:
        message_post(conversation=conversation, text="invoice?", sender=Message.Sender.CUSTOMER)
    table = Ticket._meta.db_table
    returned, reads = [], []
    for conversation in conversations:
        ticket = Ticket.objects.get(conversation=conversation)
        with CaptureQueriesContext(connection) as queries:
            returned.append(ticket_queue(ticket=ticket, pool=billing))
        reads.append([q["sql"] for q in queries if q["sql"].startswith(f'SELECT "{table}"."id"')])
    first, second = returned
    assert (first.status, first.assignee, first.assigned_at is not None) == (
        Status.ASSIGNED,
        ann,
        True,
    )
    assert (second.status, second.assignee) == (Status.QUEUED, None)  # Ann has no room
    assert [(t.status, t.assignee_id) for t in map(fresh, returned)] == [
        (Status.ASSIGNED, ann.pk),
        (Status.QUEUED, None),
    ]
    for ticket, sqls in zip(returned, reads, strict=True):
        assert not [sql for sql in sqls if f'WHERE "{table}"."id" = {ticket.pk}' in sql]


def test_offline_and_away_members_get_no_tickets(pools):
    billing = pools["billing"]
    staff("off", pools=(billing,))  # never opened the desk
    away = staff("away", pools=(billing,))
    agent_presence_connect(user=away)
    agent_presence_set(user=away, presence=AgentProfile.Presence.AWAY)
    ticket = queued(billing)
    assert fresh(ticket).status == Status.QUEUED
    assert ticket.assignee is None
    other_pool_agent = staff("tech", pools=(pools["technical"],))
    agent_presence_connect(user=other_pool_agent)
    assert fresh(ticket).assignee is None  # not a member of billing


def test_an_away_agent_keeps_their_tickets_and_takes_new_ones_when_back(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,))
    agent_presence_connect(user=ann)
    mine = queued(billing)
    agent_presence_set(user=ann, presence=AgentProfile.Presence.AWAY)
    waiting = queued(billing)
    # Within the presence timeout (an open desk sends heartbeats), well past the grace.
    assert agents_offline_release(now=timezone.now() + timedelta(seconds=80)) == []
    assert (assignee(mine), assignee(waiting)) == (ann, None)
    agent_presence_set(user=ann, presence=AgentProfile.Presence.ONLINE)
    assert assignee(waiting) == ann


def test_capacity_counts_tickets_of_every_pool_the_agent_works(pools):
    ann = staff("ann", pools=(pools["billing"], pools["technical"]), capacity=1)
    agent_presence_connect(user=ann)
    billing_ticket = queued(pools["billing"])
    technical_ticket = queued(pools["technical"], "The app crashes")
    assert assignee(billing_ticket) == ann
    assert fresh(technical_ticket).status == Status.QUEUED
    assert technical_ticket.assignee is None


def test_when_everyone_is_full_tickets_wait_and_a_resolve_takes_the_oldest(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=1)
    agent_presence_connect(user=ann)
    first, second, third = queued(billing), queued(billing), queued(billing)
    assert [assignee(t) for t in (first, second, third)] == [ann, None, None]
    ticket_resolve(ticket=first, actor=ann)
    assert [fresh(t).status for t in (first, second, third)] == [
        Status.RESOLVED,
        Status.ASSIGNED,
        Status.QUEUED,
    ]
    assert assignee(second) == ann


def test_a_resolve_in_one_pool_frees_the_slot_for_the_agents_other_pool(pools):
    ann = staff("ann", pools=(pools["billing"], pools["technical"]), capacity=1)
    agent_presence_connect(user=ann)
    billing_ticket = queued(pools["billing"])
    technical_ticket = queued(pools["technical"], "The app crashes")
    ticket_resolve(ticket=billing_ticket, actor=ann)
    assert assignee(technical_ticket) == ann


def test_the_oldest_waiting_ticket_of_the_agents_pools_takes_a_freed_slot(pools):
    ann = staff("ann", pools=(pools["billing"], pools["technical"]), capacity=1)
    agent_presence_connect(user=ann)
    mine = queued(pools["billing"])
    older = queued(pools["technical"], "The app crashes")
    newer = queued(pools["billing"])
    ticket_resolve(ticket=mine, actor=ann)
    assert (assignee(older), assignee(newer)) == (ann, None)


def test_waiting_tickets_go_oldest_first_to_an_agent_coming_online(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=2)
    tickets = [queued(billing) for _ in range(3)]
    assert all(fresh(t).status == Status.QUEUED for t in tickets)
    agent_presence_connect(user=ann)
    assert [assignee(t) for t in tickets] == [ann, ann, None]


def test_an_agent_coming_online_takes_the_longest_waiting_ticket_of_all_their_pools(pools):
    ann = staff("ann", pools=(pools["billing"], pools["technical"]), capacity=1)
    older = queued(pools["technical"], "The app crashes")
    newer = queued(pools["billing"])  # billing comes first by id, but waited less
    agent_presence_connect(user=ann)
    assert (assignee(older), assignee(newer)) == (ann, None)


def test_raising_capacity_assigns_waiting_tickets_at_once(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=1)
    agent_presence_connect(user=ann)
    tickets = [queued(billing) for _ in range(3)]
    assert [assignee(t) for t in tickets] == [ann, None, None]
    pool_membership_set(user=ann, pools=[billing], capacity=2)
    assert [assignee(t) for t in tickets] == [ann, ann, None]
    assert AgentProfile.objects.get(user=ann).capacity == 2


def test_an_unassigned_ticket_goes_to_another_member_with_room_not_back(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=1)
    bob = staff("bob", pools=(billing,), capacity=1)
    agent_presence_connect(user=ann)
    ticket = queued(billing)
    queued_at = fresh(ticket).queued_at
    agent_presence_connect(user=bob)
    ticket_unassign(ticket=ticket, actor=ann)
    ticket = fresh(ticket)
    assert (ticket.status, ticket.assignee) == (Status.ASSIGNED, bob)
    assert ticket.queued_at == queued_at
    kinds = list(ticket.activities.values_list("kind", flat=True))
    assert kinds[-2:] == [Kind.UNASSIGNED, Kind.ASSIGNED]


def test_an_unassigned_ticket_returns_to_the_front_of_the_queue(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=1)
    bob = staff("bob", pools=(billing,), capacity=1)
    agent_presence_connect(user=ann)
    agent_presence_connect(user=bob)
    first, second = queued(billing), queued(billing)
    waiting = queued(billing)
    assert (assignee(first), assignee(second), assignee(waiting)) == (ann, bob, None)
    queued_at = fresh(first).queued_at
    ticket_unassign(ticket=first, actor=ann)
    assert fresh(first).queued_at == queued_at
    # Nobody else has room: Ann's free slot is not left idle, and the returned ticket is
    # ahead of the one that was waiting.
    assert (assignee(first), assignee(waiting)) == (ann, None)
    ticket_resolve(ticket=second, actor=bob)
    assert assignee(waiting) == bob


def test_an_unassign_by_a_lone_agent_waits_for_the_next_one_online(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=1)
    bob = staff("bob", pools=(billing,), capacity=1)
    ticket = queued(billing)
    ticket_claim(ticket=ticket, actor=ann)  # Ann works without the desk open
    ticket_unassign(ticket=ticket, actor=ann)
    assert fresh(ticket).status == Status.QUEUED
    agent_presence_connect(user=bob)
    assert assignee(ticket) == bob


def test_tickets_of_an_agent_offline_past_the_grace_return_to_the_queue(pools, settings):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=2)
    agent_presence_connect(user=ann)
    first, second = queued(billing), queued(billing)
    queued_ats = [fresh(first).queued_at, fresh(second).queued_at]
    later = queued(billing)
    agent_presence_disconnect(user=ann)
    assert presence(ann) == AgentProfile.Presence.OFFLINE
    grace = timedelta(seconds=settings.AGENT_OFFLINE_GRACE_SECONDS)
    now = timezone.now()
    assert agents_offline_release(now=now + grace - timedelta(seconds=5)) == []
    assert (assignee(first), assignee(second)) == (ann, ann)
    released = agents_offline_release(now=now + grace + timedelta(seconds=5))
    assert sorted(released) == sorted([first.pk, second.pk])
    assert [fresh(first).queued_at, fresh(second).queued_at] == queued_ats
    assert fresh(first).status == Status.QUEUED
    assert first.activities.filter(kind=Kind.RETURNED).count() == 1
    assert agents_offline_release(now=now + grace + timedelta(seconds=10)) == []
    bob = staff("bob", pools=(billing,), capacity=2)
    agent_presence_connect(user=bob)  # the returned tickets are ahead of the later one
    assert [assignee(t) for t in (first, second, later)] == [bob, bob, None]


def test_reconnecting_within_the_grace_keeps_the_tickets(pools, settings):
    settings.AGENT_OFFLINE_GRACE_SECONDS = 30
    settings.AGENT_PRESENCE_TIMEOUT_SECONDS = 90
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,))
    agent_presence_connect(user=ann)
    ticket = queued(billing)
    agent_presence_disconnect(user=ann)
    agent_presence_connect(user=ann)
    # Past the grace since the socket closed, within the presence timeout of the new one.
    assert agents_offline_release(now=timezone.now() + timedelta(seconds=60)) == []
    assert assignee(ticket) == ann
    assert presence(ann) == AgentProfile.Presence.ONLINE
    assert AgentProfile.objects.get(user=ann).offline_since is None


def test_closing_one_of_two_desks_keeps_the_agent_online(pools):
    ann = staff("ann", pools=(pools["billing"],))
    agent_presence_connect(user=ann)
    agent_presence_connect(user=ann)
    agent_presence_disconnect(user=ann)
    assert presence(ann) == AgentProfile.Presence.ONLINE
    agent_presence_disconnect(user=ann)
    assert presence(ann) == AgentProfile.Presence.OFFLINE


def test_a_silent_agent_is_marked_offline_and_released_after_the_grace(pools, settings):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,))
    agent_presence_connect(user=ann)
    agent_presence_heartbeat(user=ann)
    ticket = queued(billing)
    last_seen = AgentProfile.objects.get(user=ann).last_seen_at
    assert last_seen is not None
    timeout = timedelta(seconds=settings.AGENT_PRESENCE_TIMEOUT_SECONDS)
    grace = timedelta(seconds=settings.AGENT_OFFLINE_GRACE_SECONDS)
    assert agents_offline_release(now=last_seen + timeout - timedelta(seconds=1)) == []
    assert presence(ann) == AgentProfile.Presence.ONLINE
    assert agents_offline_release(now=last_seen + timeout + timedelta(seconds=1)) == []
    profile = AgentProfile.objects.get(user=ann)
    assert (profile.presence, profile.sockets) == (AgentProfile.Presence.OFFLINE, 0)
    assert profile.offline_since == last_seen  # the grace counts from when they went silent
    assert assignee(ticket) == ann
    assert agents_offline_release(now=last_seen + grace + timedelta(seconds=1)) == [ticket.pk]
    assert fresh(ticket).status == Status.QUEUED


def test_tickets_of_a_pool_an_agent_leaves_go_back_to_its_queue(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing, pools["technical"]))
    bob = staff("bob", pools=(billing,))
    agent_presence_connect(user=ann)
    ticket = queued(billing)
    technical_ticket = queued(pools["technical"], "It crashes")
    assert assignee(ticket) == ann
    agent_presence_connect(user=bob)
    pool_membership_set(user=ann, pools=[pools["technical"]])
    # Ann could no longer open it; Bob, who works billing, gets it.
    assert (assignee(ticket), assignee(technical_ticket)) == (bob, ann)
    assert fresh(ticket).activities.filter(kind=Kind.UNASSIGNED, actor=None).exists()


def test_a_supervisor_keeps_tickets_of_pools_they_do_not_work(pools):
    sam = staff("sam", supervisor=True)
    ticket = queued(pools["billing"])
    ticket_claim(ticket=ticket, actor=sam)
    agent_queues_fill(user=sam)
    pool_membership_set(user=sam, pools=[pools["technical"]])
    assert assignee(ticket) == sam


def test_agent_queues_fill_assigns_the_longest_waiting_tickets_first(pools):
    ann = staff("ann", pools=(pools["billing"], pools["technical"]), capacity=1)
    older = queued(pools["technical"], "The app crashes")
    queued(pools["billing"])
    AgentProfile.objects.filter(user=ann).update(
        presence=AgentProfile.Presence.ONLINE, sockets=1, last_seen_at=timezone.now()
    )
    assert agent_queues_fill(user=ann) == [older.pk]


def test_removing_a_pool_from_an_agent_stops_new_tickets_from_it(pools):
    ann = staff("ann", pools=(pools["billing"], pools["technical"]))
    agent_presence_connect(user=ann)
    pool_membership_set(user=ann, pools=[pools["technical"]])
    assert fresh(queued(pools["billing"])).assignee is None
    assert assignee(queued(pools["technical"], "It crashes")) == ann


# --- permissions --------------------------------------------------------------------------


@pytest.fixture
def desk(pools) -> dict[str, Any]:
    bea = staff("bea", pools=(pools["billing"],), first_name="Bea")
    theo = staff("theo", pools=(pools["technical"],), first_name="Theo")
    sam = staff("sam", supervisor=True)
    return {"bea": bea, "theo": theo, "sam": sam, "pools": pools}


def _technical_ticket(desk: dict[str, Any], state: str) -> Ticket:
    ticket = queued(desk["pools"]["technical"], "The app crashes when I log in")
    if state in ("assigned", "resolved"):
        ticket_claim(ticket=ticket, actor=desk["theo"])
    if state == "resolved":
        ticket_resolve(ticket=ticket, actor=desk["theo"])
    return fresh(ticket)


ACTIONS = {
    "claim": ("queued", lambda t, u, p: ticket_claim(ticket=t, actor=u)),
    "unassign": ("assigned", lambda t, u, p: ticket_unassign(ticket=t, actor=u)),
    "resolve": ("assigned", lambda t, u, p: ticket_resolve(ticket=t, actor=u)),
    "reopen": ("resolved", lambda t, u, p: ticket_reopen(ticket=t, actor=u)),
    "reply": ("assigned", lambda t, u, p: ticket_reply(ticket=t, actor=u, text="hello")),
    "note": ("assigned", lambda t, u, p: ticket_note_add(ticket=t, actor=u, text="psst")),
    "reroute": (
        "assigned",
        lambda t, u, p: ticket_reroute(ticket=t, actor=u, pool=p["billing"], reason="mine"),
    ),
}


def _snapshot(ticket: Ticket) -> tuple[Any, ...]:
    ticket = fresh(ticket)
    return (
        ticket.status,
        ticket.pool_id,
        ticket.assignee_id,
        ticket.first_response_at,
        Message.objects.count(),
        ConversationEvent.objects.count(),
        InternalNote.objects.count(),
        RoutingLabel.objects.count(),
        TicketActivity.objects.count(),
    )


@pytest.mark.parametrize("action", ACTIONS)
def test_an_agent_of_another_pool_can_do_nothing_to_a_ticket(desk, action):
    state, act = ACTIONS[action]
    ticket = _technical_ticket(desk, state)
    before = _snapshot(ticket)
    with pytest.raises(NotFound):
        act(ticket, desk["bea"], desk["pools"])
    assert _snapshot(ticket) == before


@pytest.mark.parametrize("action", ACTIONS)
def test_a_non_staff_user_with_a_membership_can_do_nothing(desk, action):
    state, act = ACTIONS[action]
    ticket = _technical_ticket(desk, state)
    customer_like = User.objects.create_user("carl", password="pw")
    pool_membership_set(user=customer_like, pools=[desk["pools"]["technical"]])
    before = _snapshot(ticket)
    with pytest.raises(NotFound):
        act(ticket, customer_like, desk["pools"])
    assert _snapshot(ticket) == before


@pytest.mark.parametrize("action", ACTIONS)
def test_a_supervisor_can_act_on_any_pool(desk, action):
    state, act = ACTIONS[action]
    ticket = _technical_ticket(desk, state)
    act(ticket, desk["sam"], desk["pools"])


@pytest.mark.parametrize("action", ACTIONS)
def test_a_superuser_can_act_on_any_pool(desk, action):
    state, act = ACTIONS[action]
    ticket = _technical_ticket(desk, state)
    act(ticket, staff("root", superuser=True), desk["pools"])


def test_only_the_assignee_or_a_supervisor_can_unassign(desk):
    technical = desk["pools"]["technical"]
    tia = staff("tia", pools=(technical,))
    ticket = _technical_ticket(desk, "assigned")
    with pytest.raises(PermissionDenied):
        ticket_unassign(ticket=ticket, actor=tia)
    assert assignee(ticket) == desk["theo"]
    ticket_unassign(ticket=ticket, actor=desk["sam"])
    assert fresh(ticket).status == Status.QUEUED


def test_a_non_member_cannot_claim(desk):
    ticket = _technical_ticket(desk, "queued")
    with pytest.raises(NotFound):
        ticket_claim(ticket=ticket, actor=desk["bea"])
    inactive = staff("ivy", pools=(desk["pools"]["technical"],))
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    inactive.refresh_from_db()
    with pytest.raises(NotFound):
        ticket_claim(ticket=ticket, actor=inactive)
    assert fresh(ticket).status == Status.QUEUED
    ticket_claim(ticket=ticket, actor=desk["theo"])
    assert assignee(ticket) == desk["theo"]


def test_claiming_a_ticket_someone_else_holds_is_a_conflict(desk):
    ticket = _technical_ticket(desk, "assigned")
    tia = staff("tia", pools=(desk["pools"]["technical"],))
    with pytest.raises(Conflict):
        ticket_claim(ticket=ticket, actor=tia)
    assert ticket_claim(ticket=ticket, actor=desk["theo"]).assignee == desk["theo"]


def test_a_deliberate_claim_may_exceed_capacity(pools):
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,), capacity=0)
    ticket = queued(billing)
    ticket_claim(ticket=ticket, actor=ann)
    assert assignee(ticket) == ann


# --- actions ------------------------------------------------------------------------------


def test_a_reply_reaches_the_customer_under_the_agents_first_name_and_claims_the_ticket(
    desk,
):
    bea = desk["bea"]
    ticket = queued(desk["pools"]["billing"])
    message = ticket_reply(ticket=ticket, actor=bea, text="  Sent it to you now.  ")
    assert (message.sender, message.author, message.text) == (
        Message.Sender.AGENT,
        bea,
        "Sent it to you now.",
    )
    assert message.ticket_id == ticket.pk
    event = ConversationEvent.objects.filter(conversation=ticket.conversation).last()
    assert event is not None
    assert event.type == ConversationEvent.Type.MESSAGE
    assert (event.payload["sender"], event.payload["author"]) == ("agent", "Bea")
    assert event.payload["text"] == "Sent it to you now."
    assert "bea" not in json.dumps(event.payload)  # the login is never shown to customers
    ticket = fresh(ticket)
    assert (ticket.status, ticket.assignee) == (Status.ASSIGNED, bea)
    assert ticket.first_response_at == message.created_at
    assert ticket.activities.filter(kind=Kind.CLAIMED, actor=bea).exists()


def test_only_the_first_reply_sets_the_first_response_time(desk):
    ticket = queued(desk["pools"]["billing"])
    first = ticket_reply(ticket=ticket, actor=desk["bea"], text="Hello")
    ticket_reply(ticket=ticket, actor=desk["bea"], text="Anything else?")
    assert fresh(ticket).first_response_at == first.created_at


def test_a_supervisor_replying_to_a_queued_ticket_does_not_take_it(desk):
    ticket = queued(desk["pools"]["billing"])
    ticket_reply(ticket=ticket, actor=desk["sam"], text="Someone will be with you")
    ticket = fresh(ticket)
    assert (ticket.status, ticket.assignee) == (Status.QUEUED, None)
    assert ticket.first_response_at is not None


def test_a_reply_to_a_resolved_ticket_is_a_conflict(desk):
    ticket = queued(desk["pools"]["billing"])
    ticket_resolve(ticket=ticket, actor=desk["bea"])
    messages = Message.objects.count()
    with pytest.raises(Conflict):
        ticket_reply(ticket=ticket, actor=desk["bea"], text="One more thing")
    assert Message.objects.count() == messages


def test_an_empty_reply_changes_nothing(desk):
    ticket = queued(desk["pools"]["billing"])
    before = _snapshot(ticket)
    with pytest.raises(EmptyText):
        ticket_reply(ticket=ticket, actor=desk["bea"], text="   ")
    assert _snapshot(ticket) == before


def test_resolve_tells_the_customer_and_keeps_who_resolved_it(desk):
    ticket = queued(desk["pools"]["billing"])
    resolved = ticket_resolve(ticket=ticket, actor=desk["bea"])
    assert (resolved.status, resolved.assignee) == (Status.RESOLVED, desk["bea"])
    assert fresh(ticket).resolved_at is not None
    last = ConversationEvent.objects.filter(conversation=ticket.conversation).last()
    assert last is not None
    assert last.payload["status"] == "resolved"
    with pytest.raises(Conflict):
        ticket_resolve(ticket=ticket, actor=desk["bea"])


def test_reopen_by_a_member_gives_the_ticket_back_to_them(desk):
    ticket = queued(desk["pools"]["billing"])
    ticket_resolve(ticket=ticket, actor=desk["bea"])
    reopened = ticket_reopen(ticket=ticket, actor=desk["bea"])
    assert (reopened.status, reopened.assignee, reopened.resolved_at) == (
        Status.ASSIGNED,
        desk["bea"],
        None,
    )
    assert reopened.activities.filter(kind=Kind.REOPENED).count() == 1


def test_reopen_by_a_supervisor_puts_the_ticket_back_in_its_queue(desk):
    ticket = queued(desk["pools"]["billing"])
    queued_at = fresh(ticket).queued_at
    ticket_resolve(ticket=ticket, actor=desk["bea"])
    reopened = ticket_reopen(ticket=ticket, actor=desk["sam"])
    assert (reopened.status, reopened.assignee, reopened.queued_at) == (
        Status.QUEUED,
        None,
        queued_at,
    )


def test_reopen_refuses_when_the_customer_has_a_newer_open_ticket(desk):
    ticket = queued(desk["pools"]["billing"])
    ticket_resolve(ticket=ticket, actor=desk["bea"])
    message_post(
        conversation=ticket.conversation, text="Another question", sender=Message.Sender.CUSTOMER
    )
    with pytest.raises(Conflict):
        ticket_reopen(ticket=ticket, actor=desk["bea"])
    assert fresh(ticket).status == Status.RESOLVED
    with pytest.raises(Conflict):
        ticket_reopen(ticket=Ticket.objects.get(status=Status.ROUTING), actor=desk["sam"])


def test_sla_breach_is_marked_once_and_answered_tickets_are_ignored(desk):
    pools = desk["pools"]
    late = queued(pools["billing"])
    answered = queued(pools["billing"], "Second question")
    ticket_reply(ticket=answered, actor=desk["bea"], text="Answered")
    due = fresh(late).sla_due_at
    assert due == fresh(late).created_at + timedelta(
        minutes=pools["billing"].first_response_minutes
    )
    assert tickets_sla_check(now=due - timedelta(seconds=1)) == []
    assert tickets_sla_check(now=due + timedelta(minutes=30)) == [late.pk]
    assert fresh(late).sla_breached_at == due + timedelta(minutes=30)
    assert fresh(answered).sla_breached_at is None
    assert tickets_sla_check(now=due + timedelta(hours=2)) == []
    activities = late.activities.filter(kind=Kind.SLA_BREACHED)
    assert activities.count() == 1
    assert activities.get().data == {"due": due.isoformat()}


def test_a_reply_after_a_breach_does_not_clear_it_and_no_new_breach_is_raised(desk):
    ticket = queued(desk["pools"]["billing"])
    due = fresh(ticket).sla_due_at
    assert due is not None
    tickets_sla_check(now=due + timedelta(seconds=1))
    ticket_reply(ticket=ticket, actor=desk["bea"], text="Sorry for the wait")
    assert tickets_sla_check(now=due + timedelta(hours=1)) == []
    assert fresh(ticket).sla_breached_at is not None


# --- events -------------------------------------------------------------------------------


def _listen(*groups: str) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    for group in groups:
        async_to_sync(layer.group_add)(group, channel)
    return str(channel)


def _received(channel: str, timeout: float = 0.2) -> list[dict[str, Any]]:
    """Everything the channel got until it stays quiet for `timeout` seconds."""
    layer = get_channel_layer()

    async def drain() -> list[dict[str, Any]]:
        messages = []
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(channel), timeout))
            except TimeoutError:
                return messages

    return async_to_sync(drain)()


def _stable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events without their random `id` (each copy's id only lets a desk drop repeats)."""
    return [{key: value for key, value in event.items() if key != "id"} for event in events]


@pytest.fixture
def layer():
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield layer
    async_to_sync(layer.flush)()


def test_a_presence_change_is_announced_to_the_agents_pools(
    layer, pools, django_capture_on_commit_callbacks
):
    ann = staff("ann", pools=(pools["billing"],))
    billing_channel = _listen(desk_pool_group(pools["billing"].pk))
    with django_capture_on_commit_callbacks(execute=True):
        agent_presence_connect(user=ann)
    assert _stable(_received(billing_channel)) == [
        {"type": "desk.presence", "user": ann.pk, "presence": "online"}
    ]
