"""Project-wide write operations: demo data."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from apps.pools.services import pool_upsert

DEFAULT_POOLS = [
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


@transaction.atomic
def demo_seed() -> DemoSeeded:
    """Create the default pools, staff groups and one demo account per role (idempotent).

    Existing accounts keep their passwords: a second run never resets what a person changed.
    """
    pools = [pool_upsert(**spec).slug for spec in DEFAULT_POOLS]  # type: ignore[arg-type]
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
    return DemoSeeded(pools=pools, logins=logins)
