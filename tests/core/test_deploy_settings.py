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


def production_env(tmp_path) -> dict[str, str]:
    """The environment docs/deploy.md documents, on a throw-away SQLite file."""
    env = without_settings()
    env.update(
        DJANGO_SETTINGS_MODULE="supportdesk.settings.production",
        SECRET_KEY="a-long-random-secret-key-for-the-deploy-check-0123456789abcdef",
        ALLOWED_HOSTS="support.example.com",
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
    )
    return env


def test_the_deploy_check_is_clean_under_production_settings(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


PROBE = """
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="support.example.com")
page = client.get("/api/v1/conversations/x/")
forged = client.get("/api/v1/conversations/x/", HTTP_X_FORWARDED_PROTO="https")
health = client.get("/healthz")
print(page.status_code, page.get("Location"), forged.status_code, health.status_code)
print(client.get("/healthz", secure=True).headers.get("Strict-Transport-Security"))
"""


def test_production_redirects_to_https_and_believes_no_forwarded_proto_header(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    plain, hsts = done.stdout.strip().splitlines()
    status, location, forged, health = plain.split()
    assert (status, location) == ("301", "https://support.example.com/api/v1/conversations/x/")
    # A client's X-Forwarded-Proto is not the scheme: only uvicorn's trusted proxies set it.
    assert forged == "301"
    # Health checks on loopback stay plain HTTP (503 here: no Redis or broker to check).
    assert health != "301"
    assert hsts == "max-age=31536000; includeSubDomains; preload"
