"""Prompt versions are append-only; new versions, diffs, activation, rollback, A/B tests and
their promotion, through the services and the admin, with the demo seed's Managers group."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.core.errors import Conflict, PermissionDenied
from apps.flows.demo import demo_seed
from apps.orchestrator.models import PromptActivation, PromptExperiment, PromptVersion
from apps.orchestrator.prompts.services import (
    prompt_experiment_promote,
    prompt_experiment_start,
    prompt_version_activate,
    prompt_version_append,
)
from apps.orchestrator.prompts.text import DEFAULT_PROMPT

pytestmark = pytest.mark.django_db

ADMIN = "/admin/orchestrator/promptversion/"


@pytest.fixture
def manager(pools, local_model):
    """The demo seed's manager (local_model keeps the seed from training one)."""
    demo_seed()
    return get_user_model().objects.get(username="manager")


@pytest.fixture
def agent(pools, local_model):
    demo_seed()
    return get_user_model().objects.get(username="agent-billing")


@pytest.fixture
def active() -> PromptVersion:
    """The default prompt the migrations install."""
    return PromptVersion.objects.get(purpose="router", active=True)


def child(parent: PromptVersion, author, marker: str = "Be brief.") -> PromptVersion:
    return prompt_version_append(
        text=parent.text + f"\n{marker}",
        few_shot=parent.few_shot,
        parent=parent,
        author=author,
        note=marker,
    )


# -- append-only ----------------------------------------------------------------------------
def test_a_saved_version_is_never_updated_or_deleted(active):
    original = active.text
    active.text = "rewritten {pools}"
    with pytest.raises(Conflict, match="append-only"):
        active.save()
    with pytest.raises(Conflict, match="append-only"):
        PromptVersion.objects.filter(pk=active.pk).update(text="rewritten {pools}")
    with pytest.raises(Conflict, match="append-only"):
        active.delete()
    with pytest.raises(Conflict, match="append-only"):
        PromptVersion.objects.all().delete()
    active.refresh_from_db()
    assert active.text == original
    assert PromptVersion.objects.filter(pk=active.pk).exists()


def test_editing_in_the_admin_appends_a_child_version_and_leaves_the_parent(
    client, manager, active
):
    client.force_login(manager)
    form = client.get(f"{ADMIN}add/?from={active.pk}")
    assert form.status_code == 200
    assert "You route customer support tickets" in form.content.decode()  # prefilled

    response = client.post(
        f"{ADMIN}add/",
        {
            "parent": active.pk,
            "text": DEFAULT_PROMPT + "\nAnswer in English.",
            "few_shot": '[{"text": "Refund my order 12", "pool": "refund"}]',
            "note": "english only",
        },
    )

    assert response.status_code == 302
    new = PromptVersion.objects.exclude(pk=active.pk).get()
    assert (new.parent, new.author, new.note, new.active) == (
        active,
        manager,
        "english only",
        False,
    )
    assert new.few_shot == [{"text": "Refund my order 12", "pool": "refund"}]
    active.refresh_from_db()
    assert (active.text, active.active) == (DEFAULT_PROMPT, True)


def test_the_admin_change_view_is_read_only_with_a_new_version_link_and_no_delete(
    client, manager, active
):
    client.force_login(manager)
    page = client.get(f"{ADMIN}{active.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"add/?from={active.pk}" in html
    assert f"{active.pk}/diff/" in html
    first = client.get(f"{ADMIN}{active.pk}/diff/").content.decode()  # no parent: all added
    assert "A first version (no parent)" in first
    assert '<div class="add">+You route customer support tickets' in first
    assert 'name="text"' not in html  # no editable field
    assert client.post(f"{ADMIN}{active.pk}/change/", {"text": "x {pools}"}).status_code == 403
    assert client.post(f"{ADMIN}{active.pk}/delete/", {"post": "yes"}).status_code == 403
    active.refresh_from_db()
    assert active.text == DEFAULT_PROMPT


def test_a_template_without_pools_or_a_malformed_few_shot_is_refused(client, manager, active):
    client.force_login(manager)
    response = client.post(
        f"{ADMIN}add/",
        {"parent": active.pk, "text": "Route it.", "few_shot": '[{"pool": "refund"}]', "note": ""},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "must contain {pools}" in html
    assert "needs a non-empty text" in html
    assert PromptVersion.objects.count() == 1


def test_the_diff_view_shows_changes_against_the_parent_escaped(client, manager, active):
    hostile = prompt_version_append(
        text=active.text.replace("a few words, at most 40 characters", "two sentences")
        + "\n<script>alert('x')</script>",
        few_shot=[*active.few_shot, {"text": "Where is my <b>parcel</b>?", "pool": "technical"}],
        parent=active,
        author=manager,
    )
    client.force_login(manager)
    response = client.get(f"{ADMIN}{hostile.pk}/diff/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert '<div class="add">+&lt;script&gt;' in html
    assert (
        '<div class="del">-- reason: a few words, at most 40 characters, without personal data.'
        "</div>" in html
    )
    assert '<div class="add">+- reason: two sentences, without personal data.</div>' in html
    assert "Where is my &lt;b&gt;parcel&lt;/b&gt;?" in html
    assert f"v{active.pk} template" in html


def test_an_agent_cannot_add_or_activate_prompt_versions(client, agent, active):
    client.force_login(agent)
    assert client.get(f"{ADMIN}add/").status_code == 403
    with pytest.raises(PermissionDenied):
        prompt_version_append(
            text=active.text, few_shot=[], parent=active, author=agent, note="sneaky"
        )
    with pytest.raises(PermissionDenied):
        prompt_version_activate(version=active, actor=agent)


# -- activation and rollback ----------------------------------------------------------------
def test_activation_and_rollback_are_audited_with_who_when_and_from_which(manager, active):
    new = child(active, manager)

    first = prompt_version_activate(version=new, actor=manager, note="try brevity")
    back = prompt_version_activate(version=active, actor=manager, note="roll back")

    assert (first.previous, first.version, first.actor) == (active, new, manager)
    assert (back.previous, back.version, back.actor) == (new, active, manager)
    assert back.created_at >= first.created_at
    assert list(PromptActivation.objects.all()) == [back, first]
    assert PromptVersion.objects.get(active=True) == active
    with pytest.raises(Conflict, match="already active"):
        prompt_version_activate(version=active, actor=manager)


def test_the_admin_activate_action_switches_and_records(client, manager, active):
    new = child(active, manager)
    client.force_login(manager)
    response = client.post(ADMIN, {"action": "activate", "_selected_action": [new.pk]}, follow=True)
    assert f"prompt v{new.pk} is now active (was v{active.pk})" in response.content.decode()
    activation = PromptActivation.objects.get()
    assert (activation.previous, activation.version, activation.actor) == (active, new, manager)
    assert client.get("/admin/orchestrator/promptactivation/").status_code == 200


def test_the_demo_seed_gives_managers_the_prompt_permissions(manager):
    managers = Group.objects.get(name="Managers")
    codenames = set(managers.permissions.values_list("codename", flat=True))
    assert {"add_promptversion", "activate_promptversion", "view_promptexperiment"} <= codenames
    assert manager.has_perm("orchestrator.activate_promptversion")


# -- A/B tests -------------------------------------------------------------------------------
def test_promoting_the_variant_ends_the_test_activates_it_and_records_the_activation(
    manager, active
):
    variant = child(active, manager)
    experiment = prompt_experiment_start(variant=variant, split=0.3, actor=manager)
    assert (experiment.control, experiment.started_by) == (active, manager)
    with pytest.raises(Conflict, match="is running"):
        prompt_version_activate(version=variant, actor=manager)
    with pytest.raises(Conflict, match="already running"):
        prompt_experiment_start(variant=variant, split=0.5, actor=manager)

    ended = prompt_experiment_promote(experiment=experiment, winner=variant, actor=manager)

    assert (ended.status, ended.winner, ended.ended_by) == ("ended", variant, manager)
    assert ended.ended_at is not None
    assert PromptVersion.objects.get(active=True) == variant
    activation = PromptActivation.objects.get()
    assert (activation.previous, activation.version, activation.experiment) == (
        active,
        variant,
        experiment,
    )
    with pytest.raises(Conflict, match="ended already"):
        prompt_experiment_promote(experiment=experiment, winner=variant, actor=manager)


def test_keeping_the_control_ends_the_test_and_switches_nothing(manager, active):
    variant = child(active, manager)
    experiment = prompt_experiment_start(variant=variant, split=0.5, actor=manager)

    ended = prompt_experiment_promote(experiment=experiment, winner=active, actor=manager)

    assert (ended.status, ended.winner) == ("ended", active)
    assert PromptVersion.objects.get(active=True) == active
    assert not PromptActivation.objects.exists()
    prompt_version_activate(version=variant, actor=manager)  # no test running any more


def test_the_variant_cannot_be_the_active_version_and_split_is_a_share(manager, active):
    with pytest.raises(Conflict, match="is the active version"):
        prompt_experiment_start(variant=active, split=0.5, actor=manager)
    with pytest.raises(Exception, match="strictly between 0 and 1"):
        prompt_experiment_start(variant=child(active, manager), split=1.0, actor=manager)


def test_an_ab_test_is_started_shown_and_promoted_from_the_admin(client, manager, active):
    variant = child(active, manager, marker="<i>variant</i>")
    client.force_login(manager)
    response = client.post(
        "/admin/orchestrator/promptexperiment/add/",
        {"variant": variant.pk, "split": "0.25", "note": "brevity"},
    )
    assert response.status_code == 302
    experiment = PromptExperiment.objects.get()
    assert (experiment.control, experiment.variant, experiment.split) == (active, variant, 0.25)

    page = client.get(f"/admin/orchestrator/promptexperiment/{experiment.pk}/change/")
    html = page.content.decode()
    assert "routings with the prompt" in html
    assert "escalation share: not enough data for a test yet" in html

    response = client.post(
        "/admin/orchestrator/promptexperiment/",
        {"action": "promote_variant", "_selected_action": [experiment.pk]},
        follow=True,
    )
    assert f"prompt v{variant.pk} is the active prompt" in response.content.decode()
    experiment.refresh_from_db()
    assert (experiment.status, experiment.winner) == ("ended", variant)
    assert PromptActivation.objects.get().experiment == experiment
