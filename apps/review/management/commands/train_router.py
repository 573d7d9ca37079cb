"""Train the local router model from the shipped seed examples and/or a labelled CSV.

With `--pool-column` the label column holds intents, each of one pool (the pool column): the
model learns the intents and routes to the pool whose intents' probabilities sum highest."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug
from django.utils.text import slugify

from apps.core.errors import ValidationFailed
from apps.orchestrator.datasets import intent_csv_read, labelled_csv_read
from apps.orchestrator.local_model import OTHER, seed_examples
from apps.pools.models import Intent, Pool
from apps.pools.services import intent_ensure, pool_upsert
from apps.review.training.versions import model_version_train


class Command(BaseCommand):
    help = "Train, evaluate and activate a local router model (seed examples + --data CSV)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", help="CSV with a text column and a label column")
        parser.add_argument("--label-column", default="pool")
        parser.add_argument(
            "--pool-column",
            help="train on intents: the label column holds intents, this column each one's pool",
        )
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
        # Training on intents: each intent's pool (None: training on pools).
        intents: dict[str, str] | None = None
        if options["pool_column"] and not options["data"]:
            raise CommandError("--pool-column needs --data")
        try:
            if options["pool_column"]:
                triples = intent_csv_read(
                    options["data"],
                    intent_column=options["label_column"],
                    pool_column=options["pool_column"],
                    text_column=options["text_column"],
                )
                intents = self._intent_pools(triples)
                rows = [(text, intent) for text, intent, _ in triples]
            elif options["data"]:
                rows = labelled_csv_read(
                    options["data"],
                    label_column=options["label_column"],
                    text_column=options["text_column"],
                )
        except (OSError, ValidationFailed) as exc:
            raise CommandError(str(exc)) from exc
        known = set(Pool.objects.values_list("slug", flat=True))
        pool_labels = set(intents.values()) if intents is not None else {lb for _, lb in rows}
        unknown = sorted(pool_labels - known - {OTHER})
        if unknown and not options["create_pools"]:
            raise CommandError(
                f"{len(unknown)} labels are not pools ({', '.join(unknown[:10])}…); "
                "create them in the admin or pass --create-pools"
            )
        created = {
            label: pool_upsert(
                slug=slugify(label)[:64] or label,
                name=label.replace("_", " ").title(),
                description=f"Created by train_router from {options['data']}.",
            ).slug
            for label in unknown
        }
        active = set(Pool.objects.filter(active=True).values_list("slug", flat=True))
        if intents is None:  # a label that is not a slug ("ACCOUNT") trains its pool's slug
            rows = [(text, created.get(label, label)) for text, label in rows]
        else:
            intents = {intent: created.get(pool, pool) for intent, pool in intents.items()}
            self._intents_store(intents)
        if not options["no_seed"]:
            seeds = [(text, label) for text, label in seed_examples() if label in active | {OTHER}]
            if intents is not None:
                # Next to intents, a seed example's pool is an intent of that pool.
                for _, pool in seeds:
                    intents.setdefault(pool, pool)
                seeds = [(text, pool) for text, pool in seeds if intents[pool] == pool]
            rows += seeds

        def pool_of(label: str) -> str:
            return label if intents is None else intents[label]

        rows = [(text, label) for text, label in rows if pool_of(label) in active | {OTHER}]
        if len({pool_of(label) for _, label in rows}) < 2:
            raise CommandError("need examples of at least two pools")
        used = {label for _, label in rows}
        self.stdout.write(
            f"training on {len(rows)} examples, {len({pool_of(lb) for lb in used})} labels"
            + (f", {len(used)} intents" if intents is not None else "")
        )
        version = model_version_train(
            examples=rows,
            intents=None if intents is None else {label: intents[label] for label in used},
            activate=not options["inactive"],
            target_precision=options["target_precision"],
            note=f"train_router {options['data'] or 'seed examples'}",
            show_progress=True,
        )
        metrics = version.metrics
        intent_accuracy = metrics.get("intent_accuracy")
        self.stdout.write(
            f"model v{version.pk}: held-out accuracy {metrics.get('accuracy', float('nan')):.4f}, "
            f"macro-F1 {metrics.get('macro_f1', float('nan')):.4f}, "
            + (f"intent accuracy {intent_accuracy:.4f}, " if intent_accuracy is not None else "")
            + f"threshold {version.threshold:.3f}"
            f"{' (active)' if version.active else ''}"
        )

    @staticmethod
    def _intent_pools(triples: list[tuple[str, str, str]]) -> dict[str, str]:
        """Each intent's one pool; an intent given two pools, or not a slug, is an error."""
        pools_of: dict[str, set[str]] = {}
        for _, intent, pool in triples:
            pools_of.setdefault(intent, set()).add(pool)
        split = sorted((intent, pools) for intent, pools in pools_of.items() if len(pools) > 1)
        if split:
            raise CommandError(
                "each intent belongs to one pool, but "
                + "; ".join(
                    f"intent {intent!r} has pools {', '.join(sorted(pools))}"
                    for intent, pools in split[:10]
                )
                + (f" (and {len(split) - 10} more)" if len(split) > 10 else "")
            )
        bad = []
        for intent in sorted(pools_of):
            try:
                validate_slug(intent)
            except ValidationError:
                bad.append(intent)
                continue
            if len(intent) > 64:
                bad.append(intent)
        if bad:
            raise CommandError(
                "intents must be slugs (at most 64 letters, digits, - or _): " + ", ".join(bad[:10])
            )
        return {intent: pools.pop() for intent, pools in pools_of.items()}

    @staticmethod
    def _intents_store(intents: dict[str, str]) -> None:
        """Store the intents of real pools (not `other`) after checking none is in another pool
        already, or named like another pool."""
        stored = dict(
            Intent.objects.filter(slug__in=intents).values_list("slug", "pool__slug").iterator()
        )
        moved = sorted(i for i, pool in intents.items() if i in stored and stored[i] != pool)
        if moved:
            raise CommandError(
                "each intent belongs to one pool, but "
                + "; ".join(
                    f"intent {i!r} is in pool {intents[i]!r} in the data and in pool "
                    f"{stored[i]!r} in the admin"
                    for i in moved[:10]
                )
                + ": fix the data or move the intent in the admin"
            )
        pools = {pool.slug: pool for pool in Pool.objects.all()}
        clashes = sorted(i for i, pool in intents.items() if i in {*pools, OTHER} and i != pool)
        if clashes:
            raise CommandError(
                "an intent named like a pool must be in that pool: "
                + ", ".join(f"intent {i!r} is in pool {intents[i]!r}" for i in clashes[:10])
            )
        for intent, pool in intents.items():
            if pool in pools:
                intent_ensure(slug=intent, pool=pools[pool])
