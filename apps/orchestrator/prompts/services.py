"""Write-side of prompt governance: append a prompt version, activate (or roll back to) one,
run an A/B test of two versions and promote its winner. Every switch of the active prompt is
recorded as a PromptActivation (who, when, from which version to which)."""

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.core.users import StaffUser
from apps.orchestrator.models import PromptActivation, PromptExperiment, PromptVersion

logger = logging.getLogger(__name__)

ACTIVATE_PERMISSION = "orchestrator.activate_promptversion"
ADD_PERMISSION = "orchestrator.add_promptversion"


def few_shot_errors(few_shot: Any) -> list[str]:
    """What is wrong with a few-shot list: each item `{"text": str, "pool": str | null,
    "action"?: "route" | "clarify" | "escalate"}`. Empty when it is valid."""
    if not isinstance(few_shot, list):
        return ["few-shot examples must be a JSON list"]
    errors = []
    for number, example in enumerate(few_shot, start=1):
        if not isinstance(example, dict):
            errors.append(f"example {number} is not an object")
            continue
        if not isinstance(example.get("text"), str) or not example["text"].strip():
            errors.append(f"example {number} needs a non-empty text")
        pool = example.get("pool", 0)  # 0: missing, which is not the same as null
        if not (pool is None or isinstance(pool, str)):
            errors.append(f"example {number} needs a pool (a slug, or null)")
        if example.get("action", "route") not in ("route", "clarify", "escalate"):
            errors.append(f"example {number} has an unknown action")
    return errors


def examples_errors(examples: Any) -> list[str]:
    """What is wrong with labelled examples: each `{"text": str, "pool": str}`."""
    if not isinstance(examples, list):
        return ["labelled examples must be a JSON list"]
    return [
        f"labelled example {number} needs a non-empty text and a pool slug"
        for number, example in enumerate(examples, start=1)
        if not (
            isinstance(example, dict)
            and isinstance(example.get("text"), str)
            and example["text"].strip()
            and isinstance(example.get("pool"), str)
            and example["pool"]
        )
    ]


def template_errors(text: str) -> list[str]:
    """What is wrong with a prompt template (it must list the pools)."""
    if not text.strip():
        return ["the template is empty"]
    if "{pools}" not in text:
        return ["the template must contain {pools}: the model is told the pools there"]
    return []


def _check(actor: StaffUser | None, permission: str, what: str) -> None:
    if actor is not None and not actor.has_perm(permission):
        raise PermissionDenied(f"Only users who may {what} can do that.")


def prompt_version_append(
    *,
    text: str,
    few_shot: list[dict[str, Any]],
    parent: PromptVersion | None,
    author: StaffUser | None,
    note: str = "",
    examples: list[dict[str, Any]] | None = None,
) -> PromptVersion:
    """Append a new, inactive prompt version whose parent is the version it was made from.

    Versions are never edited: editing means this. Activating it is a separate, audited step.
    `examples` (labelled examples, most useful first) default to the parent's.
    """
    _check(author, ADD_PERMISSION, "add prompt versions")
    if examples is None:
        examples = list(parent.examples) if parent is not None else []
    errors = template_errors(text) + few_shot_errors(few_shot) + examples_errors(examples)
    if errors:
        raise ValidationFailed("; ".join(errors))
    return PromptVersion.objects.create(
        purpose=parent.purpose if parent is not None else "router",
        text=text,
        few_shot=few_shot,
        examples=examples,
        parent=parent,
        author=author,
        note=note.strip()[:300],
        active=False,
    )


def _switch(
    *,
    version: PromptVersion,
    actor: StaffUser | None,
    note: str,
    experiment: PromptExperiment | None = None,
) -> PromptActivation:
    """Make `version` the active one of its purpose and record it; inside a transaction."""
    previous = (
        PromptVersion.objects.select_for_update()
        .filter(purpose=version.purpose, active=True)
        .first()
    )
    if previous is not None and previous.pk == version.pk:
        raise Conflict(f"{version} is already active.")
    PromptVersion.objects.filter(purpose=version.purpose, active=True).update(active=False)
    PromptVersion.objects.filter(pk=version.pk).update(active=True)
    return PromptActivation.objects.create(
        version=version,
        previous=previous,
        actor=actor,
        experiment=experiment,
        note=note.strip()[:300],
    )


def prompt_version_activate(
    *, version: PromptVersion, actor: StaffUser | None, note: str = ""
) -> PromptActivation:
    """Make `version` the active prompt (a rollback when it is older), recording who did it,
    when, and which version it replaced. Refused while an A/B test of the purpose runs: its
    result would no longer compare what it says."""
    _check(actor, ACTIVATE_PERMISSION, "activate prompt versions")
    with transaction.atomic():
        running = (
            PromptExperiment.objects.select_for_update()
            .filter(purpose=version.purpose, status=PromptExperiment.Status.RUNNING)
            .first()
        )
        if running is not None:
            raise Conflict(f"{running} is running: promote its winner or end it first.")
        activation = _switch(version=version, actor=actor, note=note)
    logger.info("%s activated by %s", activation, actor or "system")
    return activation


def prompt_experiment_start(
    *, variant: PromptVersion, split: float, actor: StaffUser | None, note: str = ""
) -> PromptExperiment:
    """Start an A/B test: the active version (control) against `variant`, which gets a stable
    `split` share of tickets."""
    _check(actor, ACTIVATE_PERMISSION, "run prompt A/B tests")
    if not 0 < split < 1:
        raise ValidationFailed("The variant's share must lie strictly between 0 and 1.")
    with transaction.atomic():
        control = (
            PromptVersion.objects.select_for_update()
            .filter(purpose=variant.purpose, active=True)
            .first()
        )
        if control is None:
            raise Conflict("There is no active prompt to compare against: activate one first.")
        if control.pk == variant.pk:
            raise Conflict(f"{variant} is the active version: pick another one as the variant.")
        if PromptExperiment.objects.filter(
            purpose=variant.purpose, status=PromptExperiment.Status.RUNNING
        ).exists():
            raise Conflict("An A/B test is already running: promote its winner or end it first.")
        experiment = PromptExperiment.objects.create(
            purpose=variant.purpose,
            control=control,
            variant=variant,
            split=split,
            started_by=actor,
            note=note.strip()[:300],
        )
    logger.info("%s started by %s (split %.2f)", experiment, actor or "system", split)
    return experiment


def prompt_experiment_promote(
    *, experiment: PromptExperiment, winner: PromptVersion, actor: StaffUser | None, note: str = ""
) -> PromptExperiment:
    """End an A/B test with `winner` (control or variant) as the active prompt. A variant that
    wins is activated and the switch recorded as an activation of this experiment; a control
    that wins simply stays active."""
    _check(actor, ACTIVATE_PERMISSION, "promote prompt A/B winners")
    with transaction.atomic():
        locked = PromptExperiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != PromptExperiment.Status.RUNNING:
            raise Conflict(f"{locked} has ended already.")
        if winner.pk not in (locked.control_id, locked.variant_id):
            raise ValidationFailed(f"{winner} is not an arm of {locked}.")
        if winner.pk == locked.variant_id:
            _switch(
                version=winner,
                actor=actor,
                note=note or f"A/B #{locked.pk} winner promoted",
                experiment=locked,
            )
        locked.status = PromptExperiment.Status.ENDED
        locked.winner = winner
        locked.ended_at = timezone.now()
        locked.ended_by = actor
        locked.save(update_fields=["status", "winner", "ended_at", "ended_by"])
    logger.info("%s ended by %s: %s won", locked, actor or "system", winner)
    return locked
