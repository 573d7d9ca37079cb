"""One way to run work in the background: a Celery task through the broker when there is one,
a thread of this process when there is none (the embedded profile).

Work queued here is never the only record of what must happen: the row it works on says so
(a ticket in `routing`, a pending webhook delivery), and a periodic sweep queues it again. So
when the broker is out of reach (Redis restarting) queueing logs one line and returns; the
caller's transaction has committed and stays committed.
"""

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Literal

import kombu.exceptions
from celery import Task
from celery.exceptions import Retry
from django.conf import settings
from django.db import close_old_connections

from apps.core.outages import DEPENDENCY_ERRORS, REDIS_ERRORS, outage_log

logger = logging.getLogger(__name__)

BROKER_ERRORS: tuple[type[Exception], ...] = (kombu.exceptions.OperationalError, *REDIS_ERRORS)


class BackgroundLane:
    """A named line of background work. Embedded, it runs tasks in threads of its own (one by
    default: one writer keeps SQLite calm); with a broker, it sends them to Celery.

    `threads_setting` names the setting that gives the lane more threads, for work that mostly
    waits on something else (routing waits on the model: one thread would queue fifty new
    tickets behind each other's model calls). Those threads still compute one at a time: a
    task holds the lane's turn except inside `waiting()` (around its model call), so that a
    burst of work in the lane never takes more of the process than one thread did, and the
    sockets' database thread keeps its share. `recovery` says what picks the work up again
    when it fails ("the stuck-ticket sweep routes it"): it is written into the log line of
    every failure.

    A `priority="low"` lane's work is a help, not a step of anyone's wait (the agent's context
    for a routed ticket): embedded, each of its tasks starts once no other lane has work queued
    or running, or `BACKGROUND_LOW_PRIORITY_DELAY_SECONDS` after it was queued, whichever comes
    first, so a burst of new tickets is routed before their context is gathered, and under
    steady load the help still comes, late by at most that delay.
    """

    def __init__(
        self,
        name: str,
        *,
        recovery: str,
        threads_setting: str | None = None,
        priority: Literal["normal", "low"] = "normal",
    ) -> None:
        self.name = name
        self.recovery = recovery
        self.threads_setting = threads_setting
        self.priority = priority
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.turn = threading.Lock()  # held by the task that computes; see `waiting`

    @property
    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                threads = getattr(settings, self.threads_setting) if self.threads_setting else 1
                self._executor = ThreadPoolExecutor(
                    max_workers=max(1, threads), thread_name_prefix=self.name
                )
            return self._executor

    def submit(self, task: Task[Any, Any], *args: Any) -> None:
        """Run `task(*args)` in the background (called after commit)."""
        if settings.BACKGROUND_IN_THREAD:
            if self.priority == "normal":
                _foreground.enter()
                try:
                    self.executor.submit(self._run, task, args)
                except BaseException:  # the executor is shut down (the process is ending)
                    _foreground.leave()
                    raise
            else:
                queued_at = time.monotonic()
                self.executor.submit(self._run_after_foreground, task, args, queued_at)
            return
        try:
            task.delay(*args)
        except BROKER_ERRORS as exc:
            outage_log(exc, where=f"queueing {task.name}{args}; {self.recovery}")

    def _run_after_foreground(
        self, task: Task[Any, Any], args: tuple[Any, ...], queued_at: float
    ) -> None:
        delay = settings.BACKGROUND_LOW_PRIORITY_DELAY_SECONDS
        _foreground.idle_wait(until=queued_at + delay)
        self._compute(task, args)

    def _run(self, task: Task[Any, Any], args: tuple[Any, ...]) -> None:
        try:
            self._compute(task, args)
        finally:
            _foreground.leave()

    def _compute(self, task: Task[Any, Any], args: tuple[Any, ...]) -> None:
        with self.turn:
            _current.lane = self
            try:
                task.apply(args=args, throw=True)
            except Exception as exc:
                self._failure_log(task, args, exc)
            finally:
                _current.lane = None
                close_old_connections()

    def _failure_log(self, task: Task[Any, Any], args: tuple[Any, ...], exc: Exception) -> None:
        """A database or Redis outage is one line (apps.outages), like every outage: expected,
        and the work is picked up again. Anything else is a failure, with its traceback. A
        task that retries on an outage raises Celery's `Retry` here (the lane runs it eagerly),
        with the outage as its cause."""
        cause = exc.exc if isinstance(exc, Retry) else exc
        if isinstance(cause, DEPENDENCY_ERRORS):
            outage_log(cause, where=f"{task.name}{args}; {self.recovery}")
        else:
            logger.exception("%s%s failed; %s", task.name, args, self.recovery)


class _Foreground:
    """How many tasks of normal-priority lanes are queued or running in this process."""

    def __init__(self) -> None:
        self._busy = 0
        self._changed = threading.Condition()

    def enter(self) -> None:
        with self._changed:
            self._busy += 1

    def leave(self) -> None:
        with self._changed:
            self._busy -= 1
            if self._busy == 0:
                self._changed.notify_all()

    def idle_wait(self, *, until: float) -> None:
        """Return once no normal-priority task is queued or running, or at `until`
        (time.monotonic())."""
        with self._changed:
            while self._busy and (left := until - time.monotonic()) > 0:
                self._changed.wait(left)


_foreground = _Foreground()
_current = threading.local()  # the lane whose turn this thread holds


@contextmanager
def waiting() -> Iterator[None]:
    """Around a wait on another service (a model call): another task of this thread's lane may
    compute meanwhile. Outside a lane's thread (a Celery worker, a request) it does nothing."""
    lane: BackgroundLane | None = getattr(_current, "lane", None)
    if lane is None:
        yield
        return
    lane.turn.release()
    try:
        yield
    finally:
        lane.turn.acquire()
