"""The WeChat / WeCom clients against the fake server: tokens, retries, errors and limits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.channels.wechat_api import (
    GroupRobot,
    OfficialAccountApi,
    WecomApi,
    post_robot_response,
    truncate_utf8,
)
from bot.channels.wechat_errors import ApiUnavailable, RateLimited, WechatApiError, WindowClosed
from bot.channels.wechat_tokens import AccessTokenCache
from bot.core.clock import FakeClock
from tests.fake_wechat import (
    CUSTOM_SEND,
    EXTERNAL_GET,
    OA_TOKEN,
    RESPONSE_URL_INVALID,
    USER_GET,
    WEBHOOK_SEND,
    WECOM_SEND,
    WECOM_TOKEN,
    FakeWechat,
)

OPENID = "oAbCdEfGhIjKlMnOpQrStUvWx"
TEXT = "王师傅下午三点上门修水管"
START = datetime(2026, 11, 27, 2, tzinfo=UTC)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeWechat]:
    """The fake server on the test's `clock` (conftest), read as seconds."""
    users = {"zhangsan": "张三"}
    contacts = {"wmAbC123": "李阿姨"}

    def server_time() -> float:
        return clock.now().timestamp()

    async with FakeWechat(users=users, external_contacts=contacts, clock=server_time) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def oa_api(http: aiohttp.ClientSession, fake: FakeWechat, **options: Any) -> OfficialAccountApi:
    options.setdefault("backoff", 0.01)
    return OfficialAccountApi(http, fake.base_url, fake.appid, fake.secret, **options)


def wecom_api(http: aiohttp.ClientSession, fake: FakeWechat, **options: Any) -> WecomApi:
    options.setdefault("backoff", 0.01)
    return WecomApi(http, fake.base_url, fake.corpid, fake.corp_secret, fake.agentid, **options)


# Access tokens


async def test_one_token_serves_many_sends(http: aiohttp.ClientSession, fake: FakeWechat) -> None:
    api = oa_api(http, fake)
    for n in range(5):
        await api.send_text(OPENID, f"{TEXT} {n}")
    assert fake.token_requests == 1
    assert fake.sent_texts(OPENID) == [f"{TEXT} {n}" for n in range(5)]


async def test_concurrent_first_sends_share_one_token_request(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    api = oa_api(http, fake)
    await asyncio.gather(*(api.send_text(f"{OPENID}{n}", TEXT) for n in range(10)))
    assert fake.token_requests == 1
    assert len(fake.calls(OA_TOKEN)) == 1
    assert len(fake.sent_texts()) == 10


async def test_token_is_refreshed_shortly_before_it_expires(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    client_clock = FakeClock(START)
    api = oa_api(http, fake, clock=client_clock)
    await api.send_text(OPENID, "one")
    client_clock.advance(seconds=fake.token_ttl - 301)  # more than the 300 s margin left
    await api.send_text(OPENID, "two")
    assert fake.token_requests == 1
    client_clock.advance(seconds=2)  # now less than 300 s left
    await api.send_text(OPENID, "three")
    assert fake.token_requests == 2
    first, _, last = (call.query["access_token"] for call in fake.calls(CUSTOM_SEND))
    assert first != last
    assert fake.sent_texts() == ["one", "two", "three"]


async def test_a_refused_token_is_refreshed_and_the_message_sent_once(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.fail(CUSTOM_SEND, errcode=40001)
    await oa_api(http, fake).send_text(OPENID, TEXT)
    assert fake.token_requests == 2
    assert [call.errcode for call in fake.calls(CUSTOM_SEND)] == [40001, 0]
    assert fake.sent_texts() == [TEXT]


async def test_an_expired_token_is_refreshed_and_the_message_sent_once(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    api = oa_api(http, fake)
    await api.send_text(OPENID, "before")
    fake.expire_token()
    await api.send_text(OPENID, "after")
    assert fake.token_requests == 2
    assert [call.errcode for call in fake.calls(CUSTOM_SEND)] == [0, 42001, 0]
    assert fake.sent_texts() == ["before", "after"]


async def test_callers_refused_the_same_token_cause_one_refresh(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    api = oa_api(http, fake)
    await api.send_text(OPENID, "warm up")
    fake.expire_token(errcode=40001)
    await asyncio.gather(*(api.send_text(OPENID, f"n{n}") for n in range(5)))
    assert fake.token_requests == 2
    assert len(fake.sent_texts()) == 6


async def test_a_token_refused_on_every_try_gives_up(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.fail(CUSTOM_SEND, errcode=40001, times=10)
    with pytest.raises(WechatApiError) as caught:
        await oa_api(http, fake, attempts=3).send_text(OPENID, TEXT)
    assert caught.value.errcode == 40001
    assert len(fake.calls(CUSTOM_SEND)) == 3
    assert fake.sent_texts() == []


async def test_wrong_credentials_are_not_retried(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    api = OfficialAccountApi(http, fake.base_url, fake.appid, "wrong secret", backoff=0.01)
    with pytest.raises(WechatApiError) as caught:
        await api.send_text(OPENID, TEXT)
    assert caught.value.errcode == 40125
    assert "40125" in str(caught.value)
    assert len(fake.calls(OA_TOKEN)) == 1
    assert fake.calls(CUSTOM_SEND) == []


async def test_concurrent_callers_share_a_failed_refresh() -> None:
    fetches = 0

    async def failing_fetch() -> tuple[str, int]:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.01)
        raise WechatApiError(40125, "invalid appsecret")

    cache = AccessTokenCache(failing_fetch)
    results = await asyncio.gather(*(cache.get() for _ in range(5)), return_exceptions=True)
    assert fetches == 1
    assert all(isinstance(result, WechatApiError) for result in results)


async def test_a_failed_early_refresh_keeps_the_current_token() -> None:
    clock = FakeClock(START)
    answers: list[tuple[str, int] | Exception] = [("first", 7200), ApiUnavailable(-1, "down")]

    async def fetch() -> tuple[str, int]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cache = AccessTokenCache(fetch, clock=clock)
    assert await cache.get() == "first"
    clock.advance(seconds=7200 - 100)  # inside the refresh margin, not yet expired
    assert await cache.get() == "first"
    clock.advance(seconds=100)  # expired: nothing to fall back on
    answers.append(ApiUnavailable(-1, "still down"))
    with pytest.raises(ApiUnavailable):
        await cache.get()


async def test_fake_keeps_a_superseded_token_valid_for_a_grace_period(
    http: aiohttp.ClientSession, fake: FakeWechat, clock: FakeClock
) -> None:
    old_api, new_api = oa_api(http, fake), oa_api(http, fake)
    await old_api.send_text(OPENID, "old")
    await new_api.send_text(OPENID, "new")  # issues a second token
    old_token = fake.calls(CUSTOM_SEND)[0].query["access_token"]
    await old_api.send_text(OPENID, "old, within grace")
    clock.advance(seconds=fake.previous_token_grace)
    await old_api.send_text(OPENID, "old, refreshed")
    assert fake.calls(CUSTOM_SEND)[-2].query["access_token"] == old_token
    assert fake.calls(CUSTOM_SEND)[-2].errcode == 40001
    assert fake.token_requests == 3


# Business errors


@pytest.mark.parametrize(
    ("errcode", "error_class"),
    [
        (45015, WindowClosed),
        (45047, WindowClosed),
        (48001, WindowClosed),
        (45009, RateLimited),
        (40003, WechatApiError),
    ],
)
async def test_business_errors_are_raised_at_once(
    http: aiohttp.ClientSession, fake: FakeWechat, errcode: int, error_class: type
) -> None:
    fake.fail(CUSTOM_SEND, errcode=errcode)
    with pytest.raises(WechatApiError) as caught:
        await oa_api(http, fake).send_text(OPENID, TEXT)
    assert type(caught.value) is error_class
    assert caught.value.errcode == errcode
    assert len(fake.calls(CUSTOM_SEND)) == 1


async def test_a_closed_window_is_not_retried(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.closed_windows.add(OPENID)
    with pytest.raises(WindowClosed) as caught:
        await oa_api(http, fake).send_text(OPENID, TEXT)
    assert caught.value.errcode == 45015
    assert len(fake.calls(CUSTOM_SEND)) == 1
    assert fake.sent_texts() == []


async def test_a_used_up_quota_closes_the_window_until_the_person_writes(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.cs_quota = 2
    api = oa_api(http, fake)
    await api.send_text(OPENID, "1")
    await api.send_text(OPENID, "2")
    with pytest.raises(WindowClosed) as caught:
        await api.send_text(OPENID, "3")
    assert caught.value.errcode == 45047
    fake.user_wrote(OPENID)
    await api.send_text(OPENID, "4")
    assert fake.sent_texts() == ["1", "2", "4"]


async def test_bodies_are_utf8_json_without_escapes(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    await oa_api(http, fake).send_text(OPENID, TEXT)
    raw = fake.calls(CUSTOM_SEND)[0].raw
    assert TEXT.encode("utf-8") in raw
    assert b"\\u" not in raw


# Transport failures


async def test_server_errors_are_retried(http: aiohttp.ClientSession, fake: FakeWechat) -> None:
    fake.fail(CUSTOM_SEND, status=500, times=2)
    await oa_api(http, fake, attempts=3).send_text(OPENID, TEXT)
    assert [call.status for call in fake.calls(CUSTOM_SEND)] == [500, 500, 200]
    assert fake.sent_texts() == [TEXT]


async def test_server_errors_on_every_try_make_the_api_unavailable(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.fail(CUSTOM_SEND, status=500, times=3)
    with pytest.raises(ApiUnavailable) as caught:
        await oa_api(http, fake, attempts=3).send_text(OPENID, TEXT)
    assert caught.value.errcode == -1
    assert len(fake.calls(CUSTOM_SEND)) == 3
    assert fake.sent_texts() == []


async def test_a_token_endpoint_outage_counts_as_a_try(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.fail(OA_TOKEN, status=502)
    await oa_api(http, fake).send_text(OPENID, TEXT)
    assert len(fake.calls(OA_TOKEN)) == 2
    assert fake.sent_texts() == [TEXT]


async def test_a_slow_answer_is_retried_and_may_deliver_twice(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.fail(CUSTOM_SEND, delay=1.0)
    await oa_api(http, fake, timeout=0.2).send_text(OPENID, TEXT)
    assert len(fake.calls(CUSTOM_SEND)) == 2
    # The fake did the work before its answer was late, as a lost answer would: at least once.
    assert fake.sent_texts() == [TEXT, TEXT]


async def test_answers_slower_than_the_timeout_every_time_make_the_api_unavailable(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.delay[CUSTOM_SEND] = 1.0
    with pytest.raises(ApiUnavailable):
        await oa_api(http, fake, attempts=2, timeout=0.2).send_text(OPENID, TEXT)
    assert len(fake.calls(CUSTOM_SEND)) == 2


async def test_a_refused_connection_backs_off_then_gives_up(
    http: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    base_url = f"http://127.0.0.1:{unused_tcp_port}"
    api = OfficialAccountApi(http, base_url, "appid", "secret", sleep=sleep)
    with pytest.raises(ApiUnavailable):
        await api.send_text(OPENID, TEXT)
    assert pauses == [0.2, 0.4]


async def test_logs_hold_no_tokens_contents_or_full_ids(
    http: aiohttp.ClientSession, fake: FakeWechat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.channels")
    fake.fail(CUSTOM_SEND, errcode=40001)
    fake.fail(CUSTOM_SEND, status=503)
    api = oa_api(http, fake)
    await api.send_text(OPENID, TEXT)
    fake.closed_windows.add(OPENID)
    with pytest.raises(WindowClosed):
        await api.send_text(OPENID, TEXT)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot."))
    assert "refused" in logged and "HTTP 503" in logged and "45015" in logged
    tokens = {call.query["access_token"] for call in fake.calls(CUSTOM_SEND)}
    for secret in (*tokens, TEXT, OPENID, fake.secret):
        assert secret not in logged


# WeCom app


async def test_wecom_send_carries_the_agent_id(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    await wecom_api(http, fake).send_text("zhangsan", TEXT)
    assert fake.sent_texts("zhangsan") == [TEXT]
    assert fake.calls(WECOM_SEND)[0].body["agentid"] == fake.agentid
    assert len(fake.calls(WECOM_TOKEN)) == 1


async def test_wecom_refuses_a_wrong_agent_id(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    api = WecomApi(http, fake.base_url, fake.corpid, fake.corp_secret, agentid=1)
    with pytest.raises(WechatApiError) as caught:
        await api.send_text("zhangsan", TEXT)
    assert caught.value.errcode == 40056


async def test_wecom_unreachable_user_is_a_closed_window(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.unreachable.add("left-the-company")
    with pytest.raises(WindowClosed) as caught:
        await wecom_api(http, fake).send_text("left-the-company", TEXT)
    assert caught.value.errcode == 81013
    assert len(fake.calls(WECOM_SEND)) == 1


async def test_user_names_of_members_and_external_contacts(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    api = wecom_api(http, fake)
    assert await api.user_name("zhangsan") == "张三"
    assert await api.user_name("wmAbC123") == "李阿姨"
    assert await api.user_name("nobody") is None
    assert await api.user_name("woUnknown") is None
    assert [call.query.get("userid") for call in fake.calls(USER_GET)] == ["zhangsan", "nobody"]
    external = [call.query.get("external_userid") for call in fake.calls(EXTERNAL_GET)]
    assert external == ["wmAbC123", "woUnknown"]
    assert fake.token_requests == 1


async def test_wecom_token_errors_refresh_for_lookups_too(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    api = wecom_api(http, fake)
    assert await api.user_name("zhangsan") == "张三"
    fake.expire_token()
    assert await api.user_name("wmAbC123") == "李阿姨"
    assert fake.token_requests == 2


# Robots


async def test_a_robot_response_url_works_once(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    url = fake.response_url("code-1")
    await post_robot_response(http, url, "**王师傅**马上到")
    with pytest.raises(WechatApiError) as caught:
        await post_robot_response(http, url, "again")
    assert caught.value.errcode == RESPONSE_URL_INVALID
    assert [r.body["markdown"]["content"] for r in fake.robot_responses] == ["**王师傅**马上到"]


async def test_a_robot_response_url_expires_after_an_hour(
    http: aiohttp.ClientSession, fake: FakeWechat, clock: FakeClock
) -> None:
    url = fake.response_url()
    clock.advance(seconds=3600)
    with pytest.raises(WechatApiError) as caught:
        await post_robot_response(http, url, "late")
    assert caught.value.errcode == RESPONSE_URL_INVALID


def test_truncation_keeps_whole_characters() -> None:
    assert truncate_utf8("短", 4096) == "短"
    assert truncate_utf8("长" * 2000, 4096) == "长" * 1365  # 4095 bytes
    assert truncate_utf8("a" + "长" * 2000, 4096) == "a" + "长" * 1365  # exactly 4096
    assert truncate_utf8("🙂🙂", 7) == "🙂"


async def test_group_robot_cuts_markdown_to_4096_bytes(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    robot = GroupRobot(http, fake.base_url, fake.webhook_key)
    await robot.send_markdown("a" + "长" * 2000)
    sent = fake.webhook_messages[0].body["markdown"]["content"]
    assert sent == "a" + "长" * 1365
    assert len(sent.encode("utf-8")) == 4096


async def test_group_robot_retries_a_server_error(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    fake.fail(WEBHOOK_SEND, status=502)
    await GroupRobot(http, fake.base_url, fake.webhook_key, backoff=0.01).send_markdown("通知")
    assert len(fake.calls(WEBHOOK_SEND)) == 2
    assert len(fake.webhook_messages) == 1


async def test_the_21st_webhook_message_in_a_minute_is_rate_limited(
    http: aiohttp.ClientSession, fake: FakeWechat, clock: FakeClock
) -> None:
    robot = GroupRobot(http, fake.base_url, fake.webhook_key)
    for n in range(20):
        await robot.send_markdown(f"工单 {n}")
        clock.advance(seconds=1)
    with pytest.raises(RateLimited) as caught:
        await robot.send_markdown("工单 20")
    assert caught.value.errcode == 45009
    assert len(fake.calls(WEBHOOK_SEND)) == 21  # not retried
    clock.advance(seconds=41)  # the first message is a minute old now
    await robot.send_markdown("工单 20")
    assert len(fake.webhook_messages) == 21


async def test_a_wrong_webhook_key_is_an_api_error(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    with pytest.raises(WechatApiError) as caught:
        await GroupRobot(http, fake.base_url, "wrong").send_markdown("通知")
    assert caught.value.errcode == 93000


async def test_wait_for_sees_a_background_send(
    http: aiohttp.ClientSession, fake: FakeWechat
) -> None:
    task = asyncio.create_task(oa_api(http, fake).send_text(OPENID, TEXT))
    await fake.wait_for(lambda server: server.sent_texts() == [TEXT])
    await task
