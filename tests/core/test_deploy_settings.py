"""Safe defaults: a server started without settings runs production's, which refuse to start
without secrets, and demo accounts cannot be created under them."""

import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from tests.servers import ROOT, service_env


def without_settings() -> dict[str, str]:
    env = service_env(os.environ)
    for name in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "ALLOWED_HOSTS"):
        env.pop(name, None)
    return env


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("import supportdesk.asgi", id="asgi"),
        pytest.param("from supportdesk.celery import app; app.conf.broker_url", id="celery"),
    ],
)
def test_a_server_started_without_settings_refuses_to_run_without_a_secret_key(code):
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=without_settings(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SECRET_KEY must be set in production" in done.stderr


def test_seed_demo_refuses_where_demo_accounts_are_not_allowed(db, settings):
    settings.DEMO_SEED_ALLOWED = False
    with pytest.raises(CommandError, match="published password"):
        call_command("seed_demo")
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="admin").exists()


def test_production_settings_do_not_allow_demo_accounts():
    env = {**without_settings(), "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "support.example.com"}
    env["DJANGO_SETTINGS_MODULE"] = "supportdesk.settings.production"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DEMO_SEED_ALLOWED)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False", done.stderr
