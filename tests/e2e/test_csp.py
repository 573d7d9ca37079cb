"""Every page people use works under its Content-Security-Policy (issue 12, finding 9).

The policy allows scripts from our own origin only; the `csp_violations` fixture fails a test
on any violation Chromium reports. Here each staff page is opened and shown to work.
"""

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PAGES = [
    ("/admin/", "#site-name"),
    ("/admin/review/reviewitem/", "#changelist"),
    ("/admin/orchestrator/routingrule/add/", "form"),
    ("/admin/orchestrator/promptversion/1/diff/", "h1"),
    ("/reports/", "[data-testid=chart-tickets]"),
    ("/reports/decisions/", "h1"),
    ("/desk/", "[data-testid=desk-user]"),
]


def test_staff_pages_send_the_policy_and_work_under_it(live_server_proc, staff_page):
    page: Page = staff_page(live_server_proc, "admin", next_path="/admin/")
    for path, ready in PAGES:
        response = page.goto(live_server_proc.url + path)
        assert response is not None
        assert response.status == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "object-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        expect(page.locator(ready).first).to_be_visible()


def test_the_api_docs_render_without_an_inline_script(live_server_proc, page: Page):
    response = page.goto(live_server_proc.url + "/api/docs/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Swagger UI drew the operations from the schema: its script ran from a file.
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=15_000)
