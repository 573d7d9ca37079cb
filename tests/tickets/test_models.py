"""The invariants the database keeps for tickets (apps/tickets/models.py)."""

import pytest
from django.db import IntegrityError

from apps.chat.models import Message
from apps.flows.messages import message_post
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db

CUSTOMER = Message.Sender.CUSTOMER


def test_a_queued_ticket_must_have_a_pool(conversation):
    conv = conversation.conversation
    message_post(conversation=conv, text="hi", sender=CUSTOMER)
    with pytest.raises(IntegrityError):
        Ticket.objects.filter(conversation=conv).update(status=Ticket.Status.QUEUED)
