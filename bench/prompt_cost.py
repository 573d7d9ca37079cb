"""Cost per router call at 3, 4, 77 and 150 pools, prompt caching billed as the API does.

Each pool set gets a fresh prompt version (the active template, with labelled examples chosen
by `prompt_version_examples_refresh` from the set's labelled data) and --calls router calls
through the real `anthropic` SDK against the Messages API stand-in with `bill_usage=True`
(tests/fakes/messages_api.py: tokens at about 4 characters of JSON each, a prefix of tools +
system ending in `cache_control` cached from the model's minimum, 4,096 tokens for Haiku 4.5,
written at 1.25x and read at 0.1x the input price). Calls go through `text_route_dry_run`, so
each is priced and recorded as a RoutingDecision exactly as in production.

Pool sets (data read where it lies, ../shared/data beside the checkout, never copied):
  3    the default seed pools (billing, technical, refund), the shipped seed examples
  4    Bitext's pool column (billing, technical, refund, and `general` for its "other")
  77   the first 77 CLINC150 intents (sorted), CLINC `train` as labelled data
  150  all CLINC150 intents
Pool descriptions: --descriptions short ("Card declined requests.") or quoted (the name and two
training texts, as bench/learning_curve.py writes them). Customer texts: the sets' test texts.

The stand-in cannot judge a prompt's accuracy and does not know how long a real model's
`reason` is. It answers as the schema it is sent asks: with `reason` capped at 40 characters
("a few words"), the pool's name in words (e.g. "card declined", up to 40 characters); with the
old 300-character "one sentence", a sentence naming the pool (about 60 characters); and
`missing_fields: []` only when the schema requires it. --reason-chars N makes every reason N
characters instead (e.g. 40: the longest the prompt allows).

The router sizes its prefix by the API's own count (`count_tokens`, once per prompt version,
pool set and model; prompts/prefix.py); the stand-in counts as it bills. --chars-per-token F
plays a tokenizer other than the 4 characters a token the router estimates with (e.g. 3.5 or
4.5); --uncounted makes count_tokens fail (404), so the router fills by its estimate alone.

Run at an older commit (with this file and the stand-in copied there) it measures that
commit's prompts: where `prompt_version_examples_refresh` does not exist the version is used
as it is. `evaluate_router --prompt-version A --prompt-version B` against the real API stays the
way to compare prompts' accuracy.

    .venv/bin/python bench/prompt_cost.py [--calls 20] [--pools 3,4,77,150]
        [--descriptions short|quoted] [--reason-chars N] [--chars-per-token F] [--uncounted]
        [--data ../shared/data]
"""

import argparse
import csv
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import django_in_process  # noqa: E402

django_in_process("sd-prompt-cost-", llm_standin=True)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from apps.flows.demo import DEFAULT_POOLS  # noqa: E402
from apps.orchestrator.local_model import OTHER, seed_examples  # noqa: E402
from apps.orchestrator.models import ModelVersion, PromptVersion, RoutingDecision  # noqa: E402
from apps.orchestrator.services import text_route_dry_run  # noqa: E402
from apps.pools.models import Pool  # noqa: E402
from apps.pools.services import pool_upsert  # noqa: E402
from apps.review.models import TrainingExample  # noqa: E402
from apps.review.training.examples import training_examples_store  # noqa: E402
from tests.fakes.messages_api import MessagesApiStandIn, Reply, error, tool_use  # noqa: E402

try:  # absent before issue 15: the bench then measures the prompt version as it is
    from apps.review.training.prompt_examples import prompt_version_examples_refresh
except ImportError:  # pragma: no cover - only when run at an older commit
    prompt_version_examples_refresh = None  # type: ignore[assignment]

DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"
TARGET_USD = Decimal("0.0006")
Rows = list[tuple[str, str]]


@dataclass(frozen=True)
class PoolSet:
    pools: list[dict[str, Any]]
    labelled: Rows  # (text, pool); empty: the shipped seed examples (training_base's fallback)
    customers: list[str]


def _words(slug: str) -> str:
    return slug.replace("_", " ")


def default_set(calls: int) -> PoolSet:
    rows = [(text, pool) for text, pool in seed_examples() if pool != OTHER]
    customers = [text for text, _ in rows[::-1]][:calls]  # the examples least likely shown
    return PoolSet([dict(spec) for spec in DEFAULT_POOLS], [], customers)


def bitext_set(data_dir: Path, calls: int) -> PoolSet:
    with (data_dir / "bitext_support.csv").open(encoding="utf-8", newline="") as handle:
        rows = [(row["text"], row["pool"]) for row in csv.DictReader(handle)]
    rows = [(text, "general" if pool == OTHER else pool) for text, pool in rows]
    described = {spec["slug"]: spec["description"] for spec in DEFAULT_POOLS}
    described["general"] = (
        "Everything else: accounts, orders and delivery, addresses, newsletters, feedback, "
        "contacting a person."
    )
    pools = [
        {"slug": slug, "name": slug.capitalize(), "description": described[slug]}
        for slug in sorted(described)
    ]
    return PoolSet(pools, rows[1::2], [text for text, _ in rows[::2]][::97][:calls])


def clinc_set(data_dir: Path, count: int, calls: int, descriptions: str) -> PoolSet:
    with (data_dir / "clinc150_data_full.json").open(encoding="utf-8") as handle:
        data = json.load(handle)
    intents = sorted({intent for _, intent in data["train"]})[:count]
    chosen = set(intents)
    train = [(text, intent) for text, intent in data["train"] if intent in chosen]
    quoted: dict[str, list[str]] = {}
    for text, intent in train:
        quoted.setdefault(intent, []).append(text)
    pools = []
    for intent in intents:
        name = _words(intent).capitalize()
        description = f"{name} requests."
        if descriptions == "quoted":
            description = f"{name} requests, e.g. " + "; ".join(
                f'"{text}"' for text in quoted[intent][:2]
            )
        pools.append({"slug": intent, "name": name, "description": description})
    test = [text for text, intent in data["test"] if intent in chosen]
    return PoolSet(pools, train, test[:: max(len(test) // calls, 1)][:calls])


def answerer(reason_chars: int | None) -> Callable[[dict[str, Any]], Reply]:
    """The router model as the stand-in plays it: the first pool, and a reason as long as the
    schema it was sent asks (module docstring)."""

    def answer(body: dict[str, Any]) -> Reply:
        schema = body["tools"][0]["input_schema"]
        pool = schema["properties"]["pool"]["enum"][0]
        limit = schema["properties"]["reason"].get("maxLength", 300)
        if reason_chars is not None:
            reason = ("x" * reason_chars)[:limit]
        elif limit <= 40:
            reason = _words(pool)[:limit]
        else:
            reason = f"The customer asks about {_words(pool)}, which this team handles."
        output: dict[str, Any] = {
            "action": "route",
            "pool": pool,
            "confidence": 0.91,
            "reason": reason,
        }
        if "missing_fields" in schema.get("required", []):
            output["missing_fields"] = []
        return tool_use(output)

    return answer


@dataclass(frozen=True)
class Figures:
    pools: int
    examples: int  # the version carries
    shown: int  # the user turn's first block shows
    first: RoutingDecision
    after: list[RoutingDecision]
    unfilled: list[RoutingDecision]  # the same calls with ROUTER_PROMPT_PREFIX_TOKENS=0
    counts: int  # count_tokens requests the filled calls made


def shown_examples(standin: MessagesApiStandIn) -> int:
    """How many labelled examples the last request showed (the user turn's first block)."""
    body = standin.message_requests[-1].json or {}
    content = body["messages"][0]["content"] if body.get("messages") else ""
    first = content[0]["text"] if isinstance(content, list) else ""
    _, found, block = first.partition("Messages people routed earlier, by pool")
    if not found:
        return 0
    return sum(line.count(" | ") + 1 for line in block.splitlines()[1:] if line.strip())


def route_all(texts: list[str], standin: MessagesApiStandIn) -> list[RoutingDecision]:
    standin.prompt_cache.clear()  # a new version's first call writes its prefix
    decisions = []
    for text in texts:
        run = text_route_dry_run(text=text)
        decisions += [d for d in run.decisions if d.tier == RoutingDecision.Tier.LLM]
    return decisions


def measure(pool_set: PoolSet, parent: PromptVersion, standin: MessagesApiStandIn) -> Figures:
    Pool.objects.update(active=False)
    TrainingExample.objects.all().delete()
    for spec in pool_set.pools:
        pool_upsert(**spec)
        Pool.objects.filter(slug=spec["slug"]).update(active=True)
    if pool_set.labelled:
        training_examples_store(examples=pool_set.labelled, dataset="bench")
    examples = 0
    if prompt_version_examples_refresh is not None:
        version = prompt_version_examples_refresh(parent=parent, author=None, activate=True)
        examples = len(version.examples)
    counted_before = len(standin.count_requests)
    decisions = route_all(pool_set.customers, standin)
    counts = len(standin.count_requests) - counted_before
    shown = shown_examples(standin)
    unfilled = []
    if examples:  # the same calls without filling: what the examples cost and save
        with override_settings(ROUTER_PROMPT_PREFIX_TOKENS=0):
            unfilled = route_all(pool_set.customers, standin)
    return Figures(
        len(pool_set.pools), examples, shown, decisions[0], decisions[1:], unfilled, counts
    )


def usd(value: Decimal | float) -> str:
    return f"${Decimal(value):.7f}"


def report(rows: list[Figures]) -> None:
    print(
        f"{'pools':>5} {'examples':>8} {'shown':>5} {'calls':>5} {'1st call':>11} "
        f"{'mean after':>11} {'max after':>11} {'prefix tok':>10} {'input tok':>9} "
        f"{'output tok':>10} {'unfilled':>11} {'pays from':>9} {'counts':>6}"
    )
    for row in rows:
        after = row.after or [row.first]
        costs = [d.cost_usd for d in after]
        prefix = row.first.cache_creation_tokens or row.first.cache_read_tokens
        unfilled, pays = "-", "-"
        if row.unfilled and row.shown:  # none shown: the prefix is long already, nothing to fill
            u_first, u_after = row.unfilled[0].cost_usd, mean(d.cost_usd for d in row.unfilled[1:])
            unfilled = usd(u_after)
            saved = u_after - mean(costs)
            # A streak of n calls: filled first + (n-1) after < unfilled first + (n-1) after
            pays = (
                str(math.floor((row.first.cost_usd - u_first) / saved) + 2)
                if saved > 0
                else "never"
            )
        print(
            f"{row.pools:>5} {row.examples:>8} {row.shown:>5} {len(row.after) + 1:>5} "
            f"{usd(row.first.cost_usd):>11} {usd(mean(costs)):>11} {usd(max(costs)):>11} "
            f"{prefix or '-':>10} {mean(d.input_tokens for d in after):>9.1f} "
            f"{mean(d.output_tokens for d in after):>10.1f} {unfilled:>11} {pays:>9} "
            f"{row.counts:>6}"
        )
    means = [mean(d.cost_usd for d in (row.after or [row.first])) for row in rows]
    worst = max(max(d.cost_usd for d in (row.after or [row.first])) for row in rows)
    met = all(m <= TARGET_USD for m in means)
    print(
        "cost per router call after the first: "
        + ", ".join(f"{row.pools} pools {usd(m)}" for row, m in zip(rows, means, strict=True))
        + f" (target <= ${TARGET_USD}): {'met' if met else 'not met'}"
        + f"; the dearest single call after the first: {usd(worst)}"
    )
    print(
        "unfilled: the same calls with ROUTER_PROMPT_PREFIX_TOKENS=0 (mean after the first); "
        "pays from: the length of a streak of calls (each within 5 minutes of the last, so the "
        "cached prefix lives) from which the filled prefix costs less in total, its dearer "
        "first call included; counts: count_tokens requests that sized the prefix"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="router calls per pool set")
    parser.add_argument("--pools", default="3,4,77,150", help="pool sets to measure")
    parser.add_argument("--descriptions", choices=["short", "quoted"], default="short")
    parser.add_argument("--reason-chars", type=int, default=None)
    parser.add_argument("--chars-per-token", type=float, default=4.0)
    parser.add_argument("--uncounted", action="store_true", help="count_tokens answers 404")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="the shared data")
    args = parser.parse_args(argv)

    call_command("migrate", verbosity=0)
    ModelVersion.objects.update(active=False)  # no local tier: every text reaches the LLM
    parent = PromptVersion.objects.get(purpose="router", active=True)
    filled = getattr(settings, "ROUTER_PROMPT_PREFIX_TOKENS", 0)  # absent before issue 15
    print(
        f"model {settings.ROUTER_MODEL}; prefix filled to {filled} tokens; "
        f"descriptions {args.descriptions}; reason "
        f"{'as the schema asks' if args.reason_chars is None else f'{args.reason_chars} chars'}; "
        f"the API's tokenizer {args.chars_per_token} characters a token; count_tokens "
        f"{'off (404)' if args.uncounted else 'on'}"
    )
    rows = []
    with MessagesApiStandIn(bill_usage=True, chars_per_token=args.chars_per_token) as standin:
        standin.default = answerer(args.reason_chars)
        if args.uncounted:
            standin.count_tokens_reply = error(404, "not_found_error", "count_tokens is off")
        settings.ANTHROPIC_BASE_URL = standin.url
        for count in (int(part) for part in args.pools.split(",")):
            if count == 3:
                pool_set = default_set(args.calls)
            elif count == 4:
                pool_set = bitext_set(args.data, args.calls)
            else:
                pool_set = clinc_set(args.data, count, args.calls, args.descriptions)
            rows.append(measure(pool_set, parent, standin))
    report(rows)


if __name__ == "__main__":
    main()
