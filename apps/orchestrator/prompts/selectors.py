"""Read-side of prompt governance: which prompt version routes a ticket (the A/B split), the
diff of a version against its parent, and the per-arm results of an A/B test."""

import difflib
import functools
import json
from dataclasses import dataclass

from django.db.models import QuerySet

from apps.core.sql import rows_where
from apps.orchestrator.models import (
    PromptActivation,
    PromptExperiment,
    PromptVersion,
)
from apps.orchestrator.prompts.stats import (
    arm_is_variant,
)


def prompt_for_ticket(*, ticket_id: int | None, purpose: str = "router") -> PromptVersion | None:
    """The prompt version that routes this ticket: the running A/B test's arm for it (stable
    per ticket), else the active version. Without a ticket (dry runs, evaluation): the
    control, which is the active version.

    Every routing run asks, so the choice is statements written once (apps/core/sql.py) and
    the version itself (its template and examples, decoded) comes from this process's memory:
    versions are append-only, never rewritten or deleted, so a version read once is the same
    for ever. Its `active` flag is the one it had when first read; the choice never uses it.
    """
    running = rows_where(
        PromptExperiment,
        [("purpose", "=", purpose), ("status", "=", PromptExperiment.Status.RUNNING)],
        columns=["split", "control", "variant"],
        order_by=["-started_at", "-id"],
        limit=1,
    )
    if not running:
        active = rows_where(
            PromptVersion,
            [("purpose", "=", purpose), ("active", "=", True)],
            columns=["id"],
            order_by="-created_at",
            limit=1,
        )
        return prompt_version_read(active[0].pk) if active else None
    experiment = running[0]
    if ticket_id is not None and arm_is_variant(
        experiment_id=experiment.pk, ticket_id=ticket_id, split=experiment.split
    ):
        return prompt_version_read(experiment.variant_id)
    return prompt_version_read(experiment.control_id)


@functools.lru_cache(maxsize=16)
def prompt_version_read(pk: int) -> PromptVersion:
    """Version `pk`, read once per process (versions are append-only). Shared between threads:
    read it, never change it. A database whose ids are used again (a test's, rolled back)
    must call `prompt_version_read.cache_clear()`."""
    return PromptVersion.objects.get(pk=pk)


def prompt_activation_list(*, version: PromptVersion | None = None) -> QuerySet[PromptActivation]:
    """Activations, newest first (optionally those that activated `version`)."""
    activations = PromptActivation.objects.select_related("version", "previous", "actor")
    if version is not None:
        activations = activations.filter(version=version)
    return activations.order_by("-created_at", "-id")


# -- diff -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiffLine:
    kind: str  # "file" | "hunk" | "add" | "del" | "same"
    text: str


def _few_shot_lines(version: PromptVersion | None) -> list[str]:
    if version is None:
        return []
    return json.dumps(version.few_shot, indent=2, ensure_ascii=False).splitlines()


def _examples_lines(version: PromptVersion | None) -> list[str]:
    if version is None:
        return []
    return [json.dumps(example, ensure_ascii=False) for example in version.examples]


def prompt_version_diff(*, version: PromptVersion) -> list[DiffLine]:
    """A unified diff (difflib) of the template, the few-shot and the labelled examples against the
    parent version; against nothing when there is no parent. Plain text: pages escape it."""
    parent = version.parent
    name = f"v{parent.pk}" if parent is not None else "(none)"
    sections = [
        ("template", parent.text.splitlines() if parent else [], version.text.splitlines()),
        ("few-shot examples", _few_shot_lines(parent), _few_shot_lines(version)),
        ("labelled examples", _examples_lines(parent), _examples_lines(version)),
    ]
    lines: list[DiffLine] = []
    for section, before, after in sections:
        for raw in difflib.unified_diff(
            before,
            after,
            fromfile=f"{name} {section}",
            tofile=f"v{version.pk} {section}",
            lineterm="",
        ):
            if raw.startswith(("---", "+++")):
                kind = "file"
            elif raw.startswith("@@"):
                kind = "hunk"
            elif raw.startswith("+"):
                kind = "add"
            elif raw.startswith("-"):
                kind = "del"
            else:
                kind = "same"
            lines.append(DiffLine(kind, raw))
    return lines
