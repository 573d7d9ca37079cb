import tempfile
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from apps.chat.services import ConversationCreated, conversation_create
from apps.core.ratelimit import rate_limit_reset
from apps.orchestrator.prompts.selectors import prompt_version_read
from apps.pools.models import Pool
from apps.pools.services import pool_upsert

# Hypothesis keeps caches (constants it saw in the code) in its home directory, by default
# .hypothesis/ in the working directory: keep them out of the checkout. The fuzz tests keep
# no example database (`database=None`).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "supportdesk-hypothesis")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    rate_limit_reset()
    yield
    rate_limit_reset()


@pytest.fixture(autouse=True)
def _fresh_prompt_versions():
    # Each test's database is rolled back, and the next one gives its prompt versions the same
    # ids: versions remembered by id (they are append-only) are forgotten between tests.
    prompt_version_read.cache_clear()


@pytest.fixture
def conversation(db) -> ConversationCreated:
    return conversation_create(name="Ada", email="ada@example.com")


@pytest.fixture
def billing_pool(db) -> Pool:
    return pool_upsert(slug="billing", name="Billing", description="Invoices and charges.")
