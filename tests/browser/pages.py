"""The pages as the people who use them see them, in Chromium: a resident in the webchat, a
member (or the secretary) in the console, the operator in /ops. Each person opens a browser
context of their own, on a phone (360 px) or a laptop (1280 px).

Locators name what a person sees (labels, button words, the elements' ids); assertions use
Playwright's `expect`, which waits up to WAIT_MS for the page to get there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="Playwright is not installed: make install")

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect  # noqa: E402

from tests.helpers import WAIT_S, Service  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# Looked at by people after a run (var/ is git-ignored): one PNG per page and width.
SCREENSHOTS = ROOT / "var" / "screenshots"

PHONE = 360
LAPTOP = 1280

# A resident's request in the webchat, and the member's answer.
LEAK = "3号楼2单元 厨房水管漏水了"
REPLY = "张阿姨您好，我十分钟后到，先把总阀关上。"
WAIT_MS = WAIT_S * 1000
expect.set_options(timeout=WAIT_MS)

# Every browser test module: `pytestmark = BROWSER`. Their service and the one browser share
# the session's event loop; `make test-pg` leaves them out (tests/conftest.py).
BROWSER = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Elements wider than the screen, when the page scrolls sideways (or nothing when it fits).
# The screen is the layout viewport (clientWidth): a phone's innerWidth grows with the page.
_WIDER_THAN_SCREEN = """() => {
  const screen = document.documentElement.clientWidth;
  if (document.scrollingElement.scrollWidth <= screen) return [];
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    [...e.classList].map((c) => '.' + c).join('');
  const wide = [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > screen + 0.5).map(name);
  const whole = 'the document, ' + document.scrollingElement.scrollWidth + ' px';
  return wide.length ? wide.slice(0, 5) : [whole];
}"""

# Visible text in `roots` and their children set in less than `min` px, as "text: size".
_TEXT_SMALLER_THAN = """(roots, min) => {
  const out = [];
  for (const e of roots.flatMap((root) => [root, ...root.querySelectorAll('*')])) {
    const own = [...e.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE)
      .map((n) => n.textContent.trim()).join('');
    const box = e.getBoundingClientRect();
    if (!own || box.width <= 1 || box.height <= 1 || !e.checkVisibility()) continue;
    const size = parseFloat(getComputedStyle(e).fontSize);
    if (size < min) out.push(own.slice(0, 12) + ': ' + size + ' px');
  }
  return out;
}"""


async def shot(page: Page, name: str) -> Path:
    """The whole page as it is now, as var/screenshots/NAME-WIDTH.png."""
    assert page.viewport_size
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{page.viewport_size['width']}.png"
    await page.screenshot(path=path, full_page=True)
    return path


async def wider_than_screen(page: Page) -> list[str]:
    """What makes the page scroll sideways: [] when it fits its screen."""
    return await page.evaluate(_WIDER_THAN_SCREEN)


async def text_smaller_than(page: Page, px: float, within: str = "body") -> list[str]:
    """Visible text in the elements `within` selects whose computed size is below `px`."""
    return await page.locator(within).evaluate_all(_TEXT_SMALLER_THAN, px)


@dataclass
class Resident:
    """A resident in the webchat's private chat with the assistant."""

    page: Page

    async def enter(self, name: str) -> None:
        """Open the page, give a name, and open the private chat."""
        await self.page.goto("/webchat/")
        await self.page.get_by_label("您的称呼").fill(name)
        await self.page.get_by_role("button", name="好的，进入聊天").click()
        await self.page.locator(".chat-item", has_text="社区小助手").click()
        await expect(self.page.locator("#view-chat")).to_be_visible()

    async def say(self, text: str) -> None:
        await self.page.get_by_label("输入消息").fill(text)
        await self.page.get_by_role("button", name="发送", exact=True).click()

    def message(self, text: str) -> Locator:
        """The bubble row (name, text, time) of a message containing `text`."""
        return self.page.locator("#messages .msg", has_text=text)

    async def back_to_list(self) -> None:
        await self.page.get_by_role("button", name="返回聊天列表").click()
        await expect(self.page.locator("#chat-list")).to_be_visible()


@dataclass
class Console:
    """A member, the secretary or the operator, logged in to the console (or /ops)."""

    page: Page

    async def login(self, name: str, password: str, path: str = "/console/") -> None:
        await self.page.goto(path)
        await self.page.get_by_label("姓名").fill(name)
        await self.page.get_by_label("密码").fill(password)
        await self.page.get_by_role("button", name="登录").click()
        await expect(self.page.locator("#me-name")).to_contain_text(name)

    def card(self, text: str) -> Locator:
        """A ticket's card in the list, found by the resident's words."""
        return self.page.locator(".ticket-card", has_text=text)

    async def open_ticket(self, text: str) -> None:
        await self.card(text).click()
        await expect(self.page.locator("#view-ticket")).to_be_visible()
        await expect(self.page.locator("#ticket-info")).to_contain_text(text)

    async def claim(self) -> None:
        await self.page.locator("#claim").click()
        await expect(self.page.locator("#claim")).to_be_hidden()

    async def reply(self, text: str) -> None:
        await self.page.get_by_label("回复居民").fill(text)
        await self.page.get_by_role("button", name="发送回复").click()
        await expect(self.page.locator("#ticket-messages .msg", has_text=text)).to_be_visible()

    @property
    def urgent_banner(self) -> Locator:
        return self.page.locator("#urgent-banner")


@dataclass
class Site:
    """The running service and the session's browser. Each person gets a context of their
    own (cookies, storage, screen size), closed after the test."""

    service: Service
    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)

    async def page(self, width: int) -> Page:
        """A new person's page, `width` px wide: up to PHONE a phone (touch, two pixels to
        the px), else a laptop."""
        phone = width <= PHONE
        context = await self.browser.new_context(
            base_url=str(self.service.client.make_url("/")),
            viewport={"width": width, "height": 740 if phone else 800},
            device_scale_factor=2 if phone else 1,
            is_mobile=phone,
            has_touch=phone,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        context.set_default_timeout(WAIT_MS)
        self.contexts.append(context)
        return await context.new_page()

    async def resident(self, name: str, width: int = PHONE) -> Resident:
        """A resident in the private chat, ready to write."""
        resident = Resident(await self.page(width))
        await resident.enter(name)
        return resident

    async def answered_resident(self, width: int = PHONE) -> Resident:
        """张阿姨 on her page, once 王建国 claimed her LEAK and answered REPLY (through the
        API: the console's side is tested elsewhere)."""
        resident = await self.resident("张阿姨", width)
        await resident.say(LEAK)
        await expect(resident.message("已请3号楼网格员王建国")).to_be_visible()
        token = await self.service.login("王建国")
        _, body = await self.service.api("GET", "/api/tickets?status=open", token)
        ticket = body["tickets"][0]["id"]
        for action, data in (("claim", {}), ("reply", {"text": REPLY})):
            status, _ = await self.service.api(
                "POST", f"/api/tickets/{ticket}/{action}", token, json=data
            )
            assert status == 200, action
        await expect(resident.message(REPLY)).to_be_visible()
        return resident

    async def console(self, name: str, width: int = LAPTOP, path: str = "/console/") -> Console:
        """Someone logged in to the console (or, with `path`, the operators' pages)."""
        console = Console(await self.page(width))
        await console.login(name, self.service.password, path)
        return console

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()
