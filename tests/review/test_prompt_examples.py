"""A prompt version with labelled examples, from the data people labelled."""

import pytest
from django.core.management import call_command

from apps.chat.services import conversation_create
from apps.orchestrator.models import PromptActivation, PromptVersion
from apps.review.models import RoutingLabel
from apps.review.training.examples import training_examples_store
from apps.review.training.prompt_examples import prompt_version_examples_refresh
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db


def test_a_refresh_appends_a_version_with_examples_and_corrections(pools):
    training_examples_store(
        examples=[
            ("I was charged twice", "billing"),
            ("invoice with VAT please", "billing"),
            ("app crashes on start", "technical"),
            ("money back for order 12", "refund"),
            ("tell me a joke", "other"),
        ]
    )
    conversation = conversation_create().conversation
    ticket = Ticket.objects.create(conversation=conversation, status=Ticket.Status.RESOLVED)
    RoutingLabel.objects.create(
        ticket=ticket,
        source="reroute",
        previous_pool=pools["technical"],
        pool=pools["billing"],
        text="my card at ada@example.com was declined",
    )
    parent = PromptVersion.objects.get(active=True)

    version = prompt_version_examples_refresh(parent=parent, author=None, activate=True)

    assert (version.parent, version.text, version.few_shot) == (
        parent,
        parent.text,
        parent.few_shot,
    )
    assert version.active
    assert PromptActivation.objects.filter(version=version).exists()
    pools_in_order = [e["pool"] for e in version.examples]
    assert pools_in_order[:3] == ["billing", "refund", "technical"]
    assert version.examples[3] == {
        "text": "my card at [EMAIL] was declined",
        "pool": "billing",
    }
    assert "other" not in pools_in_order
    assert len(version.examples) == 5


def test_the_command_appends_an_inactive_version(pools):
    parent = PromptVersion.objects.get(active=True)
    call_command("prompt_examples")

    version = PromptVersion.objects.exclude(pk=parent.pk).get()
    assert not version.active
    assert version.examples  # the shipped seed examples: nothing stored yet
