"""Real servers for browser, scale-out and benchmark runs: uvicorn, Redis, PostgreSQL, nginx,
Celery, and the whole scale-out stack.

They live in scripts/stack.py, which `make up` runs too: one implementation, so a test starts
(and a fault test kills) the very processes an operator runs. Each runs on a free loopback port
with its data in a temporary directory and is stopped by its owner.

Servers started here must be given `service_env(...)` or `embedded_env(...)`, never
`os.environ` as is: those drop ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, so a developer's
exported key never sends test traffic to the real API.
"""

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
    "service_env",
    "wait_for_port",
    "wait_until",
]
