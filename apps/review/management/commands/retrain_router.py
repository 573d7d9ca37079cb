"""Retrain the local router model from people's labels (and distilled LLM decisions and the local
tier's routes nobody moved)."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ValidationFailed
from apps.review.training.retrain import RetrainResult, model_version_retrain


class Command(BaseCommand):
    help = (
        "Train a candidate local model from the seed examples and the routing labels; activate "
        "it only if it does at least as well as the active model on held-out labels."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=0, help="split and training seed")
        parser.add_argument(
            "--holdout", type=float, default=0.3, help="share of human labels held out"
        )
        parser.add_argument(
            "--target-misroute",
            type=float,
            default=None,
            help="misroute rate the threshold holds (default ROUTER_TARGET_MISROUTE_RATE)",
        )
        parser.add_argument(
            "--min-labels",
            type=int,
            default=None,
            help="human labels needed (default ROUTER_RETRAIN_MIN_LABELS)",
        )
        parser.add_argument(
            "--force", action="store_true", help="train even if nothing changed since the last"
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = model_version_retrain(
                seed=options["seed"],
                holdout_share=options["holdout"],
                target_misroute_rate=options["target_misroute"],
                min_labels=options["min_labels"],
                force=options["force"],
            )
        except ValidationFailed as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            payload = {
                "version": result.version.pk if result.version else None,
                "activated": result.activated,
                "reason": result.reason,
                "metrics": result.metrics,
            }
            self.stdout.write(json.dumps(payload, indent=2, sort_keys=True))
            return
        self.stdout.write(_summary(result))


def _summary(result: RetrainResult) -> str:
    labels = result.metrics["labels"]
    by_source = ", ".join(f"{source} {n}" for source, n in labels["by_source"].items())
    lines = [
        f"labels: {labels['human']} from people ({by_source}), {labels['distilled']} distilled, "
        f"{labels['unmoved']} unmoved local routes; "
        f"train {labels['train']}, held out {labels['holdout']}"
    ]
    if result.version is None:
        lines.append(f"no candidate: {result.reason}")
        return "\n".join(lines)
    metrics = result.metrics
    candidate, active, threshold = metrics["candidate"], metrics["active"], metrics["threshold"]
    lines.append(
        f"candidate v{result.version.pk}: accuracy {candidate['accuracy']:.3f}, "
        f"macro-F1 {candidate['macro_f1']:.3f}, ECE {candidate['ece']:.3f} "
        f"on {candidate['n']} held-out labels"
    )
    if active is not None:
        lines.append(
            f"active v{active['version']}: accuracy {active['accuracy']:.3f}, "
            f"macro-F1 {active['macro_f1']:.3f}, ECE {active['ece']:.3f}, "
            f"misroutes {active['misroute_rate']:.1%} at its threshold {active['threshold']:.3f}"
        )
    lines.append(
        f"threshold {threshold['value']:.3f}: misroutes {threshold['misroute_rate']:.1%} "
        f"(target {threshold['target_misroute_rate']:.1%}"
        f"{'' if threshold['met'] else ', not reachable'}), "
        f"auto-routed {threshold['auto_routed_share']:.1%}"
    )
    verdict = "activated" if result.activated else "kept inactive"
    lines.append(f"model v{result.version.pk} {verdict}: {result.reason}")
    return "\n".join(lines)
