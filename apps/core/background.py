"""One way to run work in the background: a Celery task through the broker when there is one,
a thread of this process when there is none (the embedded profile).

Work queued here is never the only record of what must happen: the row it works on says so
(a ticket in `routing`, a pending webhook delivery), and a periodic sweep queues it again. So
when the broker is out of reach (Redis restarting) queueing logs one line and returns; the
caller's transaction has committed and stays committed.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kombu.exceptions
from celery import Task
from django.conf import settings
from django.db import close_old_connections

from apps.core.outages import REDIS_ERRORS, outage_log

logger = logging.getLogger(__name__)

BROKER_ERRORS: tuple[type[Exception], ...] = (kombu.exceptions.OperationalError, *REDIS_ERRORS)


class BackgroundLane:
    """A named line of background work. Embedded, it runs tasks in threads of its own (one by
    default: one writer keeps SQLite calm); with a broker, it sends them to Celery.

    `threads_setting` names the setting that gives the lane more threads, for work that mostly
    waits on something else (routing waits on the model: one thread would queue fifty new
    tickets behind each other's model calls). `recovery` says what picks the work up again
    when it fails ("the stuck-ticket sweep routes it"): it is written into the log line of
    every failure.
    """

    def __init__(self, name: str, *, recovery: str, threads_setting: str | None = None) -> None:
        self.name = name
        self.recovery = recovery
        self.threads_setting = threads_setting
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

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
            self.executor.submit(self._run, task, args)
            return
        try:
            task.delay(*args)
        except BROKER_ERRORS as exc:
            outage_log(exc, where=f"queueing {task.name}{args}; {self.recovery}")

    def _run(self, task: Task[Any, Any], args: tuple[Any, ...]) -> None:
        try:
            task.apply(args=args, throw=True)
        except Exception:
            logger.exception("%s%s failed; %s", task.name, args, self.recovery)
        finally:
            close_old_connections()
