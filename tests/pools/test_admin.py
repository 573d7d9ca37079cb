"""The admin: membership and capacity changes fill queues; a user's page shows their pools."""

import pytest
from django.contrib.auth.models import User

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.pools.models import AgentProfile, Intent, PoolMembership
from apps.pools.presence import agent_presence_connect
from apps.pools.services import pool_upsert, ticket_queue
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


@pytest.fixture
def billing():
    return pool_upsert(slug="billing", name="Billing", description="Invoices")


def queued(pool):
    created = conversation_create(name="Ada")
    message_post(conversation=created.conversation, text="Invoice?", sender=Message.Sender.CUSTOMER)
    return ticket_queue(ticket=Ticket.objects.get(conversation=created.conversation), pool=pool)


def test_adding_a_member_on_the_pool_page_assigns_waiting_tickets(admin_client_, billing):
    agent = User.objects.create_user("bea", password="pw", is_staff=True)
    agent_presence_connect(user=agent)  # online, but not yet in any pool
    ticket = queued(billing)
    assert Ticket.objects.get(pk=ticket.pk).status == "queued"
    response = admin_client_.post(
        f"/admin/pools/pool/{billing.pk}/change/",
        {
            "slug": "billing",
            "name": "Billing",
            "description": "Invoices",
            "active": "on",
            "required_fields": "[]",
            "first_response_minutes": "15",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": agent.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert PoolMembership.objects.filter(pool=billing, user=agent).exists()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("assigned", agent)


def test_the_user_page_shows_capacity_and_pools(admin_client_, billing):
    agent = User.objects.create_user("bea", password="pw", is_staff=True)
    AgentProfile.objects.create(user=agent, capacity=2)
    page = admin_client_.get(f"/admin/auth/user/{agent.pk}/change/").content.decode().lower()
    assert "agent capacity and presence" in page
    assert "pools this user works" in page


def test_an_admin_adds_an_intent_to_a_pool_and_lists_intents_by_pool(admin_client_, billing):
    response = admin_client_.post(
        "/admin/pools/intent/add/",
        {"slug": "invoice_copy", "pool": billing.pk, "description": "A copy of an invoice"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Intent.objects.get(slug="invoice_copy").pool == billing
    listing = admin_client_.get("/admin/pools/intent/", {"pool__id__exact": billing.pk})
    assert "invoice_copy" in listing.content.decode()
    # One pool per intent: the same slug cannot be added again, under any pool.
    again = admin_client_.post(
        "/admin/pools/intent/add/", {"slug": "invoice_copy", "pool": billing.pk}
    )
    assert again.status_code == 200
    assert Intent.objects.filter(slug="invoice_copy").count() == 1
