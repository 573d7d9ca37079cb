"""Webhook endpoints in the admin: the signing secret is write-only (shown once, after a
generated one is created), and internal URLs are refused with a clear message."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from apps.webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db
ADD = "admin:webhooks_webhookendpoint_add"


def change_url(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])


def form(url: str, **extra):
    return {"name": "CRM", "url": url, "events": ["ticket.resolved"], "active": "on", **extra}


def test_the_change_page_does_not_show_the_stored_secret(admin_client, endpoint):
    page = admin_client.get(change_url(endpoint))
    assert page.status_code == 200
    assert endpoint.secret not in page.content.decode()


def test_a_view_only_user_does_not_see_the_secret_either(client, endpoint):
    viewer = User.objects.create_user("vic", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
    client.force_login(viewer)
    page = client.get(change_url(endpoint))
    assert page.status_code == 200
    assert endpoint.name in page.content.decode()
    assert endpoint.secret not in page.content.decode()


def test_a_generated_secret_is_shown_once_after_creation(admin_client, receiver):
    created = admin_client.post(reverse(ADD), form(receiver.url))
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    assert created.status_code == 200
    assert endpoint.secret in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    assert endpoint.secret not in admin_client.get(change_url(endpoint)).content.decode()


def test_a_typed_secret_is_kept_and_not_shown_back(admin_client, receiver):
    created = admin_client.post(reverse(ADD), form(receiver.url, secret="whsec_typed_by_me"))
    assert created.status_code == 302
    assert WebhookEndpoint.objects.get().secret == "whsec_typed_by_me"


def test_the_change_form_keeps_the_secret_when_blank_and_replaces_it_when_typed(
    admin_client, endpoint, receiver
):
    stored = endpoint.secret
    assert admin_client.post(change_url(endpoint), form(receiver.url)).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.secret == stored
    rotated = form(receiver.url, secret="whsec_rotated")
    assert admin_client.post(change_url(endpoint), rotated).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.secret == "whsec_rotated"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:6379/",
        "http://10.0.0.5/admin",
        "http://[::1]/",
    ],
)
def test_an_internal_url_is_refused_with_a_clear_message(admin_client, settings, url):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    response = admin_client.post(reverse(ADD), form(url))
    assert response.status_code == 200
    assert "WEBHOOK_ALLOWED_HOSTS" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_internal_host_named_in_the_allow_setting_is_accepted(admin_client, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["crm.internal.example", "10.0.0.5"]
    response = admin_client.post(reverse(ADD), form("http://10.0.0.5/hooks", secret="whsec_x"))
    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().url == "http://10.0.0.5/hooks"
