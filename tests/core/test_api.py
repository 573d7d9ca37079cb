"""DRF glue shared by every API (apps/core/api.py): the page every list answers."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.chat.services import conversation_create
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="pw"))
    return client


def test_a_page_holds_at_most_200_rows_whatever_limit_asks(admin_api):
    conversation = conversation_create().conversation
    Ticket.objects.bulk_create(
        Ticket(conversation=conversation, status=Ticket.Status.RESOLVED) for _ in range(205)
    )
    page = admin_api.get("/api/v1/tickets/?limit=100000").json()
    assert page["count"] == 205
    assert len(page["results"]) == 200
    assert "offset=200" in page["next"]
    rest = admin_api.get("/api/v1/tickets/?limit=100000&offset=200").json()
    assert len(rest["results"]) == 5
    assert rest["next"] is None
    # Without a limit, the default page.
    assert len(admin_api.get("/api/v1/tickets/").json()["results"]) == 50


def test_the_schema_documents_the_largest_page(admin_api):
    schema = admin_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/v1/tickets/", "/api/v1/review/", "/api/v1/decisions/"):
        (limit,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        assert "at most 200" in limit["description"], path
