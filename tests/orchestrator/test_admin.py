import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from apps.orchestrator.models import RoutingDecision, RoutingRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    user = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(user)
    return client


def test_decisions_are_append_only_in_the_admin(admin_client_, pools):
    decision = RoutingDecision.objects.create(tier="rules", action="route", pool=pools["billing"])
    url = f"/admin/orchestrator/routingdecision/{decision.pk}/"
    assert admin_client_.get(f"{url}change/").status_code == 200  # viewable
    assert admin_client_.post(f"{url}change/", {"tier": "llm"}).status_code == 403
    assert admin_client_.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    assert admin_client_.get("/admin/orchestrator/routingdecision/add/").status_code == 403
    decision.refresh_from_db()
    assert decision.tier == "rules"


def test_a_rule_with_a_broken_regex_is_refused_in_the_admin(admin_client_, pools):
    response = admin_client_.post(
        "/admin/orchestrator/routingrule/add/",
        {
            "name": "broken",
            "kind": "regex",
            "pattern": "refund(",
            "pool": pools["refund"].pk,
            "priority": 100,
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "Not a valid regular expression" in response.content.decode()
    assert not RoutingRule.objects.exists()


@pytest.fixture
def rule_editor(client):
    """A staff member who may view, add and change routing rules, and nothing else."""
    user = get_user_model().objects.create_user("rules", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="orchestrator",
            codename__in=["view_routingrule", "add_routingrule", "change_routingrule"],
        )
    )
    client.force_login(user)
    return client


def test_a_backreference_rule_is_refused_in_the_admin_with_a_readable_reason(rule_editor, pools):
    response = rule_editor.post(
        "/admin/orchestrator/routingrule/add/",
        {
            "name": "doubled words",
            "kind": "regex",
            "pattern": r"(\w+) \1",
            "pool": pools["refund"].pk,
            "priority": 100,
            "active": "on",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Not a valid regular expression" in page
    assert "backreferences" in page
    assert not RoutingRule.objects.exists()


def test_a_rule_editor_saves_a_regex_the_engine_runs(rule_editor, pools):
    response = rule_editor.post(
        "/admin/orchestrator/routingrule/add/",
        {
            "name": "refunds",
            "kind": "regex",
            "pattern": r"\brefund(ed|s)?\b",
            "pool": pools["refund"].pk,
            "priority": 100,
            "active": "on",
        },
    )
    assert response.status_code == 302
    assert RoutingRule.objects.get().pattern == r"\brefund(ed|s)?\b"
