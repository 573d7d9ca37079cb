"""The desk's services against the database: notes, "wrong pool" (a routing label), canned
replies and their placeholders, and the events they publish after commit."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from apps.chat.models import ConversationEvent, Message
from apps.core.errors import Conflict, EmptyText
from apps.desk.models import CannedReply
from apps.desk.services import canned_reply_render, ticket_note_add, ticket_reroute
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.pools.presence import agent_presence_connect
from apps.pools.services import pool_upsert, ticket_claim
from apps.review.models import RoutingLabel
from apps.tickets.models import Ticket, TicketActivity
from apps.tickets.realtime import DESK_ALL, desk_pool_group, desk_ticket_group
from tests.pools.test_services import _listen, _received, _snapshot, assignee, fresh, queued, staff

pytestmark = pytest.mark.django_db

Status = Ticket.Status
Kind = TicketActivity.Kind


def test_a_note_is_stored_for_staff_and_never_reaches_the_customer(desk):
    ticket = queued(desk["pools"]["billing"])
    messages, events = Message.objects.count(), ConversationEvent.objects.count()
    note = ticket_note_add(ticket=ticket, actor=desk["bea"], text="  VIP, be gentle ")
    assert (note.ticket_id, note.author, note.text) == (ticket.pk, desk["bea"], "VIP, be gentle")
    assert (Message.objects.count(), ConversationEvent.objects.count()) == (messages, events)
    assert fresh(ticket).first_response_at is None  # a note is not an answer
    with pytest.raises(EmptyText):
        ticket_note_add(ticket=ticket, actor=desk["bea"], text="  ")


def _decision(ticket: Ticket, pool: Pool, *, ends_run: bool, dry_run: bool = False, text: str = ""):
    return RoutingDecision.objects.create(
        ticket=ticket,
        tier=RoutingDecision.Tier.LOCAL,
        action=RoutingDecision.Action.ROUTE,
        pool=pool,
        confidence=0.9,
        ends_run=ends_run,
        dry_run=dry_run,
        redacted=text,
    )


def test_reroute_moves_the_ticket_and_records_the_correction(desk):
    bea, theo, pools = desk["bea"], desk["theo"], desk["pools"]
    ticket = queued(pools["billing"], "I cannot log in since the update")
    ticket_claim(ticket=ticket, actor=bea)
    _decision(ticket, pools["billing"], ends_run=False, text="earlier")
    deciding = _decision(ticket, pools["billing"], ends_run=True, text="I cannot log in")
    _decision(ticket, pools["billing"], ends_run=False, text="later attempt")
    sla_due_at = fresh(ticket).sla_due_at
    moved = ticket_reroute(
        ticket=ticket, actor=bea, pool=pools["technical"], reason="  A login problem "
    )
    assert (moved.status, moved.pool, moved.assignee) == (Status.QUEUED, pools["technical"], None)
    assert moved.sla_due_at == sla_due_at  # a move does not restart the SLA clock
    label = RoutingLabel.objects.get(ticket=ticket)
    assert (label.source, label.previous_pool, label.pool, label.decision) == (
        RoutingLabel.Source.REROUTE,
        pools["billing"],
        pools["technical"],
        deciding,
    )
    assert (label.text, label.reason, label.author) == ("I cannot log in", "A login problem", bea)
    activity = ticket.activities.get(kind=Kind.REROUTED)
    assert activity.actor == bea
    assert activity.data == {"from": "billing", "to": "technical", "reason": "A login problem"}
    agent_presence_connect(user=theo)
    assert assignee(ticket) == theo


def test_reroute_without_a_routing_decision_records_a_label_without_one(desk):
    pools = desk["pools"]
    ticket = queued(pools["billing"])
    ticket_reroute(ticket=ticket, actor=desk["bea"], pool=pools["technical"], reason="login")
    label = RoutingLabel.objects.get(ticket=ticket)
    assert (label.decision, label.text) == (None, "")


def test_reroute_frees_the_slot_in_the_old_pool(desk):
    pools = desk["pools"]
    ann = staff("ann", pools=(pools["billing"],), capacity=1)
    agent_presence_connect(user=ann)
    moved, waiting = queued(pools["billing"]), queued(pools["billing"])
    assert (assignee(moved), assignee(waiting)) == (ann, None)
    ticket_reroute(ticket=moved, actor=ann, pool=pools["technical"], reason="a login problem")
    assert assignee(waiting) == ann


@pytest.mark.parametrize(
    ("target", "reason", "error"),
    [
        ("billing", "same pool", Conflict),
        ("inactive", "a closed team", Conflict),
        ("technical", "   ", EmptyText),
    ],
)
def test_reroute_refuses_and_changes_nothing(desk, target, reason, error):
    pools = desk["pools"]
    closed = pool_upsert(slug="inactive", name="Closed", description="Gone.")
    Pool.objects.filter(pk=closed.pk).update(active=False)
    pools["inactive"] = Pool.objects.get(pk=closed.pk)
    ticket = queued(pools["billing"])
    ticket_claim(ticket=ticket, actor=desk["bea"])
    before = _snapshot(ticket)
    with pytest.raises(error):
        ticket_reroute(ticket=ticket, actor=desk["bea"], pool=pools[target], reason=reason)
    assert _snapshot(ticket) == before


# --- canned replies -----------------------------------------------------------------------


def _canned(desk: dict[str, Any], text: str, *, agent: User | None = None) -> str:
    ticket = queued(desk["pools"]["billing"], name="Grace")
    reply = CannedReply.objects.create(title="T", text=text)
    return canned_reply_render(reply=reply, ticket=ticket, agent=agent or desk["bea"])


def test_canned_reply_fills_every_placeholder(desk):
    ticket = queued(desk["pools"]["billing"], name="Grace")
    reply = CannedReply.objects.create(
        title="Hello",
        text="Hi {customer_name}, I'm {agent_name} from {pool_name} (ticket {ticket_id}).",
    )
    assert canned_reply_render(reply=reply, ticket=ticket, agent=desk["bea"]) == (
        f"Hi Grace, I'm Bea from Billing (ticket {ticket.pk})."
    )


def test_canned_reply_leaves_unknown_placeholders_visible(desk):
    assert _canned(desk, "Your {order_id} for {customer_name}") == "Your {order_id} for Grace"


@pytest.mark.parametrize(
    "text",
    [
        "{customer_name.__class__}",
        "{customer_name.__class__.__mro__}",
        "{customer_name[0]}",
        "{0}",
        "{}",
    ],
)
def test_canned_reply_allows_no_attribute_or_index_access(desk, text):
    rendered = _canned(desk, f"x {text} y")
    assert rendered == f"x {text} y"
    assert "class" not in rendered.replace(text, "")


@pytest.mark.parametrize("text", ["Smile :-}", "a { b", "{customer_name", "}} {{ {customer_name}"])
def test_canned_reply_with_stray_braces_still_renders(desk, text):
    rendered = _canned(desk, text)
    assert isinstance(rendered, str)
    assert rendered.replace("Grace", "{customer_name}") == text


def test_a_move_is_announced_to_the_old_and_new_pool(
    layer, desk, django_capture_on_commit_callbacks
):
    # The old assignee works the old pool and hears it there.
    pools, bea = desk["pools"], desk["bea"]
    ticket = queued(pools["billing"])
    ticket_claim(ticket=ticket, actor=bea)
    channels = {
        "old": _listen(desk_pool_group(pools["billing"].pk)),
        "new": _listen(desk_pool_group(pools["technical"].pk)),
        "supervisors": _listen(DESK_ALL),
    }
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reroute(ticket=ticket, actor=bea, pool=pools["technical"], reason="login")
    for name, channel in channels.items():
        changes = [e["change"] for e in _received(channel) if e["type"] == "desk.ticket"]
        assert "queued" in changes, name


def test_notes_and_activity_go_only_to_the_tickets_staff_viewers(
    layer, desk, django_capture_on_commit_callbacks
):
    ticket = queued(desk["pools"]["billing"])
    viewers = _listen(desk_ticket_group(ticket.pk))
    pool = _listen(desk_pool_group(desk["pools"]["billing"].pk))
    with django_capture_on_commit_callbacks(execute=True):
        ticket_note_add(ticket=ticket, actor=desk["bea"], text="VIP, be gentle")
    items = _received(viewers)
    assert [(i["type"], i["kind"], i["item"]["text"]) for i in items] == [
        ("desk.item", "note", "VIP, be gentle")
    ]
    assert _received(pool) == []
