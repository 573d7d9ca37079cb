"""Seed demo pools and staff accounts (idempotent) and print the logins."""

from typing import Any

from django.core.management.base import BaseCommand

from apps.core.services import demo_seed


class Command(BaseCommand):
    help = "Create the default pools and demo staff accounts; print their logins."

    def handle(self, *args: Any, **options: Any) -> None:
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
