"""Browser tests: the real service on 127.0.0.1 (the tiny model, a SQLite file) and Debian's
Chromium driven by Playwright. One browser for the session; every person in a test gets a
context of their own (tests/browser/pages.py).

Playwright's objects belong to the event loop that started them, so the browser, the service
and the tests here all run on the session's loop (`pages.BROWSER`).

Without Playwright the test modules skip as they import tests/browser/pages.py; without
Chromium the `chromium` fixture skips each test. So this file imports neither at its top: a
conftest cannot skip itself when it is named on the command line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.demo import DEMO_PASSWORD, seed
from bot.settings import Settings
from tests.helpers import Service

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from tests.browser.pages import Site

CHROMIUM = Path("/usr/bin/chromium")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; as root it runs only without its sandbox."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def service(settings: Settings) -> AsyncIterator[Service]:
    """The service as tests/conftest.py starts it, on the browser's event loop."""
    client = TestClient(TestServer(create_app(settings), port=settings.port))
    await client.start_server()
    try:
        await seed(settings)
        yield Service(client, settings, DEMO_PASSWORD)
    finally:
        await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def site(chromium: Browser, service: Service) -> AsyncIterator[Site]:
    """The browser before the service: without Chromium the test skips before it starts."""
    from tests.browser.pages import Site

    site = Site(service, chromium)
    yield site
    await site.close()
