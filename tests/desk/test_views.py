"""The desk page `/desk/`: who gets it and what it renders."""

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


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get("/desk/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/desk/"


def test_a_signed_in_non_staff_user_is_refused(client):
    client.force_login(make_user("customer", staff=False))
    assert client.get("/desk/").status_code == 403


def test_staff_get_the_desk_rendered_with_htmx_and_a_csrf_cookie(client):
    agent = make_user("agent", staff=True)
    client.force_login(agent)
    response = client.get("/desk/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "csrftoken" in response.cookies
    assert 'data-testid="desk-user">Bea<' in html
    assert 'data-testid="desk-queue"' in html
    assert 'ws-connect="/ws/desk/?format=html"' in html
    assert "vendor/htmx/2.0.11/htmx.min.js" in html
    assert "vendor/htmx-ext-ws/2.0.4/ws.min.js" in html
    assert "desk/desk.js" in html
    assert "<script>" not in html  # no inline script: the policy allows files only
    assert '"allowEval": false' in html


def test_htmx_navigation_gets_the_main_area_only_with_its_address(client):
    client.force_login(make_user("agent", staff=True))
    response = client.get("/desk/?tab=mine&filter=resolved", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<main class="desk" id="desk-main"')
    assert "<html" not in html
    assert response["HX-Push-Url"] == "/desk/?tab=mine&filter=resolved"


def test_an_unknown_tab_filter_or_ticket_in_the_address_is_the_default_view(client):
    client.force_login(make_user("agent", staff=True))
    response = client.get("/desk/?tab=<b>&filter=nope&ticket=x", headers={"HX-Request": "true"})
    assert response["HX-Push-Url"] == "/desk/?tab=mine&filter=open"


def test_the_users_name_is_escaped_in_the_page(client):
    agent = make_user("agent", staff=True)
    agent.first_name = "</script><script>alert(1)</script>"
    agent.save()
    client.force_login(agent)
    html = client.get("/desk/").content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
