"""The web UI in Chromium: each action through the page, then the database checked through
the `Tether` client, not only the page. Screenshots of each page land in the test's tmp dir;
with TETHER_UPDATE_DOCS=1 the research agent's run detail is also written to docs/."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import OpenAIServer
from tests.receipts.conftest import on_openai
from tests.receipts.test_tool_receipts import _interrupted_mail, sent
from tests.server.browser import CHROMIUM, CHROMIUM_ARGS, live_server, skip_without_chromium
from tests.server.conftest import WORKFLOWS, Served
from tests.workers import ROOT, wait_for
from tether import RunStatus, Tether
from tether.server.auth import for_tether

pytestmark = pytest.mark.slow


@pytest.fixture
def browser() -> Iterator[Any]:
    skip_without_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def site(served: Served, browser: Any) -> Iterator[tuple[str, Any]]:
    """A signed-in page on a live server: (base URL, page)."""
    with live_server(served.tether, served.auth) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/login?token={served.auth.login_link()}")
        yield base, page
        page.close()


def _run(served: Served | Tether, run_id: str, stop: threading.Event | None = None) -> RunStatus:
    """`Tether.run` on a thread of its own: Playwright's sync API holds an event loop on
    this one, and the runtime runs the workflow on a loop of its own."""
    t = served if isinstance(served, Tether) else served.tether
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(t.run, run_id, stop).result(timeout=120).status


def _parked(served: Served, run_id: str) -> threading.Event:
    stop = threading.Event()

    def watch() -> None:
        wait_for(lambda: served.tether.status(run_id).status is RunStatus.SLEEPING)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    return stop


def test_without_a_session_the_page_is_the_401_page(
    served: Served, browser: Any, tmp_path: Path
) -> None:
    with live_server(served.tether, served.auth) as base:
        page = browser.new_page()
        answer = page.goto(base)
        assert answer is not None and answer.status == 401
        assert page.locator("h1").inner_text() == "Sign in to tether"
        page.screenshot(path=tmp_path / "401.png")


def test_a_run_started_in_the_page_moves_in_the_list_without_reloading(
    served: Served, site: tuple[str, Any], tmp_path: Path
) -> None:
    base, page = site
    page.locator("summary", has_text="Start a run").click()
    page.select_option("select[name=workflow] >> nth=1", "steps")
    page.fill("textarea[name=input]", '{"n": 3}')
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{base}/runs/*")
    run_id = page.url.rsplit("/", 1)[1]
    run = served.tether.status(run_id)
    assert run.workflow == "steps" and run.status is RunStatus.PENDING
    page.goto(base)
    row = page.locator(f"tr[data-run='{run_id}']")
    assert row.locator(".status").inner_text() == "pending"
    page.evaluate("window.notReloaded = true")
    assert _run(served, run_id) is RunStatus.COMPLETED
    row.locator(".status", has_text="completed").wait_for(timeout=15_000)
    assert page.evaluate("window.notReloaded") is True  # swapped in by the stream, no reload
    assert served.tether.status(run_id).status is RunStatus.COMPLETED
    page.screenshot(path=tmp_path / "runs.png", full_page=True)
    page.click(f"a[href='/runs/{run_id}']")
    assert page.locator(".timeline .step").count() == 3
    page.screenshot(path=tmp_path / "run.png", full_page=True)


def test_a_sleeping_run_is_cancelled_from_its_page(
    served: Served, site: tuple[str, Any], tmp_path: Path
) -> None:
    base, page = site
    t = served.tether
    run_id = t.start("nap", {"seconds": 60})
    assert _run(served, run_id, _parked(served, run_id)) is RunStatus.SLEEPING
    page.goto(f"{base}/runs/{run_id}")
    assert page.locator("#run-status").inner_text() == "sleeping"
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Cancel run").click()
    page.locator("#run-status", has_text="cancelled").wait_for()
    assert t.status(run_id).status is RunStatus.CANCELLED
    page.screenshot(path=tmp_path / "cancelled.png", full_page=True)


def test_a_parked_unsafe_call_is_resolved_from_the_page(
    served: Served, site: tuple[str, Any], tmp_path: Path
) -> None:
    base, page = site
    t = served.tether
    outbox = tmp_path / "outbox.txt"
    run_id = _interrupted_mail(t, tmp_path, outbox)
    page.goto(f"{base}/parked")
    page.screenshot(path=tmp_path / "parked.png", full_page=True)
    page.click(f"a[href='/runs/{run_id}'] >> nth=0")
    assert "UnsafeReplayError" in page.locator(".error-box").inner_text()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Skip (it happened)").click()
    page.wait_for_load_state()
    run = t.status(run_id)
    assert run.status is RunStatus.PENDING  # resolved: a worker resumes it
    assert _run(served, run_id) is RunStatus.COMPLETED and len(sent(outbox)) == 1


def test_a_paused_runs_budget_is_raised_from_the_page(
    make_tether: Callable[..., Tether],
    browser: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test")
    provider = OpenAIServer()
    try:
        t = make_tether(
            workflows=WORKFLOWS,
            limits={"cost_cap_usd": 1e-9, "on_cost_cap": "pause"},
            **on_openai(provider),
        )
        run_id = t.start("chatty", {"calls": 2})
        assert _run(t, run_id) is RunStatus.PAUSED
        auth = for_tether(t)
        with live_server(t, auth) as base:
            page = browser.new_page()
            page.goto(f"{base}/login?token={auth.login_link()}")
            page.goto(f"{base}/parked")
            assert (
                "cost cap reached" in page.locator(f"tr:has(a[href='/runs/{run_id}'])").inner_text()
            )
            page.get_by_role("link", name="raise budget").click()
            page.fill("input[name=usd]", "1")
            page.get_by_role("button", name="Raise budget").click()
            page.wait_for_load_state()
            assert t.status(run_id).status is not RunStatus.PAUSED  # woken by the raise
            page.screenshot(path=tmp_path / "budget-raised.png", full_page=True)
        auth.close()
        assert _run(t, run_id) is RunStatus.COMPLETED
        assert len(provider.requests) == 2  # the paused call was made once, after the raise
    finally:
        provider.close()


def test_the_research_agents_run_detail_reads_at_desktop_and_phone_widths(
    served: Served, site: tuple[str, Any], tmp_path: Path
) -> None:
    base, page = site
    t = served.tether
    run_id = t.start("research_report", {"topic": "durable background agents"})
    assert _run(served, run_id) is RunStatus.COMPLETED
    page.goto(f"{base}/runs/{run_id}")
    assert page.locator(".timeline .k-model").count() > 0
    assert page.locator(".timeline .k-tool").count() > 0
    shot = tmp_path / "run-detail.png"
    page.screenshot(path=shot)
    if os.environ.get("TETHER_UPDATE_DOCS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        page.screenshot(path=ROOT / "docs" / "run-detail.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, f"the page is {wide} px wide at a 390 px viewport"
    page.screenshot(path=tmp_path / "run-detail-390.png", full_page=True)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    assert json.loads(t.codec.resolve(t.status(run_id).output or "null"))


def test_an_approval_is_given_from_the_approvals_page_and_the_run_resumes(
    served: Served, site: tuple[str, Any], tmp_path: Path
) -> None:
    base, page = site
    t = served.tether
    run_id = t.start("deploy_gate", {"version": "7.1"})
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:  # until it parks on its approval
        parked = pool.submit(t.run, run_id, stop, lambda _: stop.set()).result(timeout=120)
    assert parked.status is RunStatus.WAITING
    (request,) = t.approvals(state="pending", run_id=run_id)
    # deploy_gate asks role:ops; this browser signs in again as an operator who is on it
    page.goto(f"{base}/login?token={served.auth.login_link(('operator', 'ops'))}")
    page.get_by_role("link", name="Approvals").click()
    card = page.locator(f"section[data-request='{request.id}']")
    assert request.action.args_hash in card.locator(".hash").inner_text()
    assert '"version": "7.1"' in card.locator("pre.args").inner_text()
    page.screenshot(path=tmp_path / "approvals.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=tmp_path / "approvals-390.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    card.locator("input[name=reason]").first.fill("release window is open")
    page.once("dialog", lambda d: d.accept())
    card.get_by_role("button", name="Approve", exact=True).click()
    decided = page.locator(f"tr[data-request='{request.id}']")
    decided.wait_for()
    assert decided.locator(".by").inner_text() == "browser"
    assert decided.locator(".verdict").inner_text().startswith("approved")

    stored = t.approval(request.id)  # the database, not only the page
    assert stored.decision is not None
    assert (stored.decision.by, stored.decision.reason) == ("browser", "release window is open")
    assert _run(served, run_id) is RunStatus.COMPLETED
    assert t.output(t.status(run_id))["verdict"] == "approved"
    assert t.output(t.status(run_id))["by"] == "browser"
    page.screenshot(path=tmp_path / "approved.png", full_page=True)
