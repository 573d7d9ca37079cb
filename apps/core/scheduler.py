"""The periodic tasks of CELERY_BEAT_SCHEDULE, run in a thread of the server process when there
is no Celery beat (the embedded profile): stuck routing, offline agents, SLA breaches.

Scaled out, `celery beat` runs the same schedule and this stays off (EMBEDDED_BEAT).
"""

import importlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.db import close_old_connections

logger = logging.getLogger(__name__)


def _task(path: str) -> Callable[[], Any]:
    module, _, name = path.rpartition(".")
    task = getattr(importlib.import_module(module), name)
    # A Celery task runs in-process with apply(); a plain function is called.
    return (lambda: task.apply(throw=True)) if hasattr(task, "apply") else task


class EmbeddedBeat:
    """Runs each scheduled task every `schedule` seconds, one at a time, in a daemon thread."""

    def __init__(
        self,
        schedule: Mapping[str, Mapping[str, Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.entries = {
            name: (str(entry["task"]), float(entry["schedule"])) for name, entry in schedule.items()
        }
        self.clock = clock
        started = clock()
        self.due = {name: started + every for name, (_task_path, every) in self.entries.items()}
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def run_pending(self) -> list[str]:
        """Run every entry that is due; return their names. A failing task is logged, not fatal."""
        ran = []
        for name, (task_path, every) in self.entries.items():
            now = self.clock()
            if now < self.due[name]:
                continue
            self.due[name] = now + every
            try:
                _task(task_path)()
            except Exception:
                logger.exception("periodic task %s failed", name)
            finally:
                close_old_connections()
            ran.append(name)
        return ran

    def start(self, *, tick: float = 1.0) -> None:
        def loop() -> None:
            while not self.stopped.wait(tick):
                self.run_pending()

        self.thread = threading.Thread(target=loop, name="embedded-beat", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
