"""The dashboard in a real headless Chromium: sign in, watch the bank go down and come back,
pause and resume from the page. Leaves screenshots in `test-artifacts/` (or
$HEDUI_TEST_ARTIFACTS) for people to look at.

The browser is Debian's `chromium` (`make test` installs it when missing). Without one the
test is skipped with a message, except in CI (CI=true), where that is a failure.
"""

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from tests.conftest import (
    CLIENT_TLS,
    LiveService,
    MigratedTemplates,
    running_service,
    service_settings,
)
from tests.factories import make_id_number, member, verification_body

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
    "section[data-connector] h2, .chart-title, .stat, .pill, .sub .name, .badge, .errors li")]
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


@dataclass
class Desk:
    live: LiveService
    token: str
    """An operator's."""
    caseworker: str


@pytest.fixture
async def service(migrated_templates: MigratedTemplates, tmp_path: Path) -> AsyncIterator[Desk]:
    """On SQLite alone, `make run`'s database: what the page shows is read through the
    same endpoints on either database, and those are tested on both
    (tests/integration/test_connector_health.py, tests/e2e/test_dashboard.py); a browser
    run costs 25 s."""
    (tmp_path / "db").mkdir()
    fresh_database_url, _ = await migrated_templates.copy("sqlite", tmp_path / "db")
    engine = create_engine(fresh_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.operator, region="00", name="ops-desk")
        _, caseworker = await create_api_key(session, role=Role.caseworker, region="00")
        await session.commit()
    await engine.dispose()
    settings = service_settings(
        fresh_database_url,
        tmp_path / "sandbox.db",
        # Probes at their default interval (60 s): the status must follow the real calls
        # and the breaker, not wait for the next probe.
        health_sync_s=0.1,
        breaker_open_s=1.0,
        dashboard_refresh_s=0.5,
    )
    assert settings.health_probe_interval_s == 60
    async with running_service(settings) as live:
        yield Desk(live, token, caseworker)
        async with httpx.AsyncClient(base_url=live.base_url, verify=CLIENT_TLS) as plain:
            await plain.delete("/sandbox/faults/bank")


async def verify(http: httpx.AsyncClient, caseworker: str) -> dict[str, Any]:
    """One verification of a household the sandbox knows, as a case worker submits it."""
    person = make_id_number("530103", birth="19770707")
    seeded = await http.post("/sandbox/people", json={"id_number": person})
    assert seeded.status_code == 200
    response = await http.post(
        "/v1/verifications",
        json=verification_body([member(person)], region_code="530103"),
        headers={"Authorization": f"Bearer {caseworker}", "Prefer": "wait=20"},
    )
    assert response.status_code == 200, response.text
    verification: dict[str, Any] = response.json()
    return verification


async def test_operator_watches_the_bank_go_down_and_come_back_and_pauses_a_source(
    service: Desk, artifacts: Path
) -> None:
    async_playwright = _browser_or_skip()
    live, token = service.live, service.token
    # localhost, not 127.0.0.1: browsers keep Secure cookies on plain HTTP for localhost only.
    page_url = live.base_url.replace("127.0.0.1", "localhost") + "/dashboard"
    async with (
        async_playwright() as playwright,
        httpx.AsyncClient(base_url=live.base_url, timeout=30, verify=CLIENT_TLS) as http,
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
            # Operational on its health check alone: no rate of no calls.
            assert await success_stat(page, bank) == ("—", "no calls yet")

            # The bank goes down; a case worker's verification meets it, long before the
            # next scheduled probe: the failed call has the bank probed at once.
            await http.put("/sandbox/faults/bank", json={"mode": "down"})
            failed = await verify(http, service.caseworker)
            bank_source = next(s for s in failed["sources"] if s["source"] == "bank")
            assert (bank_source["status"], failed["recommendation"]) == ("error", "review")
            await page.wait_for_selector(f'{bank}[data-status="down"]', timeout=WITHIN_MS)
            assert "health check failing" in await page.inner_text(f"{bank} .reason")
            # The failing check says why: it may be the only sign there is.
            assert "HTTP 503" in await page.inner_text(f"{bank} .badge.probe")
            assert await status_metric(http, "bank") == "down"  # `curl /metrics` agrees
            assert await success_stat(page, bank) == ("0 of 1", "calls ok")  # too few for a rate
            await page.screenshot(path=str(artifacts / "dashboard-bank-down.png"), full_page=True)

            # Mended: the failing check is repeated early, with no traffic needed.
            await http.delete("/sandbox/faults/bank")
            await page.wait_for_selector(f'{bank}[data-status="operational"]', timeout=WITHIN_MS)
            assert await status_metric(http, "bank") == "operational"

            vehicles = 'section[data-connector="vehicles"]'
            await page.fill(f"{vehicles} input.reason-input", "partner maintenance 02:00-04:00")
            await page.click(f"{vehicles} button.toggle")
            await page.wait_for_selector(f"{vehicles} .badge.paused", timeout=WITHIN_MS)
            assert await page.inner_text(f"{vehicles} button.toggle") == "Resume"
            assert await page.get_attribute(f"{vehicles} button.toggle", "class") == "toggle resume"
            held = await page.inner_text(f"{vehicles} .badge.paused")
            assert re.fullmatch(
                r"paused by ops-desk at \d\d:\d\d:\d\d: partner maintenance 02:00-04:00", held
            ), held
            listed = await http.get("/v1/connectors", headers={"Authorization": f"Bearer {token}"})
            paused = next(c for c in listed.json() if c["name"] == "vehicles")["paused"]
            assert paused["paused_by"] == "ops-desk"
            assert paused["reason"] == "partner maintenance 02:00-04:00"
            # Counted as paused, not among the operational ones, whatever its last health.
            chip = "#summary .chip.paused"
            await page.wait_for_selector(chip, timeout=WITHIN_MS)
            assert await page.inner_text(chip) == "1 paused"
            await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)

            await page.fill(f"{vehicles} input.reason-input", "maintenance over")
            await page.click(f"{vehicles} button.toggle")
            await page.wait_for_selector(
                f"{vehicles} .badge.paused", state="detached", timeout=WITHIN_MS
            )
            await page.wait_for_selector(chip, state="detached", timeout=WITHIN_MS)
            listed = await http.get("/v1/connectors", headers={"Authorization": f"Bearer {token}"})
            assert next(c for c in listed.json() if c["name"] == "vehicles")["paused"] is None

            # A refresh that fails greys the cards out under a banner saying so, until the
            # next one succeeds.
            await page.route("**/dashboard/data", lambda route: route.abort())
            await page.wait_for_selector("#stale.shown", timeout=WITHIN_MS)
            assert "cannot reach hedui" in await page.inner_text("#stale")
            assert await page.get_attribute("#grid", "class") == "grid stale"
            await page.screenshot(path=str(artifacts / "dashboard-stale.png"), full_page=True)
            await page.unroute("**/dashboard/data")
            await page.wait_for_selector("#stale.shown", state="detached", timeout=WITHIN_MS)
            assert await page.get_attribute("#grid", "class") == "grid"

            # Each chart has a time axis: when it starts, its middle, now; the day's starts
            # a day back, the hour's an hour back.
            hour_axis = await chart_axes(page, bank)
            await page.click("button[data-range=day]")
            day_axis = await chart_axes(page, bank)
            for axes in (hour_axis, day_axis):
                assert len(axes) == 2, axes  # latency and errors, the same times
                assert axes[0] == axes[1], axes
                start, middle, now = axes[0]
                assert re.fullmatch(r"\d\d:\d\d", start), axes
                assert re.fullmatch(r"\d\d:\d\d", middle), axes
                assert now == "now", axes
            assert minutes_between(day_axis[0][0], hour_axis[0][0]) in range(22 * 60, 24 * 60), (
                day_axis,
                hour_axis,
            )
            assert minutes_between(hour_axis[0][0], hour_axis[0][1]) in range(25, 35), hour_axis

            # Laptop screens: three cards a row, every title whole, nothing cut off.
            for width, height in ((1366, 768), (1280, 800), (1024, 768)):
                await page.set_viewport_size({"width": width, "height": height})
                cut = await page.evaluate(CUT_OFF_TEXT)
                assert cut == [], f"text cut off at {width} px: {cut}"
                if width >= 1280:
                    tops = await page.eval_on_selector_all(
                        "section[data-connector]", "cards => cards.map(c => c.offsetTop)"
                    )
                    assert tops.count(tops[0]) == 3, f"not three cards a row at {width} px"
                    await page.screenshot(path=str(artifacts / f"dashboard-{width}x{height}.png"))
            # A phone: nothing runs past the screen's edge.
            await page.set_viewport_size({"width": 360, "height": 780})
            wide = await page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 360, f"the page is {wide} px wide on a 360 px screen"
            await page.screenshot(path=str(artifacts / "dashboard-360.png"), full_page=True)
        finally:
            await browser.close()


async def chart_axes(page: Any, card: str) -> list[list[str]]:
    """The time axis under each of a card's charts, its labels left to right."""
    axes: list[list[str]] = await page.eval_on_selector_all(
        f"{card} .chart-axis",
        "axes => axes.map(a => [...a.children].map(s => s.textContent))",
    )
    return axes


def minutes_between(earlier: str, later: str) -> int:
    """Minutes from one HH:MM to the next time the clock shows another (across midnight)."""
    (h1, m1), (h2, m2) = (map(int, t.split(":")) for t in (earlier, later))
    return ((h2 * 60 + m2) - (h1 * 60 + m1)) % (24 * 60)


async def status_metric(http: httpx.AsyncClient, connector: str) -> str:
    """The status `hedui_connector_status` gives a connector (its series at 1)."""
    text = (await http.get("/metrics")).text
    pattern = rf'hedui_connector_status\{{connector="{connector}",status="(\w+)"\}} 1\.0'
    [status] = re.findall(pattern, text)
    return str(status)


async def success_stat(page: Any, card: str) -> tuple[str, str]:
    """The first figure of a card and its label."""
    figure = await page.inner_text(f"{card} .stat b >> nth=0")
    label = await page.inner_text(f"{card} .stat small >> nth=0")
    return figure, label
