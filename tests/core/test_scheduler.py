"""The embedded beat runs the Celery beat schedule in-process when there is no `celery beat`."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.core.scheduler import EmbeddedBeat
from apps.flows.messages import message_post
from apps.pools.services import pool_upsert, ticket_queue
from apps.tickets.models import Ticket, TicketActivity

CALLS: list[str] = []


def record_call() -> None:
    CALLS.append("called")


def fail() -> None:
    raise RuntimeError("boom")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_entry_runs_once_per_interval():
    CALLS.clear()
    clock = FakeClock()
    beat = EmbeddedBeat({"rec": {"task": f"{__name__}.record_call", "schedule": 10.0}}, clock=clock)
    assert beat.run_pending() == []
    clock.now = 10.0
    assert beat.run_pending() == ["rec"]
    clock.now = 15.0
    assert beat.run_pending() == []
    clock.now = 20.0
    beat.run_pending()
    assert CALLS == ["called", "called"]


def test_a_failing_task_is_logged_and_the_others_still_run(caplog):
    CALLS.clear()
    clock = FakeClock()
    beat = EmbeddedBeat(
        {
            "bad": {"task": f"{__name__}.fail", "schedule": 1.0},
            "rec": {"task": f"{__name__}.record_call", "schedule": 1.0},
        },
        clock=clock,
    )
    clock.now = 1.0
    assert beat.run_pending() == ["bad", "rec"]
    assert CALLS == ["called"]
    assert "periodic task bad failed" in caplog.text


def test_the_thread_runs_the_schedule_until_stopped():
    CALLS.clear()
    beat = EmbeddedBeat({"rec": {"task": f"{__name__}.record_call", "schedule": 0.01}})
    beat.start(tick=0.01)
    deadline = threading.Event()
    for _ in range(200):
        if len(CALLS) >= 2:
            break
        deadline.wait(0.01)
    beat.stop()
    assert len(CALLS) >= 2
    assert beat.thread is not None
    assert not beat.thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_the_real_schedule_raises_sla_breaches_through_celery_tasks():
    pool = pool_upsert(
        slug="billing", name="Billing", description="Invoices", first_response_minutes=1
    )
    created = conversation_create(name="Ada")
    message_post(conversation=created.conversation, text="Invoice?", sender=Message.Sender.CUSTOMER)
    ticket = ticket_queue(ticket=Ticket.objects.get(conversation=created.conversation), pool=pool)
    Ticket.objects.filter(pk=ticket.pk).update(sla_due_at=timezone.now() - timedelta(seconds=1))
    clock = FakeClock()
    beat = EmbeddedBeat(settings.CELERY_BEAT_SCHEDULE, clock=clock)
    clock.now = 24 * 3600.0  # every entry is due, the daily retrain included
    assert set(beat.run_pending()) == set(settings.CELERY_BEAT_SCHEDULE)
    ticket.refresh_from_db()
    assert ticket.sla_breached_at is not None
    assert TicketActivity.objects.filter(ticket=ticket, kind="sla_breached").count() == 1
