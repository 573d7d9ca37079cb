"""A ticket's lifecycle (apps/tickets/services.py): the customer's first message opens one, later
messages join it, a message after resolution opens a new one, and status changes reach the
conversation as `status` events."""

import pytest

from apps.chat.models import Message
from apps.chat.selectors import event_list_after
from apps.flows.messages import message_post
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_status_set

pytestmark = pytest.mark.django_db

CUSTOMER = Message.Sender.CUSTOMER


def test_first_customer_message_opens_a_routing_ticket_and_emits_events(conversation):
    conv = conversation.conversation
    posted = message_post(conversation=conv, text="  I was charged twice  ", sender=CUSTOMER)
    assert posted.created
    assert posted.message.text == "I was charged twice"
    ticket = Ticket.objects.get(conversation=conv)
    assert ticket.status == Ticket.Status.ROUTING
    assert ticket.pool is None
    assert posted.message.ticket == ticket
    frames = [e.frame() for e in event_list_after(conversation_id=conv.id, after=0)]
    assert [(f["type"], f["seq"]) for f in frames] == [("message", 1), ("status", 2)]
    assert frames[1] == {
        "type": "status",
        "seq": 2,
        "status": "routing",
        "pool": None,
        "pool_name": None,
    }


def test_later_messages_join_the_open_ticket(conversation):
    conv = conversation.conversation
    first = message_post(conversation=conv, text="hello", sender=CUSTOMER).message
    second = message_post(conversation=conv, text="more detail", sender=CUSTOMER).message
    assert first.ticket_id == second.ticket_id
    assert Ticket.objects.filter(conversation=conv).count() == 1
    assert conv.last_seq == 3


def test_message_after_resolution_opens_a_new_ticket(conversation):
    conv = conversation.conversation
    first = message_post(conversation=conv, text="hello", sender=CUSTOMER).message
    ticket_status_set(ticket=Ticket.objects.get(conversation=conv), status=Ticket.Status.RESOLVED)
    again = message_post(conversation=conv, text="one more thing", sender=CUSTOMER).message
    assert again.ticket_id != first.ticket_id
    assert Ticket.objects.filter(conversation=conv, status=Ticket.Status.ROUTING).count() == 1


def test_status_change_emits_a_status_event_with_the_pool(conversation, billing_pool):
    conv = conversation.conversation
    message_post(conversation=conv, text="invoice question", sender=CUSTOMER)
    ticket = Ticket.objects.get(conversation=conv)
    ticket.pool = billing_pool
    ticket_status_set(ticket=ticket, status=Ticket.Status.QUEUED)
    last = event_list_after(conversation_id=conv.id, after=2)
    assert [e.frame() for e in last] == [
        {"type": "status", "seq": 3, "status": "queued", "pool": "billing", "pool_name": "Billing"}
    ]
