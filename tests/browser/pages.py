"""The pages as the people who use them see them, in Chromium: a resident in the webchat, a
member (or the secretary) in the console, the operator in /ops. Each person opens a browser
context of their own, on a phone (360 px) or a laptop (1280 px).

Locators name what a person sees (labels, button words, the elements' ids); assertions use
Playwright's `expect`, which waits up to WAIT_MS for the page to get there."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

pytest.importorskip("playwright", reason="Playwright is not installed: make install")

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.conversation.messages import resident_in  # noqa: E402
from bot.core.chat import ChatRef  # noqa: E402
from bot.core.handoff import HandoffRequest, Origin  # noqa: E402
from bot.typedefs import sessions_key, tickets_key  # noqa: E402
from tests.helpers import WAIT_S, Service, request_reaches  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# Looked at by people after a run (var/ is git-ignored): one PNG per page and width.
SCREENSHOTS = ROOT / "var" / "screenshots"

PHONE = 360
LAPTOP = 1280
# What the field study asks of every text a resident reads (issue 16), and of what she taps.
RESIDENT_TEXT_PX = 18
TAP_PX = 48

# A resident's request in the webchat, and the member's answer.
LEAK = "3号楼2单元 厨房水管漏水了"
REPLY = "张阿姨您好，我十分钟后到，先把总阀关上。"
# A request that cannot wait.
FALL = "3号楼有老人摔倒了起不来"
# How sure the model is of an urgent reading it is unsure of (可能紧急): the one behind the
# issue, which paged five people.
DOUBTFUL = 0.39
# What the member leaves her when it is done; it reaches her with the rating question.
NOTE = "换了阀门，以后有事再找我"
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


# Every page counts the tones it plays (the console's alarm is made with the Web Audio API):
# a ringing console that makes no sound is no alarm.
_COUNT_TONES = """(() => {
  window.tonesPlayed = 0;
  const start = AudioScheduledSourceNode.prototype.start;
  AudioScheduledSourceNode.prototype.start = function (...args) {
    window.tonesPlayed += 1;
    return start.apply(this, args);
  };
})();"""

# What the console's service worker shows as system notifications now, as "title body".
_NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.getRegistration('/console/');
  const shown = registration ? await registration.getNotifications() : [];
  return shown.map((n) => n.title + ' ' + n.body);
}"""
# The console's service worker's scope once it is active, or null after WAIT_MS.
_WORKER_SCOPE = """async (wait) => {
  const timeout = new Promise((resolve) => setTimeout(resolve, wait));
  const registration = await Promise.race([navigator.serviceWorker.ready, timeout]);
  return registration ? registration.scope : null;
}"""


async def shot(page: Page, name: str) -> Path:
    """The whole page as it is now, as var/screenshots/NAME-WIDTH.png. Scrolled to the top
    first: a whole-page picture draws the sticky bars where the page was scrolled to, over
    whatever is there."""
    assert page.viewport_size
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{page.viewport_size['width']}.png"
    await page.evaluate("window.scrollTo({top: 0, behavior: 'instant'})")
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
        await self.give_name(name)
        await self.page.locator(".chat-item", has_text="社区小助手").click()
        await expect(self.page.locator("#view-chat")).to_be_visible()

    async def give_name(self, name: str) -> None:
        """On the page's first question: her name; then her list of chats."""
        await self.page.get_by_label("您的称呼").fill(name)
        await self.page.get_by_role("button", name="好的，进入聊天").click()
        await expect(self.page.locator("#chat-list")).to_be_visible()

    async def say(self, text: str) -> None:
        await self.page.get_by_label("输入消息").fill(text)
        await self.page.get_by_role("button", name="发送", exact=True).click()

    def message(self, text: str) -> Locator:
        """The bubble row (name, text, time) of a message containing `text`."""
        return self.page.locator("#messages .msg", has_text=text)

    async def back_to_list(self) -> None:
        await self.page.get_by_role("button", name="返回聊天列表").click()
        await expect(self.page.locator("#chat-list")).to_be_visible()

    @property
    def rating_choices(self) -> Locator:
        """满意 / 一般 / 不满意 under the question, while it waits for her answer."""
        return self.page.locator("#rating-choices")


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

    async def resolve(self, note: str) -> None:
        """标记为已解决, with a word for the resident."""
        await self.page.get_by_role("button", name="标记为已解决").click()
        await self.page.get_by_label("给居民留句话（可不填）").fill(note)
        await self.page.get_by_role("button", name="确认已解决").click()
        await expect(self.page.locator("#resolve-form")).to_be_hidden()

    async def search(self, words: str) -> None:
        """The list narrowed to tickets whose request has `words` (筛选和搜索)."""
        filters = self.page.locator("#filter-box")
        if await filters.get_attribute("open") is None:
            await filters.get_by_text("筛选和搜索").click()
        await self.page.get_by_label("搜索求助内容").fill(words)
        await self.page.get_by_role("button", name="查找").click()

    async def merge_choices(self) -> Locator:
        """和别的工单是同一件事: the tickets the open one may join, to pick from."""
        await self.page.get_by_role("button", name="和别的工单是同一件事").click()
        return self.page.locator("#merge-tickets .member-option")

    def info(self, label: str) -> Locator:
        """A row of the open ticket's details (居民, 处理说明, 居民评价 …), by its label."""
        return self.page.locator("#ticket-info .info-row", has_text=label)

    @property
    def urgent_banner(self) -> Locator:
        """The red banner of an urgent request; data-ringing="1" while the alarm rings."""
        return self.page.locator("#urgent-banner")

    @property
    def ok_note(self) -> Locator:
        """The short green line after something worked."""
        return self.page.locator("#ok-banner")

    async def turn_on_alarms(self) -> None:
        """开启紧急提醒, and yes to the browser's question whether the console may show
        notifications: Playwright cannot answer that question, so the test grants the
        permission just before the tap, as the member would while it is asked."""
        await self.page.context.grant_permissions(["notifications"])
        await self.page.get_by_role("button", name="开启紧急提醒").click()
        await expect(self.ok_note).to_have_text("紧急提醒已开启：有紧急求助时会响铃并弹出通知。")

    async def worker_scope(self) -> str | None:
        """Where the console's service worker serves, once it is active."""
        return await self.page.evaluate(_WORKER_SCOPE, WAIT_MS)

    async def tones_played(self) -> int:
        return await self.page.evaluate("window.tonesPlayed")

    async def notifications(self) -> list[str]:
        """The system notifications the console shows now, as "title body"."""
        return await self.page.evaluate(_NOTIFICATIONS)

    async def notification_shown(self, text: str, shown: bool = True) -> None:
        """Until a system notification reads `text` ("title body"), or with `shown=False`
        until none does. Polled from here: `wait_for_function` takes a promise for true."""
        deadline = time.monotonic() + WAIT_S
        while (text in (now := await self.notifications())) != shown:
            assert time.monotonic() < deadline, f"{text!r} {'not ' if shown else ''}in {now}"
            await asyncio.sleep(0.1)


@dataclass
class Overview:
    """The secretary's overview (/console/overview)."""

    page: Page

    def figure(self, label: str) -> Locator:
        """One of the figures on top (居民满意, 现在在办 …), with its value and its note."""
        return self.page.locator("#overview-figures .figure", has_text=label)

    async def download_csv(self) -> bytes:
        """What 下载表格 saves."""
        async with self.page.expect_download() as download:
            await self.page.get_by_role("button", name="下载表格（Excel 能打开）").click()
        return Path(await (await download.value).path()).read_bytes()


@dataclass
class Site:
    """The running service and the session's browser. Each person gets a context of their
    own (cookies, storage, screen size), closed after the test."""

    service: Service
    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    # The service started again, and other workers beside it.
    servers: list[TestClient] = field(default_factory=list)

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
        await context.add_init_script(_COUNT_TONES)
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
        await self.handle(token, body["tickets"][0]["id"], claim={}, reply={"text": REPLY})
        await expect(resident.message(REPLY)).to_be_visible()
        return resident

    async def rated_request(self, rating: str = "满意") -> None:
        """张阿姨's LEAK, answered and resolved by 王建国 and rated `rating` by her, all
        without a browser: for pages that show what came of it."""
        chat = await self.service.resident("张阿姨")
        token, ticket = await request_reaches(self.service, chat, LEAK)
        steps = {"claim": {}, "reply": {"text": REPLY}, "resolve": {"note": NOTE}}
        await self.handle(token, ticket["id"], **steps)
        await chat.say(rating)
        await self.service.settle()

    async def requests(self, *lines: tuple[str, str]) -> None:
        """Residents' requests to 王建国, each (name, words), written without a browser."""
        for name, text in lines:
            await request_reaches(self.service, await self.service.resident(name), text)

    async def handle(self, token: str, ticket: int, **actions: dict[str, str]) -> None:
        """A member acts on a ticket through the API, in the order given (claim, reply …)."""
        for action, data in actions.items():
            status, _ = await self.service.api(
                "POST", f"/api/tickets/{ticket}/{action}", token, json=data
            )
            assert status == 200, action

    async def console(self, name: str, width: int = LAPTOP, path: str = "/console/") -> Console:
        """Someone logged in to the console (or, with `path`, the operators' pages)."""
        console = Console(await self.page(width))
        await console.login(name, self.service.password, path)
        return console

    async def overview(self, width: int = LAPTOP) -> Overview:
        """The secretary, 陈红梅, on her overview: logged in to the console, then 概况."""
        secretary = await self.console("陈红梅", width)
        await secretary.page.get_by_role("link", name="概况").click()
        await expect(secretary.page.locator("#overview-scope")).to_contain_text("件求助")
        return Overview(secretary.page)

    async def doubtful_request(self, name: str, text: str) -> int:
        """A resident's request the model read as urgent at DOUBTFUL (可能紧急), opened where
        the dialogue opens it: which text the tiny test model reads as urgent below the
        threshold changes with every retraining."""
        app = self.service.client.app
        chat = ChatRef("webchat", "private", f"doubt-{name}", f"doubt-{name}")
        async with app[sessions_key]() as session, session.begin():
            resident = await resident_in(session, chat, name)
        origin = Origin(chat, resident.id, name)
        request = HandoffRequest(chat.conversation_id, "urgent", DOUBTFUL, text, origin)
        return (await app[tickets_key].opening.open_ticket(request)).ticket_id

    async def stop(self) -> None:
        """The service stops as for a restart: the server's shutdown, which `python -m bot
        serve` runs on SIGTERM, closes every console's and webchat's socket at once."""
        await self.service.client.server.close()

    async def start_again(self) -> None:
        """A new service on the old one's port and database, knowing nothing the old one
        kept in memory."""
        self.service = await self._serve(self.service.settings.port)

    async def other_worker(self) -> Service:
        """Another service on the same database, on a port of its own."""
        return await self._serve(0)

    async def _serve(self, port: int) -> Service:
        client = TestClient(TestServer(create_app(self.service.settings), port=port))
        await client.start_server()
        self.servers.append(client)
        return Service(client, self.service.settings, self.service.password)

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()
        for server in self.servers:
            await server.close()
