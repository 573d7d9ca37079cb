import uuid

import pytest
from django.db import IntegrityError
from django.test import override_settings

from apps.chat.models import Conversation, ConversationEvent, Message
from apps.chat.selectors import conversation_authenticate, conversation_get_by_token
from apps.chat.services import conversation_create
from apps.core.errors import EmptyText, InvalidText, RateLimited, TextTooLong
from apps.flows.messages import message_post
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db

CUSTOMER = Message.Sender.CUSTOMER


def test_token_is_stored_only_as_a_hash(conversation):
    stored = Conversation.objects.get(pk=conversation.conversation.pk)
    assert conversation.token not in stored.token_hash
    assert len(stored.token_hash) == 64
    assert conversation_get_by_token(token=conversation.token) == stored


def test_wrong_token_or_other_conversation_does_not_authenticate(conversation):
    other = conversation_create()
    conv_id = conversation.conversation.id
    assert conversation_authenticate(conversation_id=conv_id, token=conversation.token)
    assert conversation_authenticate(conversation_id=conv_id, token="nope") is None
    assert conversation_authenticate(conversation_id=conv_id, token=other.token) is None


def test_duplicate_client_id_stores_one_message_and_no_new_event(conversation):
    conv = conversation.conversation
    client_id = uuid.uuid4()
    first = message_post(conversation=conv, text="hi", sender=CUSTOMER, client_id=client_id)
    again = message_post(conversation=conv, text="hi", sender=CUSTOMER, client_id=client_id)
    assert first.created
    assert not again.created
    assert again.message.pk == first.message.pk
    assert Message.objects.filter(conversation=conv).count() == 1
    assert ConversationEvent.objects.filter(conversation=conv).count() == 2


def test_database_refuses_a_second_message_with_the_same_client_id(conversation):
    conv = conversation.conversation
    client_id = uuid.uuid4()
    Message.objects.create(conversation=conv, sender=CUSTOMER, text="a", client_id=client_id)
    with pytest.raises(IntegrityError):
        Message.objects.create(conversation=conv, sender=CUSTOMER, text="b", client_id=client_id)


def test_same_client_id_in_two_conversations_is_two_messages(conversation):
    other = conversation_create().conversation
    client_id = uuid.uuid4()
    message_post(
        conversation=conversation.conversation, text="a", sender=CUSTOMER, client_id=client_id
    )
    assert message_post(conversation=other, text="b", sender=CUSTOMER, client_id=client_id).created


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", EmptyText),
        ("   \n\t ", EmptyText),
        ("x" * 4001, TextTooLong),
        ("a\x00b", InvalidText),
        ("a\x1b[31mred", InvalidText),
        ("x\u202ey", InvalidText),
    ],
)
def test_bad_text_is_refused_and_nothing_is_stored(conversation, text, error):
    conv = conversation.conversation
    with pytest.raises(error):
        message_post(conversation=conv, text=text, sender=CUSTOMER)
    assert not Message.objects.filter(conversation=conv).exists()
    assert not Ticket.objects.filter(conversation=conv).exists()


def test_message_at_the_length_limit_is_accepted(conversation):
    assert message_post(
        conversation=conversation.conversation, text="x" * 4000, sender=CUSTOMER
    ).created


@override_settings(CHAT_RATE_LIMIT="3/minute")
def test_rate_limit_is_per_conversation_and_names_the_wait(conversation):
    conv = conversation.conversation
    for n in range(3):
        message_post(conversation=conv, text=f"message {n}", sender=CUSTOMER)
    with pytest.raises(RateLimited) as refused:
        message_post(conversation=conv, text="one too many", sender=CUSTOMER)
    assert 1 <= refused.value.retry_after <= 60
    assert Message.objects.filter(conversation=conv).count() == 3
    other = conversation_create().conversation
    assert message_post(conversation=other, text="unaffected", sender=CUSTOMER).created
