"""Scale-out profile: a ticket routed by the Celery worker is counted at an ASGI server's
/metrics (prometheus_client multiprocess mode through PROMETHEUS_MULTIPROC_DIR)."""

import json
import time
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.scale

ROUTED = "supportdesk_routing_outcomes_total"


def scrape(server) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def routed(samples, **labels: str) -> float:
    return sum(
        value
        for (name, sample_labels), value in samples.items()
        if name == ROUTED and set(labels.items()) <= sample_labels
    )


def post(url: str, body: dict, token: str | None = None) -> tuple[dict, str | None]:
    headers = {"Content-Type": "application/json", "X-Request-ID": "scale-metrics-1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response), response.headers.get("X-Request-ID")


def status_of(server, conversation: dict) -> str:
    request = urllib.request.Request(
        f"{server.url}/api/v1/conversations/{conversation['id']}/",
        headers={"Authorization": f"Bearer {conversation['token']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["status"])


# Alone, this test also waits for the cluster to start and the worker to warm up.
@pytest.mark.timeout(180)
def test_a_ticket_routed_by_the_worker_is_counted_at_an_asgi_servers_metrics(scale_cluster):
    a, b = scale_cluster.servers
    before = scrape(b)
    conversation, request_id = post(f"{a.url}/api/v1/conversations/", {})
    assert request_id == "scale-metrics-1"
    post(
        f"{a.url}/api/v1/conversations/{conversation['id']}/messages/",
        {
            "text": "I forgot my password and the reset email never arrives",
            "client_id": str(uuid.uuid4()),
        },
        conversation["token"],
    )
    deadline = time.monotonic() + 60
    while status_of(b, conversation) == "routing":
        assert time.monotonic() < deadline, "the worker did not route the ticket"
        time.sleep(0.2)
    after = scrape(b)
    # The ASGI servers never route in this profile: the count comes from the worker's file.
    assert routed(after, outcome="route", dry_run="false") >= (
        routed(before, outcome="route", dry_run="false") + 1
    )
    assert routed(after, tier="local") > routed(before, tier="local")
    # The other server merges the same files.
    assert routed(scrape(a), tier="local") == routed(after, tier="local")
