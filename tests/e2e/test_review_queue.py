"""The review queue in the admin, in real Chromium: a reviewer filters, routes a doubtful ticket,
and the customer's widget shows the team that now has it."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

# No API key on the live server: the local model's doubt goes straight to review.
DOUBTFUL = "Quick question about something odd with my stuff, can somebody look?"


def by_testid(page: Page, testid: str):
    return page.locator(f'[data-testid="{testid}"]')


def test_a_reviewer_routes_a_doubtful_ticket_and_the_customer_sees_the_team(
    live_server_proc, browser: Browser, staff_page, output_path: str
):
    customer_context = browser.new_context()
    try:
        customer = customer_context.new_page()
        customer.goto(live_server_proc.url + "/")
        by_testid(customer, "sd-launcher").click()
        by_testid(customer, "sd-input").fill(DOUBTFUL)
        by_testid(customer, "sd-send").click()
        expect(by_testid(customer, "sd-status")).to_have_text(
            "A member of our team is reviewing your request."
        )

        reviewer = staff_page(live_server_proc, "reviewer", next_path="/admin/review/reviewitem/")
        expect(reviewer.locator("h1")).to_contain_text(re.compile(r"Review queue\s+\d+\s+open"))
        # Filter to fresh review items (not audit samples), then find our ticket.
        reviewer.locator("#changelist-filter").get_by_role("link", name="Under an hour").click()
        reviewer.locator("#changelist-filter").get_by_role(
            "link", name="Review", exact=True
        ).click()
        expect(reviewer).to_have_url(re.compile(r"age=1h"))
        row = reviewer.locator("#result_list tbody tr", has_text=DOUBTFUL[:40])
        expect(row).to_have_count(1)
        Path(output_path).mkdir(parents=True, exist_ok=True)
        reviewer.screenshot(path=str(Path(output_path) / "review-queue-open.png"), full_page=True)
        row.locator("input.action-select").check()
        reviewer.select_option("select[name=action]", "route_to_pool")
        reviewer.click("button[name=index]")
        expect(reviewer.get_by_role("heading", name="Route to a pool")).to_be_visible()
        reviewer.select_option("select[name=pool]", label="Technical")
        reviewer.click("input[name=apply]")
        expect(reviewer.locator(".messagelist")).to_contain_text("Resolved 1 item(s).")
        reviewer.screenshot(path=str(Path(output_path) / "review-queue-done.png"), full_page=True)

        # The customer hears it live: their request is with the technical team now.
        expect(by_testid(customer, "sd-status")).to_contain_text("Technical team")
        expect(by_testid(customer, "sd-panel")).not_to_contain_text(re.compile(r"\d\.\d|%"))
    finally:
        customer_context.close()
