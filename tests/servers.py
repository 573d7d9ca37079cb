"""Real servers for browser, scale-out and benchmark runs: uvicorn, Redis, PostgreSQL, nginx,
Celery, and the whole scale-out stack.

They live in scripts/stack.py, which `make up` runs too: one implementation, so a test starts
(and a fault test kills) the very processes an operator runs. Each runs on a free loopback port
with its data in a temporary directory and is stopped by its owner.

Servers started here must be given `service_env(...)` or `embedded_env(...)`, never
`os.environ` as is: those drop ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, so a developer's
exported key never sends test traffic to the real API.
"""

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from scripts import stack
from scripts.stack import (
    ROOT,
    AsgiServer,
    CeleryBeat,
    CeleryWorker,
    NginxServer,
    PostgresServer,
    ProcessIdentity,
    RedisServer,
    Service,
    Stack,
    embedded_env,
    free_port,
    free_ports,
    manage,
    service_env,
    wait_for_port,
    wait_until,
)

__all__ = [
    "ROOT",
    "AsgiServer",
    "CeleryBeat",
    "CeleryWorker",
    "NginxServer",
    "PostgresServer",
    "ProcessIdentity",
    "RedisServer",
    "Service",
    "Stack",
    "embedded_env",
    "free_port",
    "free_ports",
    "manage",
    "migrated_postgres",
    "migrated_sqlite",
    "service_env",
    "wait_for_port",
    "wait_until",
]


# --- Databases ------------------------------------------------------------------------------
# `manage.py migrate` and `seed_demo` take 10-16 s a database on a 2-core machine, and the suites
# start some twenty servers: each test process runs them once per kind of database and copies
# the result. The copies are what the real commands wrote; `make up`, `make run` and
# tests/integration/test_make_up.py still migrate and seed from nothing.


def _router_settings(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables that change what seed_demo trains: a template is shared only under these."""
    return tuple(sorted((name, value) for name, value in env.items() if name.startswith("ROUTER_")))


@cache
def _sqlite_template(seed: bool, router: tuple[tuple[str, str], ...]) -> Path:
    """Built in a directory removed when this process exits (`scratch_dir`)."""
    return stack.sqlite_template(
        embedded_env(stack.scratch_dir("sd-db-"), **dict(router)), seed=seed
    )


def migrated_sqlite(env: Mapping[str, str], *, seed: bool) -> None:
    """Put a migrated (with `seed`, seeded) database at `env`'s SQLITE_PATH."""
    template = _sqlite_template(seed, _router_settings(env))
    stack.sqlite_copy(template, Path(env["SQLITE_PATH"]))


@cache
def migrated_postgres() -> Path:
    """A migrated and seeded PostgreSQL data directory for `Stack(template=...)` and
    `PostgresServer(template=...)`, built once per test process."""
    return stack.postgres_template(service_env(os.environ), seed=True)
