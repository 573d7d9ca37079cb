"""Learning curve: does learning from corrections move routing from the LLM to the local model?

A stream of tickets from CLINC150 (its 150 intents are the pools) goes through the real chat and
routing services on a fresh SQLite database. The Messages API stand-in
(tests/fakes/messages_api.py) plays the router LLM: it answers `route_ticket` with the ticket's
true intent with probability --llm-accuracy (the escalation model with --escalation-accuracy),
otherwise with a random other pool; its confidence is drawn from a band (right: 0.80-0.99,
wrong: 0.45-0.95) and its reason is a few words; the stand-in bills each call from its request
and answer, prompt caching included (`bill_usage`), so the cost is priced by
apps/orchestrator/pricing.py as the API would bill it. People are simulated: every review and
audit item is resolved with the true pool, and an agent moves a wrongly routed ticket ("wrong
pool") with probability --catch-rate. Every --check-every tickets (the period of the beat task
`router_retrain_when_due_task`) `model_version_retrain_when_due` retrains when enough labels
arrived since the last retraining, as the product does; with --retrain-every N,
`model_version_retrain` runs every N tickets instead (the schedule before issue 15). A retraining
trains a candidate from those labels (and the LLM's confident decisions, distilled, and the local
tier's routes nobody moved), gives pools thresholds of their own, and the gate activates it or
not. The local model starts from --per-intent-seed-examples examples per intent of CLINC `train`
(0: no local model at first); the stream is `test` + `val` (in scope), shuffled by --seed. The
data is read where it lies (../shared/data beside the checkout), never copied.

    .venv/bin/python bench/learning_curve.py [--tickets 5000] [--check-every 25]
        [--retrain-every 0]
        [--llm-accuracy 0.9] [--per-intent-seed-examples 2] [--window 1000] [--seed 0]
        [--catch-rate 0.8] [--audit-share 0.02] [--distill-weight W] [--unmoved-weight W]
        [--target-misroute-rate R] [--holdout-share 0.3]

Printed per window of tickets and in total: the LLM-call share (tickets with at least one LLM or
escalation call), the review share, the automatic decisions (routed without a person) and their
accuracy against the true intent, the share decided by the local model and its accuracy, the
local model's top-1 accuracy on every ticket it scored (whatever its confidence), the cost per
ticket (the sum of RoutingDecision.cost_usd over the window's tickets), and the labels people
gave; then what the active local model would have decided at fixed thresholds of its margin
over the runner-up (0.9, 0.95, 0.99; its own thresholds hold against the margin with the
neighbour gap, neighbours.py, on another scale), which separates what it learned from the
threshold retraining chose; then every retraining and what the gate did; then issue 15's
fast-start target on tickets 1-1,000 (model-call share <= 60% at an automatic accuracy >=
94.4%), the local model's precision per pool there (with how many pools would show below 90%
by chance on so few tickets, and how many the tickets show to be below it), and the active
model's pools with thresholds of their own. Audit draws are seeded too (REVIEW_AUDIT_SEED), so a
seed reproduces a run. A default run takes about 11 minutes alone on 2 cores (669 s on
2026-12-07, most of it retraining with embeddings), --tickets 1000 about 3 (193 s).
"""

import argparse
import json
import logging
import random
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import django_in_process  # noqa: E402

# Celery runs eagerly: routing runs inside message_post's on_commit.
django_in_process("sd-learning-", llm_standin=True)

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Avg, Count, Q, Sum  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from apps.chat.models import Message  # noqa: E402
from apps.chat.services import conversation_create  # noqa: E402
from apps.desk.services import ticket_reroute  # noqa: E402
from apps.flows.messages import message_post  # noqa: E402
from apps.orchestrator.local_model import OTHER  # noqa: E402
from apps.orchestrator.models import ModelVersion, RoutingDecision  # noqa: E402
from apps.pools.models import Pool  # noqa: E402
from apps.pools.services import pool_upsert  # noqa: E402
from apps.review.models import ReviewItem, RoutingLabel  # noqa: E402
from apps.review.services import review_item_resolve  # noqa: E402
from apps.review.training.retrain import (  # noqa: E402
    RetrainResult,
    model_version_retrain,
    model_version_retrain_when_due,
)
from apps.review.training.versions import model_version_train  # noqa: E402
from apps.tickets.models import Ticket  # noqa: E402
from tests.fakes.messages_api import MessagesApiStandIn, Reply, tool_use  # noqa: E402

DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"
Tier = RoutingDecision.Tier
LLM_TIERS = (Tier.LLM, Tier.ESCALATION)
RIGHT_CONFIDENCE = (0.80, 0.99)
WRONG_CONFIDENCE = (0.45, 0.95)
WHAT_IF_THRESHOLDS = (0.9, 0.95, 0.99)
_FENCED = re.compile(r"<customer_message>\n(.*)\n</customer_message>", re.S)

Examples = list[tuple[str, str]]


def text_key(text: str) -> str:
    """A loose key for matching the router's (minimised) text back to the dataset's."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


class RouterLlm:
    """The stand-in's `default`: answers as the router LLM would, right with a set accuracy.

    The truth of the ticket being routed is set before its message is posted (routing runs
    synchronously inside message_post); the customer text in the user turn is also looked up,
    and `mismatches` counts requests whose text says another intent than the side table.
    """

    def __init__(
        self,
        *,
        truths: dict[str, str],
        accuracy: float,
        escalation_accuracy: float,
        escalation_model: str,
        seed: int,
    ) -> None:
        self.truths = truths
        self.accuracy = accuracy
        self.escalation_accuracy = escalation_accuracy
        self.escalation_model = escalation_model
        self.rng = random.Random(seed)
        self.truth = ""
        self.calls = 0
        self.mismatches = 0
        self.unmatched = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.calls += 1
        content = body["messages"][-1]["content"] if body.get("messages") else ""
        # The turn is the fenced text, or blocks (labelled examples, then the fenced text).
        user_turn = content if isinstance(content, str) else "\n".join(b["text"] for b in content)
        fenced = _FENCED.search(user_turn)
        by_text = self.truths.get(text_key(fenced.group(1))) if fenced else None
        if by_text is None:
            self.unmatched += 1  # PII redaction changed the text: the side table decides
        elif by_text != self.truth:
            self.mismatches += 1
        tool = body["tools"][0]
        slugs = [slug for slug in tool["input_schema"]["properties"]["pool"]["enum"] if slug]
        accuracy = (
            self.escalation_accuracy
            if body.get("model") == self.escalation_model
            else self.accuracy
        )
        if self.truth in slugs and self.rng.random() < accuracy:
            pool, band = self.truth, RIGHT_CONFIDENCE
        else:
            pool, band = self.rng.choice([s for s in slugs if s != self.truth]), WRONG_CONFIDENCE
        return tool_use(
            {
                "action": "route",
                "pool": pool,
                "confidence": round(self.rng.uniform(*band), 3),
                "reason": pool.replace("_", " ")[:40],  # a few words, as the prompt asks
            }
        )


@dataclass
class Tally:
    """Counts over a window of tickets."""

    tickets: int = 0
    llm: int = 0
    escalation: int = 0
    review: int = 0
    auto: int = 0
    auto_correct: int = 0
    local: int = 0
    local_correct: int = 0
    local_ran: int = 0  # tickets the local model scored (it was active)
    local_top1: int = 0  # ... whose top label was the true intent, whatever the confidence
    cost: Decimal = Decimal(0)
    labels: dict[str, int] = field(default_factory=dict)
    # The local model's (margin, right) on every ticket it scored, "other" left out (its
    # confidence for an older model): how sure the model was, on the margin's own scale.
    scores: list[tuple[float, bool]] = field(default_factory=list)
    # Pool -> (tickets the local model routed there, rightly).
    local_pools: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, other: "Tally") -> None:
        merged = ("labels", "scores", "local_pools")
        for name in (f.name for f in fields(self) if f.name not in merged):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.scores += other.scores
        for pool, (routed, right) in other.local_pools.items():
            was = self.local_pools.get(pool, (0, 0))
            self.local_pools[pool] = (was[0] + routed, was[1] + right)
        for source, n in other.labels.items():
            self.labels[source] = self.labels.get(source, 0) + n


@dataclass(frozen=True)
class RetrainEvent:
    after: int
    result: RetrainResult
    seconds: float


def load(data_dir: Path, *, seed: int, per_intent: int) -> tuple[Examples, Examples, Examples]:
    """(stream, bootstrap examples, examples for pool descriptions), each shuffled by seed."""
    with (data_dir / "clinc150_data_full.json").open(encoding="utf-8") as handle:
        data = json.load(handle)
    rng = random.Random(seed)
    train = [(text, intent) for text, intent in data["train"]]
    rng.shuffle(train)
    by_intent: dict[str, list[str]] = {}
    for text, intent in train:
        by_intent.setdefault(intent, []).append(text)
    bootstrap = [(t, i) for i, texts in sorted(by_intent.items()) for t in texts[:per_intent]]
    described = [
        (t, i) for i, texts in sorted(by_intent.items()) for t in texts[per_intent : per_intent + 2]
    ]
    stream = [(text, intent) for text, intent in data["test"] + data["val"]]
    rng.shuffle(stream)
    return stream, bootstrap, described


def pools_create(described: Examples) -> dict[str, Pool]:
    """One pool per intent; the description names it and quotes two training texts."""
    examples: dict[str, list[str]] = {}
    for text, intent in described:
        examples.setdefault(intent, []).append(text)
    pools = {}
    for intent, texts in sorted(examples.items()):
        name = intent.replace("_", " ").capitalize()
        quoted = "; ".join(f'"{text}"' for text in texts)
        pools[intent] = pool_upsert(
            slug=intent, name=name, description=f"{name} requests, e.g. {quoted}"
        )
    return pools


def ticket_run(
    text: str,
    truth: str,
    *,
    llm: RouterLlm,
    pools: dict[str, Pool],
    reviewer: Any,
    agent: Any,
    catch_rate: float,
    rng: random.Random,
) -> Tally:
    """Post one customer message (routing runs on commit), then let people correct it."""
    llm.truth = truth
    conversation = conversation_create().conversation
    posted = message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    assert posted.message.ticket_id is not None  # a customer's first message opens a ticket
    ticket = Ticket.objects.select_related("pool").get(pk=posted.message.ticket_id)
    decisions = list(RoutingDecision.objects.filter(ticket=ticket).order_by("id"))
    final = next(d for d in reversed(decisions) if d.ends_run)
    tally = Tally(tickets=1, cost=sum((d.cost_usd for d in decisions), Decimal(0)))
    tally.llm = int(any(d.tier in LLM_TIERS for d in decisions))
    tally.escalation = int(any(d.tier == Tier.ESCALATION for d in decisions))
    scored = next((d for d in decisions if d.tier == Tier.LOCAL), None)
    if scored is not None:
        tally.local_ran = 1
        output = json.loads(scored.raw_output)
        label = output.get("label")
        tally.local_top1 = int(label == truth)
        # The margin over the runner-up, or the confidence of an older model.
        score = output.get("margin", scored.confidence)
        if label != OTHER and score is not None:
            tally.scores.append((score, label == truth))
    if ticket.status == Ticket.Status.QUEUED:
        assert ticket.pool is not None
        right = ticket.pool.slug == truth
        tally.auto, tally.auto_correct = 1, int(right)
        if final.tier == Tier.LOCAL:
            tally.local, tally.local_correct = 1, int(right)
            tally.local_pools[ticket.pool.slug] = (1, int(right))
    else:
        tally.review = int(ticket.status == Ticket.Status.IN_REVIEW)

    for item in ReviewItem.objects.filter(ticket=ticket, status=ReviewItem.Status.OPEN).order_by(
        "id"
    ):
        confirmed = item.suggested_pool_id == pools[truth].pk
        review_item_resolve(
            item=item,
            reviewer=reviewer,
            verdict=ReviewItem.Verdict.CONFIRMED if confirmed else ReviewItem.Verdict.ROUTED,
            pool=None if confirmed else pools[truth],
        )
    ticket.refresh_from_db()
    if (
        ticket.status == Ticket.Status.QUEUED
        and ticket.pool_id != pools[truth].pk
        and rng.random() < catch_rate
    ):
        ticket_reroute(ticket=ticket, actor=agent, pool=pools[truth], reason="wrong pool")
    for source in RoutingLabel.objects.filter(ticket=ticket).values_list("source", flat=True):
        tally.labels[source] = tally.labels.get(source, 0) + 1
    return tally


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def print_windows(rows: Sequence[tuple[str, Tally]]) -> None:
    header = (
        f"{'tickets':>11} {'LLM calls':>9} {'escal.':>7} {'review':>7} {'auto':>6} "
        f"{'auto acc':>8} {'local':>6} {'local acc':>9} {'local top-1':>11} {'$/ticket':>9} "
        f"{'labels review/audit/reroute':>28}"
    )
    print(header)
    print("-" * len(header))
    for name, t in rows:
        labels = "/".join(
            str(t.labels.get(s, 0))
            for s in (
                RoutingLabel.Source.REVIEW,
                RoutingLabel.Source.AUDIT,
                RoutingLabel.Source.REROUTE,
            )
        )
        cost = t.cost / t.tickets if t.tickets else Decimal(0)
        print(
            f"{name:>11} {share(t.llm, t.tickets):>9} {share(t.escalation, t.tickets):>7} "
            f"{share(t.review, t.tickets):>7} {share(t.auto, t.tickets):>6} "
            f"{share(t.auto_correct, t.auto):>8} {share(t.local, t.tickets):>6} "
            f"{share(t.local_correct, t.local):>9} {share(t.local_top1, t.local_ran):>11} "
            f"{float(cost):>9.5f} {labels:>28}"
        )


def print_what_if(rows: Sequence[tuple[str, Tally]], thresholds: Sequence[float]) -> None:
    """What the active local model would have decided at fixed thresholds: share of tickets
    and accuracy (the model's own threshold is what it did decide, above)."""
    print(
        f"{'tickets':>11} " + " ".join(f"{f'local >= {t:g}: share / acc':>28}" for t in thresholds)
    )
    for name, t in rows:
        cells = []
        for threshold in thresholds:
            taken = [right for score, right in t.scores if score >= threshold]
            cells.append(f"{share(len(taken), t.tickets)} / {share(sum(taken), len(taken))}")
        print(f"{name:>11} " + " ".join(f"{cell:>28}" for cell in cells))


def gate_verdict(result: RetrainResult) -> str:
    if result.activated:
        return "activated"
    reason = result.reason
    if reason.startswith("less accurate"):
        return "kept: acc"
    if reason.startswith("worse calibrated"):
        return "kept: Brier"
    if reason.startswith("no threshold"):
        return "kept: thr"
    return "kept"


def fast_start_figures(pools: dict[str, Any] | None) -> str:
    """A retraining's fast start: the floor of the pools' own thresholds, how many pools have
    one, and the share of its out-of-sample labels they would route."""
    if not pools:
        return ""
    floor = f"{pools['floor']:.4f}" if pools.get("floor_met") else "none"
    return f" {floor:>8} {pools['pools']:>8} {100 * pools['auto_routed_share']:>6.1f}%"


def print_retrains(events: Sequence[RetrainEvent]) -> None:
    print(
        f"{'after':>6} {'version':>7} {'gate':>10} {'held-out':>8} {'cand acc/Brier':>15} "
        f"{'active acc/Brier':>17} {'threshold':>10} {'auto@thr':>8} {'human':>6} "
        f"{'distilled':>9} {'train s':>7} {'fs floor':>8} {'fs pools':>8} {'fs auto':>7} "
        f"{'unmoved':>7}"
    )
    for event in events:
        r = event.result
        labels = r.metrics.get("labels", {})
        if r.version is None:
            print(f"{event.after:>6} {'-':>7} {'no model':>10}  {r.reason}")
            continue
        active = r.metrics.get("active")
        figures = f"{100 * active['accuracy']:.1f}% / {active['brier']:.3f}" if active else "none"
        candidate = (
            f"{100 * r.metrics['candidate']['accuracy']:.1f}% / "
            f"{r.metrics['candidate']['brier']:.3f}"
        )
        threshold = r.metrics["threshold"]
        print(
            f"{event.after:>6} {'v' + str(r.version.pk):>7} {gate_verdict(r):>10} "
            f"{r.metrics['holdout']:>8} "
            f"{candidate:>15} "
            f"{figures:>17} "
            f"{threshold['value']:>9.4f}{' ' if threshold['met'] else '*'} "
            f"{100 * threshold['auto_routed_share']:>7.1f}% "
            f"{labels.get('human', 0):>6} {labels.get('distilled', 0):>9} {event.seconds:>7.1f}"
            f"{fast_start_figures(r.metrics.get('pools'))} {labels.get('unmoved', 0):>7}"
        )
    if any(e.result.version and not e.result.metrics["threshold"]["met"] for e in events):
        print("* no threshold met the target misroute rate on people's labels (1.0 is used)")


def print_target(stream: Examples, windows: Sequence[tuple[str, Tally]], size: int) -> None:
    """Issue 15's fast-start target, on the first window when it is tickets 1-1,000."""
    if size != 1000 or not windows or windows[0][1].tickets != 1000:
        print("fast-start target: needs --window 1000 and at least 1,000 tickets")
        return
    first = windows[0][1]
    pools = first.local_pools
    below = sorted(
        (right / routed, pool) for pool, (routed, right) in pools.items() if right < 0.9 * routed
    )
    print(
        f"tickets 1-1,000: the local model routed to {len(pools)} pools; "
        f"{sum(routed >= 5 for routed, _ in pools.values())} of them got 5 tickets or more; "
        f"{len(below)} pools below 90% precision"
        + (
            ": " + ", ".join(f"{pool} {pools[pool][1]}/{pools[pool][0]}" for _, pool in below)
            if below
            else ""
        )
    )
    print(pools_below_by_chance(pools))
    calls = first.llm / first.tickets
    accuracy = first.auto_correct / first.auto if first.auto else 0.0
    met = calls <= 0.60 and accuracy >= 0.944
    print(
        f"model-call share in tickets 1-1,000 = {100 * calls:.1f}% (target <= 60%), automatic "
        f"accuracy {100 * accuracy:.1f}% (target >= 94.4%): {'met' if met else 'not met'}"
    )


def pools_below_by_chance(pools: dict[str, tuple[int, int]]) -> str:
    """Whether the pools seen below 90% precision are below it, or only few tickets' chance.

    On a few tickets a pool at 95% shows below 90% often (1 wrong in 5 is 80%). Two figures: how
    many pools would show below 90% on these ticket counts were every pool as precise as the
    tier is overall; and how many the tickets show to be below 90% (a one-sided binomial test of
    each pool's right routes against 90%, p-values adjusted by Benjamini-Hochberg across the
    pools, scipy's `false_discovery_control`, at 5%)."""
    from scipy.stats import binom, false_discovery_control

    if not pools:
        return "pools below 90% by chance: no pools routed"
    counts = list(pools.values())
    routed = sum(n for n, _ in counts)
    overall = sum(right for _, right in counts) / routed
    # Seen below 90%: right < 0.9 n, i.e. right <= ceil(0.9 n) - 1.
    expected = sum(binom.cdf(-(-9 * n // 10) - 1, n, overall) for n, _ in counts)
    adjusted = false_discovery_control([binom.cdf(right, n, 0.9) for n, right in counts])
    shown = sorted(pool for (pool, _), p in zip(pools.items(), adjusted, strict=True) if p < 0.05)
    return (
        f"by chance: were every pool at the tier's {100 * overall:.1f}%, {expected:.1f} pools "
        f"would show below 90% on these ticket counts; shown below 90% (binomial test, "
        f"Benjamini-Hochberg at 5%): {len(shown)}" + (f" ({', '.join(shown)})" if shown else "")
    )


def print_pools() -> None:
    """The active model's pools with thresholds of their own, and their figures on the labels
    they were chosen on: predicted out of sample, but each pool's threshold stops where that
    sample shows it holding, so these read high (the windows above measure what followed)."""
    active = ModelVersion.objects.filter(active=True).first()
    figures = (active.metrics.get("pools") or {}) if active else {}
    if not figures:
        print("active model: no pool thresholds of its own")
        return
    per_pool = figures.get("per_pool", {})
    measured = [f for f in per_pool.values() if f["accepted"]]
    below = sum(f["precision"] < 0.9 for f in measured)
    print(
        f"active model v{active.pk if active else '-'}: {figures['pools']} pools with thresholds "
        f"of their own (floor {figures['floor']:.4f}) on {figures['labels_scored']} labels "
        f"predicted out of sample, which chose them (so these read high): "
        f"{100 * figures['auto_routed_share']:.1f}% auto-routed at "
        f"{100 * (figures['precision'] or 0):.1f}% precision; {len(measured)} pools measured, "
        f"{below} below 90%"
    )


def main() -> None:
    # A local model on a few examples per intent has more classes than half its rows: sklearn
    # warns about it on every fit. The memory broker of eager Celery has no hostname: kombu says.
    warnings.filterwarnings("ignore", message="The number of unique classes", category=UserWarning)
    logging.getLogger("kombu").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument(
        "--retrain-every",
        type=int,
        default=0,
        help="retrain every N tickets; 0 (default): when due, as the product's beat task does",
    )
    parser.add_argument(
        "--check-every",
        type=int,
        default=25,
        help="with --retrain-every 0: tickets between two checks (the beat task's period)",
    )
    parser.add_argument("--llm-accuracy", type=float, default=0.9)
    parser.add_argument(
        "--escalation-accuracy",
        type=float,
        default=None,
        help="default: halfway between --llm-accuracy and 1",
    )
    parser.add_argument("--catch-rate", type=float, default=0.8)
    parser.add_argument("--audit-share", type=float, default=0.02)
    parser.add_argument("--per-intent-seed-examples", type=int, default=2)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument(
        "--distill-weight", type=float, default=None, help="default: ROUTER_DISTILL_WEIGHT"
    )
    parser.add_argument(
        "--unmoved-weight", type=float, default=None, help="default: ROUTER_UNMOVED_WEIGHT"
    )
    parser.add_argument(
        "--target-misroute-rate",
        type=float,
        default=None,
        help="default: ROUTER_TARGET_MISROUTE_RATE",
    )
    parser.add_argument(
        "--holdout-share", type=float, default=0.3, help="of people's labels, for the gate"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    escalation_accuracy = (
        (1 + args.llm_accuracy) / 2
        if args.escalation_accuracy is None
        else args.escalation_accuracy
    )

    started = time.perf_counter()
    stream, bootstrap, described = load(
        args.data_dir, seed=args.seed, per_intent=args.per_intent_seed_examples
    )
    stream = stream[: args.tickets]
    call_command("migrate", verbosity=0)
    pools = pools_create(described)
    user_model = get_user_model()
    reviewer = user_model.objects.create_superuser("reviewer", "reviewer@example.com", None)
    agent = user_model.objects.create_superuser("agent", "agent@example.com", None)
    if bootstrap:
        model_version_train(
            examples=bootstrap,
            note=f"bench: {args.per_intent_seed_examples} CLINC train examples per intent",
            seed=args.seed,
        )
    initial = ModelVersion.objects.filter(active=True).first()

    with (
        MessagesApiStandIn(bill_usage=True) as api,
        override_settings(
            ANTHROPIC_BASE_URL=api.url,
            REVIEW_AUDIT_SHARE=args.audit_share,
            # Which tickets are audited moves the labels, the held-out slice and so every gate
            # decision: a seeded draw makes a seed reproduce a run.
            REVIEW_AUDIT_SEED=args.seed + 2,
            **(
                {}
                if args.distill_weight is None
                else {"ROUTER_DISTILL_WEIGHT": args.distill_weight}
            ),
            **(
                {}
                if args.unmoved_weight is None
                else {"ROUTER_UNMOVED_WEIGHT": args.unmoved_weight}
            ),
        ),
    ):
        from django.conf import settings

        llm = RouterLlm(
            truths={text_key(text): intent for text, intent in stream},
            accuracy=args.llm_accuracy,
            escalation_accuracy=escalation_accuracy,
            escalation_model=settings.ESCALATION_MODEL,
            seed=args.seed,
        )
        api.default = llm
        target = (
            settings.ROUTER_TARGET_MISROUTE_RATE
            if args.target_misroute_rate is None
            else args.target_misroute_rate
        )
        print(
            f"learning curve: {len(stream):,} CLINC150 tickets over {len(pools)} pools, "
            f"router LLM right {args.llm_accuracy:.0%} (escalation {escalation_accuracy:.0%}), "
            f"agents catch {args.catch_rate:.0%} of wrong pools, audit share "
            f"{args.audit_share:.0%}, "
            + (
                f"retrain every {args.retrain_every}"
                if args.retrain_every
                else f"retrain when due (checked every {args.check_every})"
            )
            + f" (distill weight {settings.ROUTER_DISTILL_WEIGHT}, unmoved weight "
            f"{settings.ROUTER_UNMOVED_WEIGHT}, target misroute rate "
            f"{target:.0%}, "
            f"held-out share {args.holdout_share}), seed {args.seed}",
            flush=True,
        )
        if initial is not None:
            print(
                f"initial local model v{initial.pk}: {len(bootstrap)} examples "
                f"({args.per_intent_seed_examples} per intent), held-out accuracy "
                f"{100 * float(initial.metrics.get('accuracy', 0)):.1f}%, threshold "
                f"{initial.threshold:.3f}",
                flush=True,
            )
        else:
            print("no local model at first", flush=True)
        print(flush=True)

        rng = random.Random(args.seed + 1)
        windows: list[tuple[str, Tally]] = []
        total, window = Tally(), Tally()
        events: list[RetrainEvent] = []
        routing_seconds = 0.0
        for n, (text, truth) in enumerate(stream, start=1):
            tick = time.perf_counter()
            tally = ticket_run(
                text,
                truth,
                llm=llm,
                pools=pools,
                reviewer=reviewer,
                agent=agent,
                catch_rate=args.catch_rate,
                rng=rng,
            )
            routing_seconds += time.perf_counter() - tick
            window.add(tally)
            total.add(tally)
            if n % args.window == 0 or n == len(stream):
                name = f"{n - window.tickets + 1}-{n}"
                windows.append((name, window))
                print(
                    f"  {name}: LLM calls {share(window.llm, window.tickets)}, auto accuracy "
                    f"{share(window.auto_correct, window.auto)} "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
                window = Tally()
            if n >= len(stream):
                continue
            if args.retrain_every and n % args.retrain_every == 0:
                tick = time.perf_counter()
                result = model_version_retrain(
                    seed=args.seed,
                    holdout_share=args.holdout_share,
                    target_misroute_rate=args.target_misroute_rate,
                )
                events.append(RetrainEvent(n, result, time.perf_counter() - tick))
            elif not args.retrain_every and n % args.check_every == 0:
                # What the beat task router_retrain_when_due_task does.
                tick = time.perf_counter()
                result = model_version_retrain_when_due(
                    seed=args.seed,
                    holdout_share=args.holdout_share,
                    target_misroute_rate=args.target_misroute_rate,
                )
                if result.version is not None or "retraining needs" in result.reason:
                    events.append(RetrainEvent(n, result, time.perf_counter() - tick))

    wall = time.perf_counter() - started
    print()
    print_windows([*windows, ("total", total)])
    print()
    print_what_if([*windows, ("total", total)], WHAT_IF_THRESHOLDS)
    print()
    print_retrains(events)
    calls = RoutingDecision.objects.filter(tier__in=LLM_TIERS).aggregate(
        n=Count("id"),
        cost=Sum("cost_usd"),
        tokens=Avg("input_tokens"),
        cache_read=Avg("cache_read_tokens"),
        cache_writes=Count("id", filter=Q(cache_creation_tokens__gt=0)),
        cache_reads=Count("id", filter=Q(cache_read_tokens__gt=0)),
    )
    reasons = Counter(
        ReviewItem.objects.filter(kind=ReviewItem.Kind.REVIEW).values_list("reason", flat=True)
    )
    print(f"\nreview reasons: {', '.join(f'{r} {n}' for r, n in reasons.most_common()) or 'none'}")
    print(
        f"LLM calls: {calls['n']:,} costing ${float(calls['cost'] or 0):.4f} (every decision: "
        f"${float(total.cost):.4f}), {calls['tokens'] or 0:,.0f} uncached and "
        f"{calls['cache_read'] or 0:,.0f} cache-read input tokens on average (prompt cache: "
        f"{calls['cache_writes']} writes, {calls['cache_reads']} reads); "
        f"stand-in: {llm.unmatched} texts known by the side table only (redacted), "
        f"{llm.mismatches} whose loose text key names another intent (dataset near-duplicates)"
    )
    retrain_seconds = sum(event.seconds for event in events)
    print(
        f"wall time {wall:.0f} s: tickets {routing_seconds:.0f} s "
        f"({1000 * routing_seconds / max(len(stream), 1):.1f} ms each, routing + corrections), "
        f"retraining {retrain_seconds:.0f} s"
    )
    print_target(stream, windows, args.window)
    print_pools()
    if len(windows) >= 2:
        first, last = windows[0][1], windows[-1][1]
        print(
            f"LLM-call share {share(first.llm, first.tickets)} -> {share(last.llm, last.tickets)};"
            f" automatic accuracy {share(first.auto_correct, first.auto)} -> "
            f"{share(last.auto_correct, last.auto)}; cost per ticket "
            f"${float(first.cost / first.tickets):.5f} -> ${float(last.cost / last.tickets):.5f}"
        )


if __name__ == "__main__":
    main()
