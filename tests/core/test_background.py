"""Background lanes in the embedded profile: threads of this process, as many as the lane's
setting gives (routing mostly waits on the model, so fifty new tickets must not queue)."""

import threading

import pytest
from celery import shared_task
from django.test import override_settings

from apps.core.background import BackgroundLane

_barrier = threading.Barrier(1)
_done: list[int] = []


@shared_task
def _meet(n: int) -> None:
    _barrier.wait(timeout=5)  # breaks (and the task fails) unless every party runs at once
    _done.append(n)


@pytest.mark.parametrize("threads", [1, 4])
@override_settings(BACKGROUND_IN_THREAD=True)
def test_a_lane_runs_as_many_tasks_at_once_as_its_setting_gives(threads, settings):
    global _barrier
    settings.LANE_TEST_THREADS = threads
    _barrier = threading.Barrier(threads)
    _done.clear()
    lane = BackgroundLane("test", recovery="nothing", threads_setting="LANE_TEST_THREADS")
    for n in range(threads):
        lane.submit(_meet, n)
    lane.executor.shutdown(wait=True)
    assert sorted(_done) == list(range(threads))
