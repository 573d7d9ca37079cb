"""Pytest fixtures for the fakes. Import them into a test module or a conftest:

from tests.fakes.fixtures import messages_api  # noqa: F401
"""

from collections.abc import Iterator

import pytest

from tests.fakes.messages_api import MessagesApiStandIn


@pytest.fixture
def messages_api() -> Iterator[MessagesApiStandIn]:
    """A started Messages API stand-in on 127.0.0.1, stopped after the test."""
    with MessagesApiStandIn() as standin:
        yield standin
