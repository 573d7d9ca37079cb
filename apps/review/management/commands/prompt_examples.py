"""Append a router prompt version carrying labelled examples chosen for the active pools."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.orchestrator.models import PromptVersion
from apps.orchestrator.selectors import prompt_active
from apps.review.training.prompt_examples import prompt_version_examples_refresh


class Command(BaseCommand):
    help = (
        "Append a version of the active router prompt (or --parent) whose labelled examples "
        "are chosen afresh: the most central per pool, the confusions people corrected, then "
        "more central ones. The router shows as many as fill its cached prefix."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--parent", type=int, help="prompt version id (default: the active)")
        parser.add_argument(
            "--per-pool", type=int, default=100, help="central examples per pool (at most)"
        )
        parser.add_argument("--activate", action="store_true", help="activate the new version")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["parent"]:
            parent = PromptVersion.objects.filter(pk=options["parent"]).first()
        else:
            parent = prompt_active()
        if parent is None:
            raise CommandError("No such prompt version (and none is active).")
        try:
            version = prompt_version_examples_refresh(
                parent=parent,
                author=None,
                per_pool=options["per_pool"],
                activate=options["activate"],
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        state = "active" if options["activate"] else "inactive"
        self.stdout.write(f"{version} ({state}): {version.note}")
