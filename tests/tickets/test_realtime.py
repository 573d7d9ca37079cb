"""Who hears of a ticket (apps/tickets/realtime.py): a change is announced after commit to the
groups of the desks that list the ticket (its pool's, the supervisors'), never to another pool's,
and names the ticket and what changed, never the customer's text."""

import json

import pytest

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.pools.presence import agent_presence_connect
from apps.pools.services import ticket_queue
from apps.tickets.models import Ticket
from apps.tickets.realtime import DESK_ALL, desk_pool_group
from tests.pools.test_services import _listen, _received, _stable, queued, staff

pytestmark = pytest.mark.django_db


def test_a_queued_ticket_is_announced_to_its_pool_after_commit_without_customer_text(
    layer, pools, django_capture_on_commit_callbacks
):
    billing = pools["billing"]
    conversation = conversation_create(name="Grace").conversation
    message_post(
        conversation=conversation, text="My secret invoice IBAN", sender=Message.Sender.CUSTOMER
    )
    ticket = Ticket.objects.get(conversation=conversation)
    early, late = _listen(desk_pool_group(billing.pk)), _listen(desk_pool_group(billing.pk))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ticket_queue(ticket=ticket, pool=billing)
        assert _received(early) == []  # nothing before the transaction commits
    assert callbacks
    events = _stable(_received(late))
    assert {"type": "desk.ticket", "ticket": ticket.pk, "change": "queued", "status": "queued",
            "pool": billing.pk, "assignee": None} in events  # fmt: skip
    assert "IBAN" not in json.dumps(events)
    assert "Grace" not in json.dumps(events)


def test_an_assignment_is_announced_to_the_pool_and_the_supervisors(
    layer, pools, django_capture_on_commit_callbacks
):
    # The agent works the pool: its group reaches them (and every other desk listing it).
    billing = pools["billing"]
    ann = staff("ann", pools=(billing,))
    agent_presence_connect(user=ann)
    agent_channel = _listen(DESK_ALL)
    pool_channel = _listen(desk_pool_group(billing.pk))
    other_pool = _listen(desk_pool_group(pools["technical"].pk))
    with django_capture_on_commit_callbacks(execute=True):
        ticket = queued(billing, "Charged twice, card 4242")
    for channel in (agent_channel, pool_channel):
        events = _stable(_received(channel))
        assigned = [e for e in events if e["type"] == "desk.ticket" and e["change"] == "assigned"]
        assert assigned == [
            {
                "type": "desk.ticket",
                "ticket": ticket.pk,
                "change": "assigned",
                "status": "assigned",
                "pool": billing.pk,
                "assignee": ann.pk,
            }
        ]
        assert "4242" not in json.dumps(events)
    assert _received(other_pool) == []
