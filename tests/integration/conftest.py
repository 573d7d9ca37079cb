"""Scale-out profile: real PostgreSQL and Redis, two ASGI processes sharing them."""

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import ROOT, AsgiServer, PostgresServer, RedisServer, manage


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
    redis, postgres = RedisServer(), PostgresServer()
    redis.start()
    postgres.start()
    # Every process (both ASGI servers, the worker) writes its Prometheus counters here, and
    # /metrics of either server merges them (docs/operations.md).
    metrics_dir = workdir / "prometheus"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supportdesk.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis.url,
        "CHAT_ALLOWED_ORIGINS": "*",
        "CHAT_RATE_LIMIT": "1000/minute",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    servers: list[AsgiServer] = []
    worker: subprocess.Popen[bytes] | None = None
    try:
        manage("migrate", "--noinput", env=env)
        manage("seed_demo", env=env)  # pools and the local router model
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
