"""Evaluate the whole routing pipeline on a labelled CSV (nothing is recorded or cached)."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from apps.core.errors import ValidationFailed
from apps.orchestrator.datasets import labelled_csv_read
from apps.orchestrator.evaluation import pipeline_evaluate
from apps.orchestrator.services import pipeline_build


class Command(BaseCommand):
    help = "Accuracy, macro-F1, per-pool P/R, confusion, tier shares, cost and latency on a CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", required=True)
        parser.add_argument("--label-column", default="pool")
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rows = labelled_csv_read(
                options["data"],
                label_column=options["label_column"],
                text_column=options["text_column"],
            )
        except (OSError, ValidationFailed) as exc:
            raise CommandError(str(exc)) from exc
        pipeline = pipeline_build(write_cache=False, clarify_allowed=False)
        result = pipeline_evaluate(
            pipeline,
            rows,
            progress=lambda items: tqdm(
                items, desc="routing", disable=options["json"], file=self.stderr
            ),
        )
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        self.stdout.write(
            f"texts {result.n}  accuracy {result.accuracy:.4f}  macro-F1 {result.macro_f1:.4f}"
        )
        self.stdout.write(
            f"LLM-call share {result.llm_call_share:.4f}  review share {result.review_share:.4f}  "
            f"cost per 1,000 tickets ${result.cost_per_1000_usd:.4f}  "
            f"latency p50 {result.latency_p50_ms:.2f} ms p95 {result.latency_p95_ms:.2f} ms"
        )
        self.stdout.write(
            "share per tier: " + ", ".join(f"{k} {v:.4f}" for k, v in result.tier_share.items())
        )
        self.stdout.write(f"{'pool':24} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>6}")
        for pool, figures in sorted(result.per_pool.items()):
            self.stdout.write(
                f"{pool[:24]:24} {figures['precision']:>9.3f} {figures['recall']:>7.3f} "
                f"{figures['f1']:>6.3f} {int(figures['support']):>6}"
            )
        self.stdout.write("confusion (true -> predicted: count):")
        for truth, row in sorted(result.confusion.items()):
            self.stdout.write(
                f"  {truth}: " + ", ".join(f"{p} {c}" for p, c in sorted(row.items()))
            )
