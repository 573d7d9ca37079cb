"""Background lanes in the embedded profile: threads of this process, as many as the lane's
setting gives (routing mostly waits on the model, so fifty new tickets must not queue), which
compute one at a time and wait on other services together; a low-priority lane's work waits
for the other lanes' (a burst of routing before the agents' context), but not for ever."""

import logging
import threading
import time

from celery import shared_task
from django.db import DatabaseError, OperationalError
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


@shared_task
def _hold(name: str) -> None:
    _state["order"].append(f"{name} started")
    _state["release"].wait(timeout=10)
    _state["order"].append(f"{name} ended")


@shared_task
def _note(name: str) -> None:
    _state["order"].append(name)


@shared_task(autoretry_for=(DatabaseError,), max_retries=3)
def _locked(n: int) -> None:
    raise OperationalError("database is locked")  # SQLite held past its busy timeout


@shared_task
def _broken(n: int) -> None:
    raise ValueError("a bug")


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


@override_settings(BACKGROUND_IN_THREAD=True, BACKGROUND_LOW_PRIORITY_DELAY_SECONDS=30)
def test_low_priority_work_waits_until_the_other_lanes_are_idle(settings):
    _state.update(order=[], release=threading.Event())
    busy = _lane(settings, 2)
    help_ = BackgroundLane("help", recovery="nothing", priority="low")
    busy.submit(_hold, "routing")
    help_.submit(_note, "context")
    time.sleep(0.3)
    assert _state["order"] == ["routing started"]  # the help waits, though its thread is free
    _state["release"].set()
    busy.executor.shutdown(wait=True)
    help_.executor.shutdown(wait=True)
    assert _state["order"] == ["routing started", "routing ended", "context"]


@override_settings(BACKGROUND_IN_THREAD=True, BACKGROUND_LOW_PRIORITY_DELAY_SECONDS=0.2)
def test_low_priority_work_runs_after_its_delay_under_steady_load(settings):
    _state.update(order=[], release=threading.Event())
    busy = _lane(settings, 2)
    help_ = BackgroundLane("help", recovery="nothing", priority="low")
    busy.submit(_hold, "routing")
    help_.submit(_note, "context")
    help_.executor.shutdown(wait=True)  # returns: the help did not wait for the routing
    assert _state["order"] == ["routing started", "context"]
    _state["release"].set()
    busy.executor.shutdown(wait=True)
    assert _state["order"][-1] == "routing ended"


@override_settings(BACKGROUND_IN_THREAD=True)
def test_an_outage_in_a_lane_is_one_line_and_a_bug_keeps_its_traceback(settings, caplog):
    lane = _lane(settings, 1)
    with caplog.at_level(logging.WARNING):
        lane.submit(_locked, 1)  # retried on the outage: Celery's Retry, the outage its cause
        lane.submit(_broken, 2)
        lane.executor.shutdown(wait=True)
    outages = [record for record in caplog.records if record.name == "apps.outages"]
    assert [record.getMessage() for record in outages] == [
        f"dependency unavailable in {_locked.name}(1,); nothing: "
        "OperationalError: database is locked"
    ]
    assert outages[0].exc_info is None
    (failure,) = [record for record in caplog.records if record.name == "apps.core.background"]
    assert failure.getMessage() == f"{_broken.name}(2,) failed; nothing"
    assert failure.exc_info is not None
    assert failure.exc_info[0] is ValueError
