"""Group commit (`ticket_messages_post`): many conversations' messages in one transaction whose
statements do not grow with their number; each conversation's events in order; a message refused
alone leaves the others stored."""

import uuid
from unittest import mock

import pytest
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext, override_settings

from apps.chat.models import Conversation, ConversationEvent, Message
from apps.chat.selectors import event_list_after
from apps.chat.services import conversation_create
from apps.core.errors import EmptyText, RateLimited
from apps.core.ratelimit import rate_limit_reset
from apps.tickets.models import Ticket
from apps.tickets.services import NewMessage, TicketMessage, ticket_messages_post

pytestmark = pytest.mark.django_db

CUSTOMER = Message.Sender.CUSTOMER


def _statements(posts: list[NewMessage]) -> int:
    with CaptureQueriesContext(connection) as queries:
        results = ticket_messages_post(posts)
    assert all(isinstance(result, TicketMessage) for result in results)
    return len(queries)


def test_statements_do_not_grow_with_the_number_of_conversations():
    """Later messages of open tickets (the busy path): 2 conversations or 20, the same count."""
    few = [conversation_create().conversation for _ in range(2)]
    many = [conversation_create().conversation for _ in range(20)]
    for conversation in few + many:  # open their tickets first
        ticket_messages_post([NewMessage(conversation, "hello", CUSTOMER)])

    def later(conversations):
        return [
            NewMessage(conversation, "my invoice is wrong", CUSTOMER, client_id=uuid.uuid4())
            for conversation in conversations
        ]

    assert _statements(later(many)) == _statements(later(few))
    assert Message.objects.count() == 2 * (len(few) + len(many))


def test_a_later_message_compiles_no_select_through_the_orm():
    """The busy path's reads (the locked conversations, resends, open tickets) are statements
    written once per shape (apps/core/sql.py): compiling them cost most of a message's CPU."""
    conversations = [conversation_create().conversation for _ in range(3)]
    for conversation in conversations:
        ticket_messages_post([NewMessage(conversation, "hello", CUSTOMER)])
    compiled: list[str] = []
    original = SQLCompiler.as_sql

    def as_sql(compiler, *args, **kwargs):
        compiled.append(type(compiler).__name__)
        return original(compiler, *args, **kwargs)

    later = [
        NewMessage(conversation, "my invoice is wrong", CUSTOMER, client_id=uuid.uuid4())
        for conversation in conversations
    ]
    with mock.patch.object(SQLCompiler, "as_sql", as_sql):
        assert _statements(later) > 0
    assert "SQLCompiler" not in compiled  # SELECTs; the inserts compile as before
    assert Message.objects.count() == 6


def test_each_conversation_gets_its_events_in_the_order_given():
    a, b = (conversation_create().conversation for _ in range(2))
    results = ticket_messages_post(
        [
            NewMessage(a, "a1", CUSTOMER),
            NewMessage(b, "b1", CUSTOMER),
            NewMessage(a, "a2", CUSTOMER),
        ]
    )
    frames = [event.frame() for event in event_list_after(conversation_id=a.pk, after=0)]
    # a1 opened the ticket (its status follows it), a2 joined it.
    assert [(f["seq"], f["type"], f.get("text")) for f in frames] == [
        (1, "message", "a1"),
        (2, "status", None),
        (3, "message", "a2"),
    ]
    assert a.last_seq == 3  # the caller's object learns its seq
    assert b.last_seq == 2
    assert Ticket.objects.filter(conversation=a).count() == 1
    first, _b1, second = results
    assert isinstance(first, TicketMessage)
    assert isinstance(second, TicketMessage)
    assert first.routing_due  # it opened the ticket
    assert not second.routing_due  # the ticket is routing already
    assert first.ticket == second.ticket


def test_each_conversation_stores_its_last_seq_and_the_next_batch_goes_on_from_it():
    conversations = [conversation_create().conversation for _ in range(3)]
    ids = [conversation.pk for conversation in conversations]
    before = {c.pk: c.updated_at for c in Conversation.objects.filter(pk__in=ids)}
    ticket_messages_post([NewMessage(c, "first", CUSTOMER) for c in conversations])
    ticket_messages_post([NewMessage(conversations[0], "again", CUSTOMER)])
    stored = {c.pk: c for c in Conversation.objects.filter(pk__in=ids)}
    # message + status each, and the first one's second message
    assert [stored[c.pk].last_seq for c in conversations] == [3, 2, 2]
    assert all(stored[pk].updated_at > before[pk] for pk in before)
    for conversation in conversations:  # the log and the counter agree
        seqs = [event.seq for event in event_list_after(conversation_id=conversation.pk, after=0)]
        assert seqs == list(range(1, stored[conversation.pk].last_seq + 1))


def test_a_resend_in_the_same_batch_or_after_it_stores_one_message():
    conversation = conversation_create().conversation
    client_id = uuid.uuid4()
    first, resend = ticket_messages_post(
        [
            NewMessage(conversation, "hello", CUSTOMER, client_id=client_id),
            NewMessage(conversation, "hello", CUSTOMER, client_id=client_id),
        ]
    )
    (later,) = ticket_messages_post(
        [NewMessage(conversation, "hello", CUSTOMER, client_id=client_id)]
    )
    assert isinstance(first, TicketMessage)
    assert first.created
    assert isinstance(resend, TicketMessage)
    assert isinstance(later, TicketMessage)
    assert not resend.created
    assert not later.created
    assert resend.message.pk == later.message.pk == first.message.pk
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert ConversationEvent.objects.filter(conversation=conversation, type="message").count() == 1


@override_settings(CHAT_RATE_LIMIT="1/minute")
def test_a_message_refused_alone_leaves_the_others_stored():
    rate_limit_reset()
    chatty, quiet = (conversation_create().conversation for _ in range(2))
    results = ticket_messages_post(
        [
            NewMessage(chatty, "first", CUSTOMER),
            NewMessage(chatty, "   ", CUSTOMER),  # empty
            NewMessage(chatty, "second", CUSTOMER),  # over the conversation's rate
            NewMessage(quiet, "hello", CUSTOMER),
        ]
    )
    assert [type(result) for result in results] == [
        TicketMessage,
        EmptyText,
        RateLimited,
        TicketMessage,
    ]
    assert list(Message.objects.filter(conversation=chatty).values_list("text", flat=True)) == [
        "first"
    ]
    assert Message.objects.filter(conversation=quiet).count() == 1
    rate_limit_reset()
