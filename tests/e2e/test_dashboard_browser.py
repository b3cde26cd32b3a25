"""The dashboard in a real headless Chromium: sign in, watch the bank go down and come back,
pause and resume from the page. Leaves screenshots in `test-artifacts/` (or
$HEDUI_TEST_ARTIFACTS) for people to look at.

The browser is Debian's `chromium` (`make test` installs it when missing). Without one the
test is skipped with a message, except in CI (CI=true), where that is a failure.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from tests.conftest import LiveService, running_service, service_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("HEDUI_TEST_ARTIFACTS", "test-artifacts"))
WITHIN_MS = 30_000  # the promise: a broken partner shows as down within 30 s
CUT_OFF_TEXT = """() => [...document.querySelectorAll(
    "section[data-connector] h2, .chart-title, .stat, .pill, .sub .name, .badge")]
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => e.className + ": " + e.textContent.trim())"""
"""Card texts wider than their box (cut off, or hidden by an ellipsis)."""


def _browser_or_skip() -> Any:
    problem = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem is None and not CHROMIUM.exists():
        problem = f"no browser at {CHROMIUM} (make test installs Debian's chromium package)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return async_playwright


@pytest.fixture
def artifacts() -> Path:
    return ARTIFACTS


@pytest.fixture
async def service(
    fresh_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[LiveService, str]]:
    engine = create_engine(fresh_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.operator, region="00", name="ops-desk")
        await session.commit()
    await engine.dispose()
    settings = service_settings(
        fresh_database_url,
        tmp_path / "sandbox.db",
        health_probe_interval_s=0.5,
        health_sync_s=0.1,
        dashboard_refresh_s=0.5,
    )
    async with running_service(settings) as live:
        yield live, token
        async with httpx.AsyncClient(base_url=live.base_url) as plain:
            await plain.delete("/sandbox/faults/bank")


async def test_operator_watches_the_bank_go_down_and_come_back_and_pauses_a_source(
    service: tuple[LiveService, str], artifacts: Path
) -> None:
    async_playwright = _browser_or_skip()
    live, token = service
    # localhost, not 127.0.0.1: browsers keep Secure cookies on plain HTTP for localhost only.
    page_url = live.base_url.replace("127.0.0.1", "localhost") + "/dashboard"
    async with (
        async_playwright() as playwright,
        httpx.AsyncClient(base_url=live.base_url, timeout=30) as http,
    ):
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            await page.goto(page_url)
            await page.fill("#key", token)
            await page.click("button[type=submit]")
            await page.wait_for_selector("section[data-connector]", timeout=WITHIN_MS)
            cards = page.locator("section[data-connector]")
            assert await cards.count() == 6
            cookies = await page.context.cookies()
            session = next(c for c in cookies if c["name"] == "hedui_session")
            assert session["httpOnly"]
            assert session["secure"]
            assert token not in session["value"]

            bank = 'section[data-connector="bank"]'
            await page.wait_for_selector(f'{bank}[data-status="operational"]', timeout=WITHIN_MS)

            await http.put("/sandbox/faults/bank", json={"mode": "down"})
            await page.wait_for_selector(f'{bank}[data-status="down"]', timeout=WITHIN_MS)
            assert "health check failing" in await page.inner_text(f"{bank} .reason")
            await page.screenshot(path=str(artifacts / "dashboard-bank-down.png"), full_page=True)

            await http.delete("/sandbox/faults/bank")
            await page.wait_for_selector(f'{bank}[data-status="operational"]', timeout=WITHIN_MS)

            vehicles = 'section[data-connector="vehicles"]'
            await page.fill(f"{vehicles} input.reason-input", "partner maintenance 02:00-04:00")
            await page.click(f"{vehicles} button.toggle")
            await page.wait_for_selector(f"{vehicles} .badge.paused", timeout=WITHIN_MS)
            assert await page.inner_text(f"{vehicles} button.toggle") == "Resume"
            listed = await http.get("/v1/connectors", headers={"Authorization": f"Bearer {token}"})
            paused = next(c for c in listed.json() if c["name"] == "vehicles")["paused"]
            assert paused["paused_by"] == "ops-desk"
            assert paused["reason"] == "partner maintenance 02:00-04:00"
            await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)

            await page.fill(f"{vehicles} input.reason-input", "maintenance over")
            await page.click(f"{vehicles} button.toggle")
            await page.wait_for_selector(
                f"{vehicles} .badge.paused", state="detached", timeout=WITHIN_MS
            )
            listed = await http.get("/v1/connectors", headers={"Authorization": f"Bearer {token}"})
            assert next(c for c in listed.json() if c["name"] == "vehicles")["paused"] is None

            # A laptop screen: three cards a row, every title whole, nothing cut off.
            await page.set_viewport_size({"width": 1366, "height": 768})
            await page.click("button[data-range=day]")
            for width in (1366, 1024):
                await page.set_viewport_size({"width": width, "height": 768})
                cut = await page.evaluate(CUT_OFF_TEXT)
                assert cut == [], f"text cut off at {width} px: {cut}"
            await page.set_viewport_size({"width": 1366, "height": 768})
            tops = await page.eval_on_selector_all(
                "section[data-connector]", "cards => cards.map(c => c.offsetTop)"
            )
            assert tops.count(tops[0]) == 3
            await page.screenshot(path=str(artifacts / "dashboard-1366x768.png"))
        finally:
            await browser.close()
