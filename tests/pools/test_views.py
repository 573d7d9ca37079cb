"""The desk page `/desk/`: who gets it and what the shell carries."""

import json
import re

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def make_user(username: str, *, staff: bool, superuser: bool = False):
    return get_user_model().objects.create_user(
        username=username,
        password="x",
        is_staff=staff,
        is_superuser=superuser,
        first_name="Bea",
    )


def desk_config(html: str) -> dict:
    found = re.search(r'<script id="desk-config" type="application/json">(.*?)</script>', html)
    assert found is not None
    return json.loads(found.group(1))


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get("/desk/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/desk/"


def test_a_signed_in_non_staff_user_is_refused(client):
    client.force_login(make_user("customer", staff=False))
    assert client.get("/desk/").status_code == 403


def test_staff_get_the_shell_with_their_config_and_a_csrf_cookie(client):
    agent = make_user("agent", staff=True)
    client.force_login(agent)
    response = client.get("/desk/")
    assert response.status_code == 200
    html = response.content.decode()
    assert desk_config(html) == {
        "user": {"id": agent.pk, "username": "agent", "name": "Bea"},
        "supervisor": False,
        "api": "/api/v1/",
        "socket": "/ws/desk/",
        "csrf_token": desk_config(html)["csrf_token"],
    }
    assert "csrftoken" in response.cookies
    assert 'data-testid="desk-queue"' in html
    assert "desk/desk.js" in html


def test_user_text_in_the_config_cannot_break_out_of_the_script(client):
    agent = make_user("agent", staff=True)
    agent.first_name = "</script><script>alert(1)</script>"
    agent.save()
    client.force_login(agent)
    html = client.get("/desk/").content.decode()
    assert "<script>alert(1)" not in html
    assert desk_config(html)["user"]["name"] == "</script><script>alert(1)</script>"
