"""The public portal: server-rendered zh-CN pages (httpx), and in headless Chromium (search,
open pages, keyboard, phone width, screenshots under test-artifacts/)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.disclosure.conftest import SOLE_ADDRESS, Province

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"


async def test_home_page(client: httpx.AsyncClient, published: Province) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in r.text
    assert 'name="viewport"' in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "<script" not in r.text and "style=" not in r.text
    assert "查询企业抽查信息" in r.text
    assert "2024年儿童用品抽查（测试）" in r.text  # recent draws
    assert "福州好孩子童车有限公司" in r.text  # latest results
    assert ">合格<" not in r.text


async def test_search_and_enterprise_page(client: httpx.AsyncClient, published: Province) -> None:
    r = await client.get("/search", params={"q": "童车"})
    assert r.status_code == 200
    assert f"/enterprises/{published.sole}" in r.text
    r = await client.get("/search", params={"q": published.sole})
    assert r.status_code == 303
    assert r.headers["location"] == f"/enterprises/{published.sole}"
    r = await client.get(f"/enterprises/{published.sole}")
    assert r.status_code == 200
    assert "鼓楼区小明童车店" in r.text
    assert "个体工商户经营者个人信息，不予公示" in r.text
    assert SOLE_ADDRESS not in r.text
    assert "不合格" in r.text and "经营异常名录" in r.text
    r = await client.get("/enterprises/91350100MA2YT0099X")
    assert r.status_code == 404
    assert "未找到该企业" in r.text
    assert (await client.get("/enterprises/x")).status_code == 422


async def test_results_page_with_filters(client: httpx.AsyncClient, published: Province) -> None:
    r = await client.get("/results", params={"conclusion": "pass"})
    assert r.status_code == 200
    assert "未发现不合格" in r.text
    assert "鼓楼区小明童车店" not in r.text
    r = await client.get("/results", params={"region": "bad"})
    assert r.status_code == 422
    assert 'role="alert"' in r.text
    items = (await client.get("/api/v1/public/results")).json()["items"]
    r = await client.get(f"/results/{items[0]['id']}")
    assert r.status_code == 200
    assert "检查人员" in r.text
    assert (await client.get("/results/abc")).status_code == 404


async def test_lists_draws_and_stats_pages(client: httpx.AsyncClient, published: Province) -> None:
    r = await client.get("/lists/serious")
    assert "厦门失信电器有限公司" in r.text and "厦门市市场监督管理局" in r.text
    r = await client.get("/lists/joint-punishment")
    assert "依法限制参加政府采购活动" in r.text
    assert (await client.get("/lists/nope")).status_code == 404
    r = await client.get(f"/draws/{published.plan_id}")
    assert r.status_code == 200
    assert "python verify_draw.py bundle.zip" in r.text
    assert f"/api/v1/public/draws/{published.plan_id}/bundle" in r.text
    assert "31415926535897932384" in r.text  # the public entropy
    assert (await client.get("/draws/999999")).status_code == 404
    r = await client.get("/stats", params={"target": "0.93"})
    assert r.status_code == 200
    assert "检验批次" in r.text and "/stats/chart.svg?" in r.text
    svg = await client.get("/stats/chart.svg", params={"target": "0.93"})
    assert svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.text)
    assert root.tag.endswith("svg")
    assert "儿童用品" in svg.text
    assert (await client.get("/stats", params={"target": "lots"})).status_code == 422
    assert (await client.get("/static/portal.css")).status_code == 200
    assert (await client.get("/static/../../etc/passwd")).status_code == 404
    r = await client.get("/downloads/verify_draw.py")
    assert r.status_code == 200 and b"QSDRAW-1" in r.content


# --- headless Chromium ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(own_database: str) -> Iterator[tuple[str, Province]]:
    """The app on a real port (uvicorn in a thread) over a committed database."""
    import uvicorn

    from qsampling.app import create_app
    from qsampling.config import Settings

    province: list[Province] = []

    async def _load() -> None:
        from datetime import UTC, datetime

        from qsampling.context import SYSTEM
        from qsampling.db import create_engine, make_sessionmaker
        from qsampling.disclosure import service
        from tests.disclosure.conftest import build_province

        eng = create_engine(own_database, pool_size=1, max_overflow=0)
        try:
            async with make_sessionmaker(eng)() as s:
                province.append(await build_province(s))
                await service.register_final_results(s, now=datetime.now(UTC), actor=SYSTEM)
                await s.commit()
        finally:
            await eng.dispose()

    t = threading.Thread(target=lambda: asyncio.run(_load()))
    t.start()
    t.join()
    settings = Settings(env="test", database_url=own_database, audit_seal_interval_seconds=0)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", province[0]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Python Playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium)")
    return sync_playwright


def _run_in_browser(fn: Any) -> None:
    """Playwright's sync API refuses to run inside an event loop: use a thread."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def test_portal_in_headless_chromium(served: tuple[str, Province]) -> None:
    base, province = served
    sync_playwright = _browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def scenario() -> None:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            try:
                errors: list[str] = []
                page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(base + "/")
                assert page.title().endswith("信息公示")
                page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)
                # keyboard only: the skip link comes first, then the search box works
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.textContent") == "跳到正文"
                page.fill("#q", "童车")
                page.keyboard.press("Enter")
                page.wait_for_url("**/search?q=*")
                page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)
                page.click("text=鼓楼区小明童车店")
                page.wait_for_url(f"**/enterprises/{province.sole}")
                assert "不予公示" in page.content()
                page.screenshot(path=str(ARTIFACTS / "enterprise.png"), full_page=True)
                page.goto(base + "/results?conclusion=fail")
                assert page.locator("tbody tr").count() == 1
                page.screenshot(path=str(ARTIFACTS / "results.png"), full_page=True)
                page.goto(base + f"/draws/{province.plan_id}")
                assert page.locator("code", has_text="31415926535897932384").count() == 1
                page.screenshot(path=str(ARTIFACTS / "draw.png"), full_page=True)
                page.goto(base + "/stats?target=0.93")
                img = page.locator("img.chart")
                img.wait_for()
                assert page.evaluate("document.querySelector('img.chart').naturalWidth") > 0
                page.screenshot(path=str(ARTIFACTS / "stats.png"), full_page=True)
                page.goto(base + "/lists/joint-punishment")
                page.screenshot(path=str(ARTIFACTS / "lists.png"), full_page=True)
                assert errors == [], errors  # e.g. CSP violations
                # a phone: nothing wider than the screen except scrollable tables
                phone = browser.new_page(
                    viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True
                )
                phone.goto(base + f"/enterprises/{province.company}")
                overflow = phone.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 1, overflow
                phone.screenshot(path=str(ARTIFACTS / "enterprise-phone.png"), full_page=True)
                phone.goto(base + "/")
                phone.screenshot(path=str(ARTIFACTS / "home-phone.png"), full_page=True)
            finally:
                browser.close()

    _run_in_browser(scenario)
    assert (ARTIFACTS / "home.png").stat().st_size > 1000
