import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings
from rest_framework.test import APIClient

from apps.chat.models import Message
from apps.chat.services import conversation_create, conversation_group
from apps.flows.messages import message_post
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient()


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_create_conversation_returns_id_and_token(client):
    response = client.post("/api/v1/conversations/", {"name": "Ada"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "token"}
    detail = client.get(f"/api/v1/conversations/{body['id']}/", **bearer(body["token"]))
    assert detail.status_code == 200
    assert detail.json()["messages"] == []
    assert detail.json()["status"] is None


def test_create_conversation_with_bad_email_is_a_field_error(client):
    response = client.post("/api/v1/conversations/", {"email": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "email" in response.json()["error"]["fields"]


def test_post_message_then_read_status_and_messages(client, conversation):
    url = f"/api/v1/conversations/{conversation.conversation.id}/"
    client_id = str(uuid.uuid4())
    posted = client.post(
        f"{url}messages/",
        {"text": "Refund please", "client_id": client_id},
        format="json",
        **bearer(conversation.token),
    )
    assert posted.status_code == 201
    assert posted.json()["client_id"] == client_id
    detail = client.get(url, **bearer(conversation.token)).json()
    assert detail["status"] == "routing"
    assert detail["pool"] is None
    assert [m["text"] for m in detail["messages"]] == ["Refund please"]
    assert "confidence" not in str(detail)


def _messages(conversation, count):
    return Message.objects.bulk_create(
        Message(conversation=conversation, sender=Message.Sender.CUSTOMER, text=f"m{n}")
        for n in range(count)
    )


def test_conversation_detail_holds_the_latest_messages_and_pages_back(client, conversation):
    conv = conversation.conversation
    _messages(conv, 7)
    url = f"/api/v1/conversations/{conv.id}/"
    latest = client.get(f"{url}?limit=3", **bearer(conversation.token)).json()
    assert [m["text"] for m in latest["messages"]] == ["m4", "m5", "m6"]
    assert latest["has_more"] is True
    older = client.get(
        f"{url}?limit=3&before={latest['messages'][0]['id']}", **bearer(conversation.token)
    ).json()
    assert [m["text"] for m in older["messages"]] == ["m1", "m2", "m3"]
    assert older["has_more"] is True
    oldest = client.get(
        f"{url}?limit=3&before={older['messages'][0]['id']}", **bearer(conversation.token)
    ).json()
    assert [m["text"] for m in oldest["messages"]] == ["m0"]
    assert oldest["has_more"] is False
    # The rest of the answer is as before.
    assert set(oldest) == {"id", "status", "pool", "pool_name", "last_seq", "messages", "has_more"}


def test_conversation_detail_answers_at_most_a_page_of_messages(client, conversation):
    conv = conversation.conversation
    _messages(conv, 205)
    url = f"/api/v1/conversations/{conv.id}/"
    default = client.get(url, **bearer(conversation.token)).json()
    assert [m["text"] for m in default["messages"]] == [f"m{n}" for n in range(155, 205)]
    assert default["has_more"] is True
    most = client.get(f"{url}?limit=100000", **bearer(conversation.token)).json()
    assert len(most["messages"]) == 200
    short = client.get(f"/api/v1/conversations/{conv.id}/?limit=300", **bearer(conversation.token))
    assert len(short.json()["messages"]) == 200
    for bad in ("limit=0", "limit=x", "before=-1", "before=x"):
        refused = client.get(f"{url}?{bad}", **bearer(conversation.token))
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["fields"]


def test_repeated_client_id_over_http_returns_the_stored_message(client, conversation):
    url = f"/api/v1/conversations/{conversation.conversation.id}/messages/"
    body = {"text": "once", "client_id": str(uuid.uuid4())}
    first = client.post(url, body, format="json", **bearer(conversation.token))
    again = client.post(url, body, format="json", **bearer(conversation.token))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("text", "code"), [("", "empty_text"), ("  ", "empty_text"), ("x" * 4001, "text_too_long")]
)
def test_bad_text_over_http_gets_the_same_codes_as_the_socket(client, conversation, text, code):
    url = f"/api/v1/conversations/{conversation.conversation.id}/messages/"
    response = client.post(url, {"text": text}, format="json", **bearer(conversation.token))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not Ticket.objects.exists()


@override_settings(CHAT_RATE_LIMIT="1/minute")
def test_rate_limit_over_http_is_429_with_retry_after(client, conversation):
    url = f"/api/v1/conversations/{conversation.conversation.id}/messages/"
    assert (
        client.post(url, {"text": "a"}, format="json", **bearer(conversation.token)).status_code
        == 201
    )
    refused = client.post(url, {"text": "b"}, format="json", **bearer(conversation.token))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1


def test_missing_or_malformed_authorization_is_401(client, conversation):
    url = f"/api/v1/conversations/{conversation.conversation.id}/"
    assert client.get(url).status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION="Bearer").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {conversation.token}").status_code == 401


def test_a_token_never_opens_another_conversation(client, conversation):
    other = conversation_create()
    message_post(conversation=other.conversation, text="private", sender=Message.Sender.CUSTOMER)
    other_url = f"/api/v1/conversations/{other.conversation.id}/"
    for response in [
        client.get(other_url, **bearer(conversation.token)),
        client.get(f"{other_url}events/", **bearer(conversation.token)),
        client.post(
            f"{other_url}messages/", {"text": "x"}, format="json", **bearer(conversation.token)
        ),
    ]:
        assert response.status_code == 404
        assert "private" not in response.content.decode()
    assert Message.objects.filter(conversation=other.conversation).count() == 1


def test_unknown_conversation_is_404(client, conversation):
    url = f"/api/v1/conversations/{uuid.uuid4()}/"
    assert client.get(url, **bearer(conversation.token)).status_code == 404


def test_events_endpoint_returns_the_socket_frames_after_a_seq(client, conversation):
    conv = conversation.conversation
    for text in ["one", "two"]:
        message_post(conversation=conv, text=text, sender=Message.Sender.CUSTOMER)
    url = f"/api/v1/conversations/{conv.id}/events/"
    everything = client.get(url, **bearer(conversation.token)).json()
    assert [e["seq"] for e in everything["events"]] == [1, 2, 3]
    assert everything["last_seq"] == 3
    later = client.get(f"{url}?after=2", **bearer(conversation.token)).json()
    assert [(e["type"], e["text"]) for e in later["events"]] == [("message", "two")]
    assert client.get(f"{url}?after=-1", **bearer(conversation.token)).status_code == 400


def test_a_message_sent_over_http_is_published_to_the_conversation_group(
    client, conversation, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(conversation_group(conversation.conversation.id), channel)
    url = f"/api/v1/conversations/{conversation.conversation.id}/messages/"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"text": "over http"}, format="json", **bearer(conversation.token))
    published = async_to_sync(layer.receive)(channel)
    assert published["frame"]["text"] == "over http"
    assert published["frame"]["seq"] == 1


def test_openapi_schema_documents_the_customer_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/conversations/{conversation_id}/messages/" in paths
    assert "conversationToken" in response.json()["components"]["securitySchemes"]


def test_api_docs_page_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert "cdn" not in response.content.decode().lower()
