"""The desk's admin: canned replies are editable, the desk's records are read-only."""

import pytest
from django.contrib.auth.models import User

from apps.desk.models import CannedReply, InternalNote
from apps.pools.services import pool_upsert
from tests.pools.test_admin import queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


@pytest.fixture
def billing():
    return pool_upsert(slug="billing", name="Billing", description="Invoices")


def test_canned_replies_are_created_and_edited_in_the_admin(admin_client_, billing):
    response = admin_client_.post(
        "/admin/desk/cannedreply/add/",
        {"pool": billing.pk, "title": "Hi", "text": "Hi {customer_name}", "active": "on"},
    )
    assert response.status_code == 302
    reply = CannedReply.objects.get(title="Hi")
    admin_client_.post(
        f"/admin/desk/cannedreply/{reply.pk}/change/",
        {"pool": billing.pk, "title": "Hi", "text": "Hello {customer_name}", "active": "on"},
    )
    reply.refresh_from_db()
    assert reply.text == "Hello {customer_name}"


def test_desk_records_are_read_only(admin_client_, billing):
    ticket = queued(billing)
    note = InternalNote.objects.create(ticket=ticket, text="secret")
    url = f"/admin/desk/internalnote/{note.pk}/change/"
    assert admin_client_.get(url).status_code == 200
    assert admin_client_.post(url, {"text": "changed"}).status_code == 403
    assert admin_client_.get("/admin/tickets/ticketactivity/add/").status_code == 403
    assert admin_client_.get("/admin/review/routinglabel/").status_code == 200
