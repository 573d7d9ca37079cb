"""Short versions of bench/chat_load.py and bench/soak.py: the same code, sizes that fit CI.

They assert what must hold at any load, never a latency (CI machines are shared and noisy):
a crowd of customers arriving at once all get their ticket routed, with no error and nothing
twice, on both profiles, and the echo beside them is measured; a paced soak counts every
message in and out, and leaves no file descriptor or PostgreSQL connection behind (within
the tolerances stated in tests/integration/load.py) once its warm-up is over.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.ledger import ledger
from tests.integration.load import (
    ChatLoadResult,
    EchoResult,
    Target,
    chat_load_run,
    echo_load_run,
    embedded_echo,
    embedded_target,
    scale_echo,
    scale_target,
    soak_breaches,
    soak_run,
)
from tests.servers import migrated_postgres

pytestmark = [pytest.mark.scale, pytest.mark.timeout(300)]

CUSTOMERS = 30
SOAK_CUSTOMERS, SOAK_MESSAGES, SOAK_WARMUP = 30, 600, 2


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp("load-scale")
    with scale_target(workdir, template=migrated_postgres(), graceful_timeout=3) as target:
        yield target


def crowd_and_echo(target: Target, echo_url: str) -> tuple[ChatLoadResult, EchoResult]:
    chat = asyncio.run(chat_load_run(target.url, customers=CUSTOMERS, time_limit=120))
    echo = asyncio.run(echo_load_run(echo_url, clients=CUSTOMERS, time_limit=60))
    return chat, echo


def assert_every_ticket_routed_once(chat: ChatLoadResult, echo: EchoResult, book: dict) -> None:
    assert chat.routed == CUSTOMERS, chat.final_statuses
    assert (chat.error_frames, chat.failed_connections, chat.timeouts) == (0, 0, 0)
    assert (chat.duplicates, book["duplicate_messages"], book["event_gaps"]) == (0, 0, [])
    # Both latencies were measured for every customer, and the echo for every socket.
    assert len(chat.event_ms) == len(chat.settled_ms) == CUSTOMERS
    assert (len(echo.round_trips_ms), echo.failures) == (CUSTOMERS, 0)


def test_a_crowd_at_once_is_routed_without_an_error_on_the_embedded_profile(tmp_path: Path):
    with embedded_target(tmp_path / "chat") as target, embedded_echo(tmp_path / "echo") as echo:
        chat, floor = crowd_and_echo(target, echo)
        book = ledger(target.env)
    assert_every_ticket_routed_once(chat, floor, book)


def test_a_crowd_at_once_is_routed_without_an_error_through_nginx(scale: Target, tmp_path: Path):
    with scale_echo(tmp_path / "echo") as echo:
        chat, floor = crowd_and_echo(scale, echo)
    assert_every_ticket_routed_once(chat, floor, ledger(scale.env))


def test_a_paced_soak_counts_every_message_in_and_out_and_leaves_nothing_open(scale: Target):
    result = asyncio.run(
        soak_run(
            scale.url,
            customers=SOAK_CUSTOMERS,
            messages=SOAK_MESSAGES,
            warmup=SOAK_WARMUP,
            think=0.2,
            time_limit=180,
            snapshot=scale.snapshot,
        )
    )
    book = ledger(scale.env)
    asyncio.run(result.catch_up())
    assert result.sent == SOAK_MESSAGES
    # Counts in = out, nothing lost or twice, no fd or connection growth after the warm-up.
    assert soak_breaches(result, book) == {}
