"""Train the local router model from the shipped seed examples and/or a labelled CSV."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from apps.core.errors import ValidationFailed
from apps.orchestrator.datasets import labelled_csv_read
from apps.orchestrator.local_model import OTHER, seed_examples
from apps.pools.models import Pool
from apps.pools.services import pool_upsert
from apps.review.training.versions import model_version_train


class Command(BaseCommand):
    help = "Train, evaluate and activate a local router model (seed examples + --data CSV)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", help="CSV with a text column and a label column")
        parser.add_argument("--label-column", default="pool")
        parser.add_argument("--text-column", default="text")
        parser.add_argument(
            "--create-pools", action="store_true", help="create pools for unknown labels"
        )
        parser.add_argument(
            "--no-seed", action="store_true", help="leave out the shipped seed examples"
        )
        parser.add_argument("--inactive", action="store_true", help="store without activating")
        parser.add_argument("--target-precision", type=float, default=0.98)

    def handle(self, *args: Any, **options: Any) -> None:
        rows: list[tuple[str, str]] = []
        if options["data"]:
            try:
                rows = labelled_csv_read(
                    options["data"],
                    label_column=options["label_column"],
                    text_column=options["text_column"],
                )
            except (OSError, ValidationFailed) as exc:
                raise CommandError(str(exc)) from exc
        known = set(Pool.objects.values_list("slug", flat=True))
        unknown = sorted({label for _, label in rows} - known - {OTHER})
        if unknown and not options["create_pools"]:
            raise CommandError(
                f"{len(unknown)} labels are not pools ({', '.join(unknown[:10])}…); "
                "create them in the admin or pass --create-pools"
            )
        for label in unknown:
            pool_upsert(
                slug=slugify(label)[:64] or label,
                name=label.replace("_", " ").title(),
                description=f"Created by train_router from {options['data']}.",
            )
        active = set(Pool.objects.filter(active=True).values_list("slug", flat=True))
        if not options["no_seed"]:
            rows += [(text, label) for text, label in seed_examples() if label in active | {OTHER}]
        rows = [(text, label) for text, label in rows if label in active | {OTHER}]
        if len({label for _, label in rows}) < 2:
            raise CommandError("need examples of at least two labels")
        self.stdout.write(
            f"training on {len(rows)} examples, {len({label for _, label in rows})} labels"
        )
        version = model_version_train(
            examples=rows,
            activate=not options["inactive"],
            target_precision=options["target_precision"],
            note=f"train_router {options['data'] or 'seed examples'}",
            show_progress=True,
        )
        metrics = version.metrics
        self.stdout.write(
            f"model v{version.pk}: held-out accuracy {metrics.get('accuracy', float('nan')):.4f}, "
            f"macro-F1 {metrics.get('macro_f1', float('nan')):.4f}, "
            f"threshold {version.threshold:.3f}"
            f"{' (active)' if version.active else ''}"
        )
