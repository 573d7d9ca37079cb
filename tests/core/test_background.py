"""Background lanes in the embedded profile: threads of this process, as many as the lane's
setting gives (routing mostly waits on the model, so fifty new tickets must not queue), which
compute one at a time and wait on other services together."""

import threading
import time

from celery import shared_task
from django.test import override_settings

from apps.core.background import BackgroundLane, waiting

_state: dict = {}


@shared_task
def _wait_together(n: int) -> None:
    with waiting():  # as a routing run around its model call
        _state["barrier"].wait(timeout=5)  # breaks unless every task waits at once
    _state["done"].append(n)


@shared_task
def _compute(n: int) -> None:
    with _state["lock"]:
        _state["inside"] += 1
        _state["most"] = max(_state["most"], _state["inside"])
    time.sleep(0.02)
    with _state["lock"]:
        _state["inside"] -= 1
    _state["done"].append(n)


def _lane(settings, threads: int) -> BackgroundLane:
    settings.LANE_TEST_THREADS = threads
    return BackgroundLane("test", recovery="nothing", threads_setting="LANE_TEST_THREADS")


@override_settings(BACKGROUND_IN_THREAD=True)
def test_tasks_of_a_lane_wait_on_other_services_together(settings):
    _state.update(barrier=threading.Barrier(4), done=[])
    lane = _lane(settings, 4)
    for n in range(4):
        lane.submit(_wait_together, n)
    lane.executor.shutdown(wait=True)
    assert sorted(_state["done"]) == [0, 1, 2, 3]


@override_settings(BACKGROUND_IN_THREAD=True)
def test_tasks_of_a_lane_compute_one_at_a_time(settings):
    _state.update(lock=threading.Lock(), inside=0, most=0, done=[])
    lane = _lane(settings, 4)
    for n in range(6):
        lane.submit(_compute, n)
    lane.executor.shutdown(wait=True)
    assert sorted(_state["done"]) == list(range(6))
    assert _state["most"] == 1
