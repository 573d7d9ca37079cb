"""Demo data: the default pools, staff of each role, canned replies and a trained local model."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from apps.desk.models import CannedReply
from apps.orchestrator.local_model import seed_examples
from apps.orchestrator.models import ModelVersion
from apps.pools.models import Pool
from apps.pools.services import pool_membership_set, pool_upsert
from apps.review.training.versions import model_version_train

DEFAULT_POOLS: list[dict[str, Any]] = [
    {
        "slug": "billing",
        "name": "Billing",
        "description": "Invoices, charges, payment methods, subscriptions, plan changes, "
        "receipts and VAT questions.",
        "required_fields": [],
    },
    {
        "slug": "technical",
        "name": "Technical",
        "description": "Problems using the product: errors, bugs, login and password trouble, "
        "installation, integrations, performance and outages.",
        "required_fields": [],
    },
    {
        "slug": "refund",
        "name": "Refunds",
        "description": "Requests for money back: refunds, returns, cancelled orders, "
        "double charges to reverse, and refund status.",
        "required_fields": ["order_number"],
    },
]

DEMO_CANNED_REPLIES: list[tuple[str | None, str, str]] = [
    (
        None,
        "Greeting",
        "Hi {customer_name}, I'm {agent_name} from the {pool_name} team. "
        "I'm looking into this now.",
    ),
    (None, "Anything else?", "Is there anything else I can help you with, {customer_name}?"),
    (
        "billing",
        "Invoice copy",
        "Hi {customer_name}, you can download every invoice under "
        "Settings → Billing → Invoices. I've also sent a copy to the email on your account.",
    ),
    (
        "billing",
        "Double charge",
        "Hi {customer_name}, the second charge is a card "
        "authorisation that your bank releases within 3 to 5 working days. No action is needed.",
    ),
    (
        "technical",
        "Password reset",
        'Hi {customer_name}, use "Forgot password" on the sign-in '
        "page; the link is valid for 30 minutes. Tell me if the email does not arrive.",
    ),
    (
        "technical",
        "Need details",
        "Thanks {customer_name}. Could you tell me your browser and "
        "send a screenshot of the error? That helps me reproduce it.",
    ),
    (
        "refund",
        "Refund started",
        "Hi {customer_name}, I've started the refund for your order. "
        "It reaches your account within 5 to 10 working days.",
    ),
]

DEMO_FIRST_NAMES = {"billing": "Bea", "technical": "Theo", "refund": "Rosa"}

STAFF_ROLES = ["Agents", "Reviewers", "Managers"]
DEMO_PASSWORD = "supportdesk-demo"  # noqa: S105 -- printed demo login, never production


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


@dataclass(frozen=True)
class DemoSeeded:
    pools: list[str]
    logins: list[DemoLogin]
    model_version: int | None  # the local router model trained now, if there was none


@transaction.atomic
def demo_seed() -> DemoSeeded:
    """Create the default pools, staff groups, one demo account per role and, when there is
    none, a local router model trained on the shipped seed examples (idempotent).

    Existing accounts keep their passwords: a second run never resets what a person changed.
    """
    pools = [pool_upsert(**spec).slug for spec in DEFAULT_POOLS]
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in STAFF_ROLES}
    accounts: list[tuple[str, str | None, str]] = [
        (f"agent-{slug}", "Agents", f"agent, {slug} pool") for slug in pools
    ]
    accounts += [
        ("reviewer", "Reviewers", "reviewer"),
        ("manager", "Managers", "manager"),
        ("admin", None, "admin (superuser)"),
    ]
    user_model = get_user_model()
    logins = []
    for username, group, role in accounts:
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": group is None}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        if group is not None:
            user.groups.add(groups[group])
        logins.append(DemoLogin(username, DEMO_PASSWORD, role))
        slug = username.removeprefix("agent-")
        if group == "Agents" and created:
            user.first_name = DEMO_FIRST_NAMES.get(slug, "")
            user.save(update_fields=["first_name"])
            pool_membership_set(user=user, pools=Pool.objects.filter(slug=slug), capacity=3)
    supervise = Permission.objects.get(codename="supervise", content_type__app_label="pools")
    groups["Managers"].permissions.add(supervise)
    groups["Reviewers"].permissions.add(supervise)
    review = {
        codename: Permission.objects.get(codename=codename, content_type__app_label="review")
        for codename in ("view_reviewitem", "resolve_reviewitem", "view_routinglabel")
    }
    groups["Reviewers"].permissions.add(*review.values())
    groups["Managers"].permissions.add(review["view_reviewitem"], review["view_routinglabel"])
    # Managers see the reports (/reports/, the report API and exports) and, in the admin, the
    # decision rows behind them.
    groups["Managers"].permissions.add(
        Permission.objects.get(codename="view_reports", content_type__app_label="reports"),
        Permission.objects.get(
            codename="view_routingdecision", content_type__app_label="orchestrator"
        ),
    )
    # Managers own the router prompt: new versions, activation and rollback, A/B tests.
    groups["Managers"].permissions.add(
        *Permission.objects.filter(
            content_type__app_label="orchestrator",
            codename__in=[
                "view_promptversion",
                "add_promptversion",
                "activate_promptversion",
                "view_promptactivation",
                "view_promptexperiment",
            ],
        )
    )
    for pool_slug, title, text in DEMO_CANNED_REPLIES:
        pool = Pool.objects.get(slug=pool_slug) if pool_slug else None
        CannedReply.objects.get_or_create(pool=pool, title=title, defaults={"text": text})
    trained = None
    if not ModelVersion.objects.filter(active=True).exists():
        trained = model_version_train(examples=seed_examples(), note="seed_demo: seed examples").pk
    return DemoSeeded(pools=pools, logins=logins, model_version=trained)
