"""Evaluate the whole routing pipeline on a labelled CSV (nothing is recorded or cached).

With `--prompt-version A --prompt-version B` the same texts run once per prompt version and
the figures are printed side by side (the decision cache is not read then: live traffic fills
the cache of the active version only, which would flatter it)."""

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from apps.core.errors import ValidationFailed
from apps.orchestrator.datasets import labelled_csv_read
from apps.orchestrator.evaluation import (
    PipelineEvaluation,
    evaluations_side_by_side,
    pipeline_evaluate,
)
from apps.orchestrator.models import PromptVersion
from apps.orchestrator.services import pipeline_build


class Command(BaseCommand):
    help = "Accuracy, macro-F1, per-pool P/R, confusion, tier shares, cost and latency on a CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", required=True)
        parser.add_argument("--label-column", default="pool")
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--prompt-version",
            action="append",
            type=int,
            default=[],
            metavar="ID",
            help="evaluate with this prompt version (repeat to compare versions side by side)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rows = labelled_csv_read(
                options["data"],
                label_column=options["label_column"],
                text_column=options["text_column"],
            )
        except (OSError, ValidationFailed) as exc:
            raise CommandError(str(exc)) from exc
        if len(options["prompt_version"]) > 1:
            self._compare(rows, options)
            return
        prompt = self._prompts(options["prompt_version"])[0] if options["prompt_version"] else None
        pipeline = pipeline_build(
            write_cache=False, clarify_allowed=False, prompt=prompt, read_cache=prompt is None
        )
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
        if result.full_coverage_accuracy is not None:
            self.stdout.write(
                f"local model alone: accuracy at full coverage {result.full_coverage_accuracy:.4f}"
                f"; precision per pool at its threshold {result.local_threshold:.3f} (n routed): "
                + ", ".join(
                    f"{pool} {'—' if f['precision'] is None else format(f['precision'], '.3f')}"
                    f" ({f['n']})"
                    for pool, f in result.local_precision_at_threshold.items()
                )
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

    def _progress(
        self, desc: str, quiet: bool
    ) -> Callable[[Sequence[tuple[str, str]]], Iterable[tuple[str, str]]]:
        def bar(items: Sequence[tuple[str, str]]) -> Iterable[tuple[str, str]]:
            return tqdm(items, desc=desc, disable=quiet, file=self.stderr)

        return bar

    @staticmethod
    def _prompts(ids: list[int]) -> list[PromptVersion]:
        found = PromptVersion.objects.in_bulk(ids)
        missing = [str(pk) for pk in ids if pk not in found]
        if missing:
            raise CommandError(f"no prompt version {', '.join(missing)}")
        return [found[pk] for pk in ids]

    def _compare(self, rows: list[tuple[str, str]], options: dict[str, Any]) -> None:
        """Run the texts once per prompt version; print the figures side by side."""
        results: list[tuple[PromptVersion, PipelineEvaluation]] = []
        for prompt in self._prompts(options["prompt_version"]):
            pipeline = pipeline_build(
                write_cache=False, clarify_allowed=False, prompt=prompt, read_cache=False
            )
            result = pipeline_evaluate(
                pipeline, rows, progress=self._progress(f"prompt v{prompt.pk}", options["json"])
            )
            results.append((prompt, result))
        if options["json"]:
            payload = {
                "prompt_versions": [
                    {"prompt_version": prompt.pk, **result.as_dict()} for prompt, result in results
                ]
            }
            self.stdout.write(json.dumps(payload, indent=2))
            return
        for line in evaluations_side_by_side(
            [(f"prompt v{prompt.pk}", result) for prompt, result in results]
        ):
            self.stdout.write(line)
