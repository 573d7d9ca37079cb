"""Seed demo pools and staff accounts (idempotent) and print the logins."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.flows.demo import demo_seed


class Command(BaseCommand):
    help = "Create the default pools and demo staff accounts; print their logins."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_SEED_ALLOWED:
            raise CommandError(
                "seed_demo creates staff accounts, a superuser among them, with a published "
                "password: refused under these settings (DEMO_SEED_ALLOWED is off in production)."
            )
        seeded = demo_seed()
        self.stdout.write(f"Pools: {', '.join(seeded.pools)}")
        if seeded.model_version is not None:
            self.stdout.write(
                f"Trained local router model v{seeded.model_version} on seed examples"
            )
        self.stdout.write("Demo staff logins for /desk/ and /admin/ (username, password, role):")
        for login in seeded.logins:
            self.stdout.write(f"  {login.username:<18} {login.password:<20} {login.role}")
        self.stdout.write("(Passwords are set only when an account is first created.)")
