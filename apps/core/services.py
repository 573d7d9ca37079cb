"""Project-wide write operations: demo data."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from apps.orchestrator.local_model import seed_examples
from apps.orchestrator.models import ModelVersion
from apps.orchestrator.services import model_version_train
from apps.pools.services import pool_upsert

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
    trained = None
    if not ModelVersion.objects.filter(active=True).exists():
        trained = model_version_train(examples=seed_examples(), note="seed_demo: seed examples").pk
    return DemoSeeded(pools=pools, logins=logins, model_version=trained)
