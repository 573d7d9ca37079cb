"""Scale-out profile: real PostgreSQL and Redis, two ASGI processes sharing them."""

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import AsgiServer, PostgresServer, RedisServer, manage


@dataclass
class ScaleCluster:
    redis: RedisServer
    postgres: PostgresServer
    servers: list[AsgiServer]


@pytest.fixture(scope="session")
def scale_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleCluster]:
    workdir = tmp_path_factory.mktemp("scale")
    redis, postgres = RedisServer(), PostgresServer()
    redis.start()
    postgres.start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supportdesk.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis.url,
        "CHAT_ALLOWED_ORIGINS": "*",
        "CHAT_RATE_LIMIT": "1000/minute",
        "LOG_LEVEL": "WARNING",
    }
    servers: list[AsgiServer] = []
    try:
        manage("migrate", "--noinput", env=env)
        for n in range(2):
            server = AsgiServer(env, log=workdir / f"asgi-{n}.log")
            server.start()
            servers.append(server)
        yield ScaleCluster(redis=redis, postgres=postgres, servers=servers)
    finally:
        for server in servers:
            server.stop()
        postgres.stop()
        redis.stop()
