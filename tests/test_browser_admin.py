"""The support console in a real browser: Playwright drives Debian's Chromium against the
live server. Nothing here is skipped: without Chromium the tests fail and say how to get it
(CI installs it, see .ci/run)."""

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from agents.models import A1Agent
from agents.services import agent_create
from audit.models import AuditEntry
from tests.factories import UsageFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh Chromium page; fails (never skips) when Chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install -y chromium; .ci/run installs it).",
            pytrace=False,
        )
    # Playwright's sync API runs an event loop in this thread; the live server's ORM calls
    # happen in the server's own thread, but Django's check looks at this one.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 1600})
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def test_support_finds_an_agent_by_handle_pauses_it_and_sees_the_audit_entry(
    page: Any, live_server: Any, default_plans: None
) -> None:
    support = User.objects.create_user(
        "sam_support", password="a-long-test-password", is_staff=True
    )
    support.groups.add(Group.objects.get(name="support"))
    agent, _ = agent_create(
        owner_id="user_browser", name="Browser Helper", handle="Browser_Bot", agent_type="work"
    )
    agent_create(owner_id="user_other", name="Someone Else", handle="other_bot", agent_type="work")
    today = timezone.now().date()
    for days_ago, messages in ((0, 120), (1, 80), (2, 95), (6, 30), (12, 60), (20, 15)):
        UsageFactory.create(
            agent=agent, date=today - dt.timedelta(days=days_ago), message_count=messages
        )

    page.goto(f"{live_server.url}/admin/login/?next=/admin/agents/a1agent/")
    page.fill("#id_username", "sam_support")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/agents/a1agent/$"))

    page.fill("#searchbar", "@BROWSER_bot")
    page.press("#searchbar", "Enter")
    page.wait_for_url(re.compile(r"q=%40BROWSER_bot"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "@Browser_Bot" in rows.first.inner_text()

    rows.first.locator("a", has_text="Browser Helper").click()
    # (the admin keeps the search in `_changelist_filters`)
    page.wait_for_url(re.compile(rf"/admin/agents/a1agent/{agent.pk}/change/"))
    assert page.locator("#panel-subscription").is_visible()
    assert page.locator("svg.usage-chart rect[height='80']").count() == 1  # the busiest day

    page.click("#agent-pause")
    page.wait_for_selector("ul.messagelist li.success")
    assert "@Browser_Bot paused." in page.locator("ul.messagelist").inner_text()
    audit = page.locator("#panel-audit")
    assert "agent.paused" in audit.inner_text()
    assert "staff:sam_support" in audit.inner_text()
    assert page.locator("#agent-resume").is_visible()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "agent-page.png"), full_page=True)

    agent.refresh_from_db()
    assert agent.status == "paused"
    entry = AuditEntry.objects.get(action="agent.paused")
    assert (entry.actor_kind, entry.actor_name) == ("staff", "sam_support")
    assert A1Agent.objects.get(handle="other_bot").status == "active"
    assert (ARTIFACTS / "agent-page.png").stat().st_size > 0
    assert os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] == "true"
