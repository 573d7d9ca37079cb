"""The per-arm results of a prompt A/B test (apps/review/prompt_results.py), read from the
decisions recorded with each arm's prompt version and from audit verdicts."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.chat.services import conversation_create
from apps.orchestrator.models import PromptExperiment, PromptVersion, RoutingDecision
from apps.orchestrator.prompts.services import prompt_experiment_start, prompt_version_append
from apps.review.prompt_results import prompt_experiment_result
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db

Tier = RoutingDecision.Tier
STARTED = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENDED = STARTED + timedelta(days=7)


def ended_experiment() -> PromptExperiment:
    """An A/B test that ran from STARTED until ENDED, its control the winner."""
    control = PromptVersion.objects.get(purpose="router", active=True)
    variant = prompt_version_append(
        text=control.text + "\nVariant B.", few_shot=control.few_shot, parent=control, author=None
    )
    experiment = prompt_experiment_start(variant=variant, split=0.5, actor=None)
    PromptExperiment.objects.filter(pk=experiment.pk).update(
        started_at=STARTED, status="ended", winner=control, ended_at=ENDED
    )
    experiment.refresh_from_db()
    return experiment


def routed_with(version: PromptVersion, at: datetime) -> RoutingDecision:
    """One routing run of a fresh ticket whose router call used `version`, recorded at `at`."""
    ticket = Ticket.objects.create(conversation=conversation_create().conversation)
    decision = RoutingDecision.objects.create(
        ticket=ticket,
        tier=Tier.LLM,
        action=RoutingDecision.Action.ROUTE,
        prompt_version=version,
        confidence=0.9,
        ends_run=True,
    )
    RoutingDecision.objects.filter(pk=decision.pk).update(created_at=at)
    return decision


def test_a_decision_at_the_moment_the_test_ended_is_not_counted():
    experiment = ended_experiment()
    for version in (experiment.control, experiment.variant):
        routed_with(version, STARTED - timedelta(microseconds=1))  # before the test
        routed_with(version, STARTED)  # its first moment
        routed_with(version, ENDED - timedelta(microseconds=1))  # its last moment
        routed_with(version, ENDED)  # the moment it ended: after it, like every window's end

    result = prompt_experiment_result(experiment=experiment)

    assert (result.control.routings, result.variant.routings) == (2, 2)
