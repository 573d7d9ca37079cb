"""Model prices and the cost of one call, in exact decimal dollars."""

from dataclasses import dataclass
from decimal import Decimal

PER_MILLION = Decimal(1_000_000)
CACHE_WRITE_FACTOR = Decimal("1.25")
CACHE_READ_FACTOR = Decimal("0.10")
BATCH_FACTOR = Decimal("0.5")


@dataclass(frozen=True)
class ModelPrice:
    input_per_mtok: Decimal
    output_per_mtok: Decimal


# US dollars per million tokens (Anthropic list prices, 2026-11).
PRICES: dict[str, ModelPrice] = {
    "claude-haiku-4-5": ModelPrice(Decimal("1"), Decimal("5")),
    "claude-sonnet-4-6": ModelPrice(Decimal("3"), Decimal("15")),
    "claude-opus-4-5": ModelPrice(Decimal("5"), Decimal("25")),
}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0


def price_for(model: str) -> ModelPrice | None:
    """The price of `model`, also for dated ids such as `claude-haiku-4-5-20251001`."""
    if model in PRICES:
        return PRICES[model]
    for name, price in PRICES.items():
        if model.startswith(name + "-"):
            return price
    return None


def cost_usd(*, model: str, usage: Usage, batch: bool = False) -> Decimal:
    """Tokens times price: input, output, cache writes at 125% and cache reads at 10% of input."""
    price = price_for(model)
    if price is None:
        raise KeyError(f"no price for model {model!r}; add it to apps/orchestrator/pricing.py")
    cost = (
        usage.input_tokens * price.input_per_mtok
        + usage.output_tokens * price.output_per_mtok
        + usage.cache_creation_tokens * price.input_per_mtok * CACHE_WRITE_FACTOR
        + usage.cache_read_tokens * price.input_per_mtok * CACHE_READ_FACTOR
    ) / PER_MILLION
    return cost * BATCH_FACTOR if batch else cost
