"""Scale-out profile: real PostgreSQL and Redis, two ASGI processes sharing them; and, for
the fault tests, the whole stack behind nginx (scripts/stack.py, what `make up` runs)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.messages_api import MessagesApiStandIn
from tests.servers import (
    ROOT,
    AsgiServer,
    PostgresServer,
    RedisServer,
    Stack,
    migrated_postgres,
    service_env,
)

# Fault runs send hundreds of customers from one address in a minute.
FAULT_ENV = {
    "CHAT_RATE_LIMIT": "1000/minute",
    "CONVERSATION_CREATE_RATE": "100000/hour",
    # Every customer of a run comes from 127.0.0.1: lift the per-address socket bounds.
    "SOCKET_CONNECT_RATE": "1000000/minute",
    "SOCKETS_PER_ADDRESS_MAX": "100000",
    "LOG_LEVEL": "WARNING",
    # A run that died frees its ticket after 5 s, not the production 60 s.
    "ROUTING_LEASE_SECONDS": "5",
}


@dataclass
class ScaleCluster:
    redis: RedisServer
    postgres: PostgresServer
    servers: list[AsgiServer]
    worker: subprocess.Popen[bytes]
    env: dict[str, str]


@pytest.fixture(scope="session")
def scale_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleCluster]:
    workdir = tmp_path_factory.mktemp("scale")
    redis, postgres = RedisServer(), PostgresServer(template=migrated_postgres())
    redis.start()
    postgres.start()
    # Every process (both ASGI servers, the worker) writes its Prometheus counters here, and
    # /metrics of either server merges them (docs/operations.md).
    metrics_dir = workdir / "prometheus"
    metrics_dir.mkdir()
    env = {
        **service_env(os.environ),
        "DJANGO_SETTINGS_MODULE": "supportdesk.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis.url,
        "CHAT_ALLOWED_ORIGINS": "*",
        "CHAT_RATE_LIMIT": "1000/minute",
        "SOCKET_CONNECT_RATE": "1000000/minute",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    servers: list[AsgiServer] = []
    worker: subprocess.Popen[bytes] | None = None
    try:
        for n in range(2):
            server = AsgiServer(env, log=workdir / f"asgi-{n}.log")
            server.start()
            servers.append(server)
        with (workdir / "celery.log").open("ab") as log:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "supportdesk",
                    "worker",
                    "--concurrency",
                    "1",
                    "--pool",
                    "solo",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        yield ScaleCluster(redis=redis, postgres=postgres, servers=servers, worker=worker, env=env)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=20)
        for server in servers:
            server.stop()
        postgres.stop()
        redis.stop()


@contextmanager
def fault_stack(
    workdir: Path,
    *,
    standin: MessagesApiStandIn | None = None,
    worker_concurrency: int = 2,
    **extra_env: str,
) -> Iterator[Stack]:
    """The whole scale-out profile (PostgreSQL, Redis, two uvicorn behind nginx, a Celery
    worker and beat) for one fault module, seeded, with the Messages API stand-in as the
    model when given; no ANTHROPIC_* variable of the caller's reaches it."""
    llm = (
        {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": standin.url}
        if standin is not None
        else {}
    )
    stack = Stack(
        workdir,
        env_base=service_env(os.environ),
        template=migrated_postgres(),  # migrated and seeded: pools and the local router model
        graceful_timeout=3,
        worker_concurrency=worker_concurrency,
        extra_env={**FAULT_ENV, **llm, **extra_env},
    )
    with stack:
        yield stack
