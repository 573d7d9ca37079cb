"""The desk's staff REST API: who may see and do what, and what each endpoint answers."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.chat.models import ConversationEvent, Message
from apps.chat.services import conversation_create
from apps.desk.models import CannedReply, InternalNote
from apps.flows.demo import DEFAULT_POOLS
from apps.flows.messages import message_post
from apps.pools.models import AgentProfile
from apps.pools.presence import agent_presence_connect
from apps.pools.services import pool_membership_set, pool_upsert, ticket_queue
from apps.review.models import RoutingLabel
from apps.tickets.models import Ticket, TicketActivity


@pytest.fixture
def pools(db):
    return {spec["slug"]: pool_upsert(**spec) for spec in DEFAULT_POOLS}


def staff(username, *, pools=(), first_name="", supervisor=False):
    user = User.objects.create_user(username, password="pw", is_staff=True, first_name=first_name)
    if supervisor:
        user.user_permissions.add(Permission.objects.get(codename="supervise"))
    if pools:
        pool_membership_set(user=user, pools=pools, capacity=5)
    return user


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def queued_ticket(pool, text, name="Grace"):
    created = conversation_create(name=name)
    message_post(conversation=created.conversation, text=text, sender=Message.Sender.CUSTOMER)
    ticket = Ticket.objects.get(conversation=created.conversation)
    return ticket_queue(ticket=ticket, pool=pool)


@pytest.fixture
def desk(pools):
    billing_agent = staff("bea", pools=[pools["billing"]], first_name="Bea")
    technical_agent = staff("theo", pools=[pools["technical"]], first_name="Theo")
    supervisor = staff("sam", supervisor=True)
    billing = queued_ticket(pools["billing"], "Where is my invoice for March?")
    technical = queued_ticket(pools["technical"], "The app crashes when I log in")
    return {
        "bea": billing_agent,
        "theo": technical_agent,
        "sam": supervisor,
        "billing": billing,
        "technical": technical,
        "pools": pools,
    }


ACTIONS = [
    ("get", "/api/v1/tickets/{id}/", None),
    ("get", "/api/v1/tickets/{id}/canned-replies/", None),
    ("post", "/api/v1/tickets/{id}/reply/", {"text": "hello"}),
    ("post", "/api/v1/tickets/{id}/notes/", {"text": "psst"}),
    ("post", "/api/v1/tickets/{id}/claim/", None),
    ("post", "/api/v1/tickets/{id}/unassign/", None),
    ("post", "/api/v1/tickets/{id}/resolve/", None),
    ("post", "/api/v1/tickets/{id}/reopen/", None),
    ("post", "/api/v1/tickets/{id}/reroute/", {"pool": "refund", "reason": "money back"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS)
def test_a_billing_agent_can_neither_read_nor_act_on_a_technical_ticket(desk, method, path, body):
    ticket = desk["technical"]
    before = (Message.objects.count(), InternalNote.objects.count(), RoutingLabel.objects.count())
    response = getattr(api_as(desk["bea"]), method)(path.format(id=ticket.pk), body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "crashes" not in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.QUEUED
    assert ticket.pool == desk["pools"]["technical"]
    after = (Message.objects.count(), InternalNote.objects.count(), RoutingLabel.objects.count())
    assert after == before


def test_ticket_list_shows_only_the_agents_pools_and_everything_to_a_supervisor(desk):
    mine = api_as(desk["bea"]).get("/api/v1/tickets/").json()
    assert [row["id"] for row in mine["results"]] == [desk["billing"].pk]
    assert mine["results"][0]["last_message"]["text"] == "Where is my invoice for March?"
    assert api_as(desk["bea"]).get("/api/v1/tickets/?pool=technical").json()["count"] == 0
    every = api_as(desk["sam"]).get("/api/v1/tickets/").json()
    assert {row["id"] for row in every["results"]} == {desk["billing"].pk, desk["technical"].pk}


def test_ticket_list_filters_and_queue_order(desk):
    older = desk["billing"]
    newer = queued_ticket(desk["pools"]["billing"], "Charge on my card twice")
    client = api_as(desk["bea"])
    queue = client.get("/api/v1/tickets/?pool=billing&status=queued&ordering=queue").json()
    assert [row["id"] for row in queue["results"]] == [older.pk, newer.pk]
    client.post(f"/api/v1/tickets/{newer.pk}/claim/")
    mine = client.get("/api/v1/tickets/?assignee=me").json()
    assert [row["id"] for row in mine["results"]] == [newer.pk]
    assert mine["results"][0]["assignee"] == {
        "id": desk["bea"].pk,
        "username": "bea",
        "name": "Bea",
    }
    assert client.get("/api/v1/tickets/?pool=nope").status_code == 404
    bad = client.get("/api/v1/tickets/?status=sleeping")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid"


def test_a_supervisor_can_act_on_any_pool(desk):
    response = api_as(desk["sam"]).post(
        f"/api/v1/tickets/{desk['technical'].pk}/resolve/", format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


def test_reply_reaches_the_conversation_claims_the_ticket_and_stops_the_sla_clock(
    desk, django_capture_on_commit_callbacks
):
    ticket = desk["billing"]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(desk["bea"]).post(
            f"/api/v1/tickets/{ticket.pk}/reply/", {"text": "Sent it to you now."}, format="json"
        )
    assert response.status_code == 201
    assert response.json()["sender"] == "agent"
    assert response.json()["author"] == "Bea"
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.ASSIGNED
    assert ticket.assignee == desk["bea"]
    assert ticket.first_response_at is not None
    frames = [
        event.frame()
        for event in ConversationEvent.objects.filter(conversation=ticket.conversation)
    ]
    assert frames[-1]["type"] == "message"
    assert frames[-1]["sender"] == "agent"
    assert frames[-1]["author"] == "Bea"
    assert frames[-1]["text"] == "Sent it to you now."


@pytest.mark.parametrize(("text", "code"), [("   ", "empty_text"), ("x" * 4001, "text_too_long")])
def test_bad_reply_text_is_refused_with_the_chat_codes(desk, text, code):
    response = api_as(desk["bea"]).post(
        f"/api/v1/tickets/{desk['billing'].pk}/reply/", {"text": text}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_internal_notes_are_shown_to_staff_and_never_to_the_customer(desk):
    ticket = desk["billing"]
    created = api_as(desk["bea"]).post(
        f"/api/v1/tickets/{ticket.pk}/notes/", {"text": "VIP, be gentle"}, format="json"
    )
    assert created.status_code == 201
    detail = api_as(desk["bea"]).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert [note["text"] for note in detail["notes"]] == ["VIP, be gentle"]
    assert "VIP" not in str(
        list(ConversationEvent.objects.filter(conversation=ticket.conversation).values())
    )
    assert not Message.objects.filter(text__contains="VIP").exists()


def test_ticket_detail_carries_the_whole_story_for_staff(desk, pools):
    ticket = desk["billing"]
    client = api_as(desk["bea"])
    client.post(f"/api/v1/tickets/{ticket.pk}/reply/", {"text": "On it"}, format="json")
    detail = client.get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert [m["sender"] for m in detail["messages"]] == ["customer", "agent"]
    assert detail["messages"][0]["attachments"] == []
    kinds = [activity["kind"] for activity in detail["activities"]]
    assert kinds[:2] == [TicketActivity.Kind.QUEUED, TicketActivity.Kind.CLAIMED]
    assert detail["pool"] == {"id": pools["billing"].pk, "slug": "billing", "name": "Billing"}
    assert detail["sla_due_at"] is not None
    assert detail["decisions"] == []
    assert detail["context"] is None
    assert detail["drafts"] == []


def test_wrong_pool_moves_the_ticket_and_records_a_label(desk):
    ticket = desk["billing"]
    bea, theo = desk["bea"], desk["theo"]
    agent_presence_connect(user=theo)
    response = api_as(bea).post(
        f"/api/v1/tickets/{ticket.pk}/reroute/",
        {"pool": "technical", "reason": "It is a login problem"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["pool"]["slug"] == "technical"
    ticket.refresh_from_db()
    assert ticket.pool == desk["pools"]["technical"]
    assert ticket.assignee == theo  # the online technical agent got it
    label = RoutingLabel.objects.get(ticket=ticket)
    assert (label.source, label.previous_pool, label.pool, label.author) == (
        "reroute",
        desk["pools"]["billing"],
        desk["pools"]["technical"],
        bea,
    )
    assert label.reason == "It is a login problem"
    # Moved out of Bea's pools: she can no longer open it; Theo can.
    assert api_as(bea).get(f"/api/v1/tickets/{ticket.pk}/").status_code == 404
    assert api_as(theo).get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"pool": "billing", "reason": "same"}, 409, "conflict"),
        ({"pool": "sales", "reason": "x"}, 404, "not_found"),
        ({"pool": "technical", "reason": "  "}, 400, "empty_text"),
        ({"pool": "technical"}, 400, "invalid"),
    ],
)
def test_wrong_pool_refuses_bad_input(desk, body, status, code):
    response = api_as(desk["bea"]).post(
        f"/api/v1/tickets/{desk['billing'].pk}/reroute/", body, format="json"
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not RoutingLabel.objects.exists()


def test_claim_unassign_resolve_reopen_round_trip(desk, django_capture_on_commit_callbacks):
    ticket, client = desk["billing"], api_as(desk["bea"])
    base = f"/api/v1/tickets/{ticket.pk}"
    assert client.post(f"{base}/claim/").json()["status"] == "assigned"
    assert client.post(f"{base}/unassign/").json()["status"] == "queued"
    assert client.post(f"{base}/claim/").json()["assignee"]["username"] == "bea"
    resolved = client.post(f"{base}/resolve/")
    assert resolved.json()["status"] == "resolved"
    again = client.post(f"{base}/resolve/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    reopened = client.post(f"{base}/reopen/").json()
    assert (reopened["status"], reopened["assignee"]["username"]) == ("assigned", "bea")
    statuses = [
        event.payload["status"]
        for event in ConversationEvent.objects.filter(
            conversation=ticket.conversation, type="status"
        )
    ]
    assert statuses[-5:] == ["assigned", "queued", "assigned", "resolved", "assigned"]


def test_only_the_assignee_or_a_supervisor_can_unassign(desk, pools):
    other = staff("bob", pools=[pools["billing"]])
    ticket = desk["billing"]
    api_as(desk["bea"]).post(f"/api/v1/tickets/{ticket.pk}/claim/")
    response = api_as(other).post(f"/api/v1/tickets/{ticket.pk}/unassign/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert api_as(desk["sam"]).post(f"/api/v1/tickets/{ticket.pk}/unassign/").status_code == 200


def test_canned_replies_are_filled_for_the_ticket_and_agent(desk, pools):
    CannedReply.objects.create(
        pool=pools["billing"], title="Hello", text="Hi {customer_name}, {agent_name} here ({x})."
    )
    CannedReply.objects.create(pool=None, title="Bye", text="Thanks from {pool_name}!")
    CannedReply.objects.create(pool=pools["technical"], title="Tech", text="Reboot it")
    CannedReply.objects.create(pool=pools["billing"], title="Old", text="gone", active=False)
    replies = api_as(desk["bea"]).get(f"/api/v1/tickets/{desk['billing'].pk}/canned-replies/")
    assert [(r["title"], r["text"]) for r in replies.json()] == [
        ("Bye", "Thanks from Billing!"),
        ("Hello", "Hi Grace, Bea here ({x})."),
    ]


def test_desk_overview_counts_queues_presence_and_reroute_targets(desk):
    theo = desk["theo"]
    agent_presence_connect(user=theo)  # takes the queued technical ticket
    queued_ticket(desk["pools"]["billing"], "Another invoice question")
    overview = api_as(desk["bea"]).get("/api/v1/desk/").json()
    assert overview["user"] == {"id": desk["bea"].pk, "username": "bea", "name": "Bea"}
    assert overview["supervisor"] is False
    assert overview["presence"] == "offline"
    assert [(p["slug"], p["queued"], p["assigned"]) for p in overview["pools"]] == [
        ("billing", 2, 0)
    ]
    assert [p["slug"] for p in overview["all_pools"]] == ["billing", "refund", "technical"]
    assert overview["drafts_enabled"] is False
    supervised = api_as(desk["sam"]).get("/api/v1/desk/").json()
    technical = next(p for p in supervised["pools"] if p["slug"] == "technical")
    assert (technical["assigned"], technical["members_online"]) == (1, 1)


def test_presence_can_be_chosen_only_with_an_open_desk(desk):
    client = api_as(desk["bea"])
    refused = client.post("/api/v1/desk/presence/", {"presence": "away"}, format="json")
    assert refused.status_code == 409
    agent_presence_connect(user=desk["bea"])
    assert client.post("/api/v1/desk/presence/", {"presence": "away"}, format="json").json() == {
        "presence": "away"
    }
    assert AgentProfile.objects.get(user=desk["bea"]).presence == "away"
    bad = client.post("/api/v1/desk/presence/", {"presence": "offline"}, format="json")
    assert bad.status_code == 400


def test_non_staff_and_anonymous_users_are_refused(desk):
    customer_like = User.objects.create_user("carl", password="pw")
    assert api_as(customer_like).get("/api/v1/tickets/").status_code == 403
    assert APIClient().get("/api/v1/tickets/").status_code in (401, 403)


def test_drf_token_authentication_works_for_integrations(desk):
    call_command("drf_create_token", "bea", verbosity=0)
    key = Token.objects.get(user=desk["bea"]).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/tickets/")
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_openapi_schema_documents_the_desk_endpoints_without_name_clashes(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in [
        "/api/v1/tickets/",
        "/api/v1/tickets/{ticket_id}/reroute/",
        "/api/v1/tickets/{ticket_id}/canned-replies/",
        "/api/v1/desk/",
    ]:
        assert path in schema["paths"]
    components = schema["components"]["schemas"]
    assert "TicketRerouteInputRequest" in components
    assert "DeskOverviewOutput" in components
