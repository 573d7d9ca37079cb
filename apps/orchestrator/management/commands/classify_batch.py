"""Route every text of a CSV offline: cheap tiers locally, doubtful ones in one Anthropic batch."""

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from apps.orchestrator.outcomes import ReviewReason, RoutingOutcome
from apps.orchestrator.services import batch_provider, pipeline_build

OUTPUT_COLUMNS = [
    "routed_pool",
    "routed_action",
    "routed_tier",
    "confidence",
    "review_reason",
    "cost_usd",
]


class Command(BaseCommand):
    help = (
        "Classify a CSV of texts into pools; --anthropic-batch sends the doubtful ones to the "
        "Message Batches API at half price."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--in", dest="source", required=True)
        parser.add_argument("--out", dest="target", required=True)
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--anthropic-batch", action="store_true")
        parser.add_argument("--poll-seconds", type=float, default=10.0)
        parser.add_argument("--timeout-seconds", type=float, default=24 * 3600.0)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with Path(options["source"]).open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                rows = list(reader)
                columns = list(reader.fieldnames or [])
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        if options["text_column"] not in columns:
            raise CommandError(f"no column {options['text_column']!r} in {options['source']}")
        pipeline = pipeline_build(use_llm=False, write_cache=False, clarify_allowed=False)
        outcomes: list[RoutingOutcome] = [
            pipeline.run(row[options["text_column"]] or "")
            for row in tqdm(rows, desc="cheap tiers", file=self.stderr)
        ]
        doubtful = {
            str(index): outcome
            for index, outcome in enumerate(outcomes)
            if outcome.review_reason == ReviewReason.LLM_DISABLED
        }
        if options["anthropic_batch"] and doubtful:
            provider = batch_provider()
            if provider is None:
                raise CommandError("--anthropic-batch needs ANTHROPIC_API_KEY")
            self.stderr.write(
                f"sending {len(doubtful)} texts as one batch to {settings.ROUTER_MODEL}"
            )
            calls = {
                key: pipeline.llm_call(settings.ROUTER_MODEL, outcome.redacted)
                for key, outcome in doubtful.items()
            }
            results = provider.batch_run(
                calls,
                poll_seconds=options["poll_seconds"],
                timeout_seconds=options["timeout_seconds"],
            )
            for key, outcome in doubtful.items():
                if key in results:
                    outcomes[int(key)] = pipeline.batch_outcome(outcome, results[key])
        total = Decimal(0)
        with Path(options["target"]).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=[*columns, *OUTPUT_COLUMNS])
            writer.writeheader()
            for row, outcome in zip(rows, outcomes, strict=True):
                cost = sum((draft.cost for draft in outcome.trail), Decimal(0))
                total += cost
                deciding = outcome.trail[-1]
                writer.writerow(
                    {
                        **row,
                        "routed_pool": outcome.pool.slug
                        if outcome.pool and outcome.action != "review"
                        else "",
                        "routed_action": outcome.action,
                        "routed_tier": deciding.tier,
                        "confidence": ""
                        if deciding.confidence is None
                        else f"{deciding.confidence:.4f}",
                        "review_reason": outcome.review_reason,
                        "cost_usd": f"{cost:.8f}",
                    }
                )
        routed = sum(outcome.action != "review" for outcome in outcomes)
        self.stdout.write(
            f"{len(rows)} texts: {routed} routed, {len(rows) - routed} to review; cost ${total:.6f}"
        )
