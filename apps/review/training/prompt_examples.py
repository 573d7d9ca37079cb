"""The router prompt's labelled examples, from the same labelled data the local model learns
from: the curated training examples and people's labels, with the confusions they corrected.
Review owns that data, so it is here that a prompt version with examples is made; the
orchestrator ranks them (`prompt_examples_rank`) and shows them."""

from django.conf import settings
from django.db.models import F

from apps.core.users import StaffUser
from apps.orchestrator.local_model import OTHER
from apps.orchestrator.models import PromptVersion
from apps.orchestrator.prompts.examples import prompt_examples_rank
from apps.orchestrator.prompts.services import prompt_version_activate, prompt_version_append
from apps.pools.selectors import intent_pools, pool_list
from apps.review.models import RoutingLabel
from apps.review.training.examples import training_base
from apps.review.training.labels import training_labels


def prompt_examples_gather(
    *, pools: set[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(labelled, corrections) for `pools`: the curated examples and people's labels (not the
    LLM's distilled ones), and the texts people moved from one pool to another, newest first."""
    # Curated examples may be labelled with a pool's intents: the prompt names their pools.
    intents = {intent: pool for intent, pool in intent_pools().items() if pool in pools}
    labelled = [
        (text, intents.get(label, label))
        for text, label in training_base(labels=pools | set(intents))
        if label != OTHER
    ]
    labelled += [
        (label.text, label.label)
        for label in training_labels()
        if label.from_people and label.label in pools
    ]
    corrections = list(
        RoutingLabel.objects.filter(pool__slug__in=pools, previous_pool__isnull=False)
        .exclude(previous_pool=F("pool"))
        .exclude(text="")
        .order_by("-created_at", "-id")
        .values_list("text", "pool__slug")
    )
    return labelled, corrections


def prompt_version_examples_refresh(
    *,
    parent: PromptVersion,
    author: StaffUser | None,
    per_pool: int = 100,
    activate: bool = False,
) -> PromptVersion:
    """Append a version of `parent` (same template and few-shot examples) whose labelled
    examples are chosen afresh for the active pools; activate it (audited) if asked."""
    slugs = {pool.slug for pool in pool_list()}
    labelled, corrections = prompt_examples_gather(pools=slugs)
    examples = prompt_examples_rank(
        labelled=labelled,
        corrections=corrections,
        pools=sorted(slugs),
        per_pool=per_pool,
        # The examples alone never need more characters than the whole prefix holds, for a
        # tokenizer of up to 5 characters a token (the router counts what it shows).
        max_chars=5 * settings.ROUTER_PROMPT_PREFIX_TOKENS,
    )
    version = prompt_version_append(
        text=parent.text,
        few_shot=list(parent.few_shot),
        examples=examples,
        parent=parent,
        author=author,
        note=f"labelled examples: {len(examples)} for {len(slugs)} pools "
        f"({len(corrections)} corrections available)",
    )
    if activate:
        prompt_version_activate(version=version, actor=author, note="labelled examples refreshed")
        version.refresh_from_db()
    return version
