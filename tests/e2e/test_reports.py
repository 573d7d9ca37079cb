"""The manager dashboard in real Chromium: customers' tickets are routed by the real pipeline on a
live server, the manager opens /reports/, the charts draw, and a figure's drill-down link opens
exactly the decisions behind it."""

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.servers import AsgiServer, embedded_env, migrated_sqlite

pytestmark = pytest.mark.browser

# Shipped seed examples: the local model (trained by seed_demo) routes them itself.
TEXTS = [
    "Can you send me a copy of my invoice for March?",
    "Why was I charged twice this month?",
    "how do I update the credit card on my account",
    "Quick question about something odd with my stuff, can somebody look?",
]


@pytest.fixture(scope="module")
def reports_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsgiServer]:
    """A live server of its own: the tickets this test opens stay out of the desk tests' queues."""
    workdir = tmp_path_factory.mktemp("live-reports")
    env = embedded_env(workdir, MEDIA_ROOT=str(workdir / "media"))
    migrated_sqlite(env, seed=True)
    server = AsgiServer(env, log=workdir / "server.log")
    server.start()
    yield server
    server.stop()


def _call(url: str, *, data: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(data).encode() if data is not None else None,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
        method="POST" if data is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _open_routed_tickets(server: AsgiServer) -> None:
    """Customers write over the REST fallback; wait until routing has placed every ticket."""
    conversations = []
    for text in TEXTS:
        created = _call(f"{server.url}/api/v1/conversations/", data={})
        _call(
            f"{server.url}/api/v1/conversations/{created['id']}/messages/",
            data={"text": text},
            token=created["token"],
        )
        conversations.append(created)
    deadline = time.monotonic() + 30
    pending = list(conversations)
    while pending and time.monotonic() < deadline:
        pending = [
            c
            for c in pending
            if _call(f"{server.url}/api/v1/conversations/{c['id']}/", token=c["token"]).get(
                "status"
            )
            in (None, "routing")
        ]
        time.sleep(0.2)
    assert not pending, "routing did not finish"


def _canvas_has_ink(page: Page, testid: str) -> bool:
    return page.evaluate(
        """(testid) => {
            const canvas = document.querySelector(`[data-testid="${testid}"]`);
            if (!canvas || !canvas.width || !canvas.height) return false;
            const context = canvas.getContext("2d");
            const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
            return false;
        }""",
        testid,
    )


def test_the_manager_sees_charts_and_drills_down_to_the_decisions(
    reports_server, staff_page, output_path: str
):
    _open_routed_tickets(reports_server)
    page = staff_page(reports_server, "manager", next_path="/reports/")
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)

    expect(page.locator("h1")).to_contain_text("all pools")
    expect(page.get_by_test_id("card-tickets").locator(".card__value")).to_have_text(
        str(len(TEXTS))
    )
    for chart in ("tickets", "cost", "shares", "confidence", "latency", "tokens"):
        canvas = page.get_by_test_id(f"chart-{chart}")
        expect(canvas).to_be_visible()
        page.wait_for_function("(el) => el.width > 0 && el.height > 0", arg=canvas.element_handle())
        assert _canvas_has_ink(page, f"chart-{chart}"), chart
    page.screenshot(path=str(out / "reports-dashboard.png"), full_page=True)

    # The local-model card drills down to the final decisions of the tickets it routed.
    summary = page.evaluate(
        "() => JSON.parse(document.getElementById('report-data').textContent).summary"
    )
    local = summary["routing"]["local"]
    assert local["count"] > 0
    page.get_by_test_id("card-local").click()
    page.wait_for_url("**/reports/decisions/?*")
    expect(page.get_by_test_id("drill-count")).to_have_text(str(local["count"]))
    receipts = page.get_by_test_id("receipt")
    expect(receipts).to_have_count(local["count"])
    for row in receipts.all():
        expect(row).to_contain_text("local · route")
        expect(row).to_contain_text("final")
    expect(page.get_by_test_id("receipts")).to_contain_text("invoice")
    page.screenshot(path=str(out / "reports-drilldown.png"), full_page=True)

    # An agent may not open the dashboard.
    agent = staff_page(reports_server, "agent-billing", next_path="/desk/")
    response = agent.goto(f"{reports_server.url}/reports/")
    assert response is not None
    assert response.status == 403


def test_the_dashboard_fits_a_phone_screen(reports_server, staff_page, output_path: str):
    page = staff_page(
        reports_server, "manager", next_path="/reports/", viewport={"width": 390, "height": 844}
    )
    expect(page.get_by_test_id("chart-tickets")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390 + 1
    Path(output_path).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(output_path) / "reports-phone.png"), full_page=True)
