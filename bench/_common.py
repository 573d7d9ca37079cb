"""What several benchmarks share: timing a call per text, and the in-process Django set-up on a
throwaway SQLite database. (Percentiles: `tests.integration.load.percentile`, which the load
benchmarks and tests use too.)

A script run as `.venv/bin/python bench/x.py` puts the checkout on sys.path itself before it
imports this module (`sys.path.insert(0, str(ROOT))`).
"""

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import django


def timed(texts: Sequence[str], fn: Callable[[str], object], *, warm: int) -> list[float]:
    """Milliseconds each call fn(text) takes, after calling it on the first `warm` texts (to warm
    caches and code paths)."""
    for text in texts[:warm]:
        fn(text)
    out = []
    for text in texts:
        started = time.perf_counter()
        fn(text)
        out.append((time.perf_counter() - started) * 1000)
    return out


def django_in_process(prefix: str, *, llm_standin: bool) -> Path:
    """Set Django up in this process on a fresh SQLite database in a temporary directory (named
    with `prefix`, removed at exit), and return that directory. Call it before any import that
    needs settings or models.

    The caller's ANTHROPIC_BASE_URL never reaches the process, and its ANTHROPIC_API_KEY is
    always replaced:

    - llm_standin=True: the services run in-process against the Messages API stand-in, on the
      embedded profile pinned whatever the caller's environment says (settings.local, no
      DATABASE_URL, no Redis so Celery runs eagerly, no background thread or embedded beat,
      DEBUG off since it keeps every SQL query in memory, warnings only) and a fake key; the
      script points settings.ANTHROPIC_BASE_URL at the stand-in once it listens.
    - llm_standin=False: no LLM at all (an empty key: the cheap tiers only); the settings module
      (settings.local unless the caller chose one) and every other variable as the caller has
      them.
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ["SQLITE_PATH"] = str(tmp / "db.sqlite3")
    os.environ.pop("ANTHROPIC_BASE_URL", None)
    if llm_standin:
        os.environ["DJANGO_SETTINGS_MODULE"] = "supportdesk.settings.local"
        os.environ.pop("DATABASE_URL", None)
        os.environ["REDIS_URL"] = ""
        os.environ["BACKGROUND_IN_THREAD"] = "false"
        os.environ["EMBEDDED_BEAT"] = "false"
        os.environ["ANTHROPIC_API_KEY"] = "bench-key"
        os.environ["DEBUG"] = "false"
        os.environ["LOG_LEVEL"] = "WARNING"
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings.local")
        os.environ["ANTHROPIC_API_KEY"] = ""
    django.setup()
    return tmp
