import pytest

from apps.chat.services import ConversationCreated, conversation_create
from apps.core.ratelimit import rate_limit_reset
from apps.pools.models import Pool
from apps.pools.services import pool_upsert


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    rate_limit_reset()
    yield
    rate_limit_reset()


@pytest.fixture
def conversation(db) -> ConversationCreated:
    return conversation_create(name="Ada", email="ada@example.com")


@pytest.fixture
def billing_pool(db) -> Pool:
    return pool_upsert(slug="billing", name="Billing", description="Invoices and charges.")
