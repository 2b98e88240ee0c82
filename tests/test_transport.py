"""The Bot API over aiohttp (quickresponse/telegram/transport.py), against the fake Bot API over
real HTTP: what is sent arrives as sent, and every failure comes back as PTB's own error."""

from __future__ import annotations

import asyncio
import json
import socket
import warnings
from datetime import timedelta

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter
from telegram.warnings import PTBDeprecationWarning

from quickresponse.telegram.transport import CHUNK, AiohttpRequest, _encode
from tests.alert_helpers import CHAOYANG, FakeTime, add_residents, alert_service, send_now
from tests.fake_bot_server import FakeBotServer
from tests.fakebot import TOKEN, bad_request, forbidden, message_update, retry_after

CHAT = 4242
WARNING = "<b>暴雨橙色预警</b> Rainstorm orange warning: stay indoors & away from rivers."


@pytest.fixture
async def server():
    fake = FakeBotServer()
    await fake.start()
    yield fake
    await fake.stop()


def bot_for(server: FakeBotServer, request: AiohttpRequest | None = None,
            token: str = TOKEN) -> Bot:
    return Bot(token, base_url=f"{server.url}/bot", request=request or AiohttpRequest())


async def test_a_message_arrives_as_sent_and_comes_back_as_a_message(server):
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("已安全 Safe", callback_data="s:1")]])
    async with bot_for(server) as bot:
        message = await bot.send_message(CHAT, WARNING, parse_mode="HTML",
                                          reply_markup=keyboard)

    call = server.api.last("sendMessage", CHAT)
    assert call.text == WARNING
    assert call.params["parse_mode"] == "HTML"
    assert call.buttons == [("已安全 Safe", "s:1")]
    assert message.chat.id == CHAT and message.text == WARNING
    assert message.message_id > 0


async def test_a_photo_is_uploaded_with_its_caption(server):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    async with bot_for(server) as bot:
        message = await bot.send_photo(CHAT, InputFile(png, filename="stats.png"),
                                       caption="本周统计 This week")

    call = server.api.last("sendPhoto", CHAT)
    assert call.files["photo"] == ("stats.png", png)
    assert call.text == "本周统计 This week"
    assert message.photo, "the answer is parsed into a Message with its photo"


async def test_an_upload_larger_than_one_piece_arrives_whole(server):
    xml = b"<alert>" + b"x" * (5 * CHUNK + 123) + b"</alert>"
    # A short write timeout: each piece must go out within it, not the whole upload.
    async with bot_for(server, AiohttpRequest(media_write_timeout=2.0)) as bot:
        await bot.send_document(CHAT, InputFile(xml, filename="alert-7.cap.xml"))

    assert server.api.last("sendDocument", CHAT).files["document"] == ("alert-7.cap.xml", xml)


async def test_a_slow_answer_to_a_large_upload_is_held_to_the_read_timeout_not_the_write_one(
        server):
    server.api.delay = 0.5
    request = AiohttpRequest(media_write_timeout=0.1, read_timeout=5.0)
    async with bot_for(server, request) as bot:
        await bot.send_document(CHAT, InputFile(b"y" * (3 * CHUNK), filename="big.xml"))

    assert server.api.last("sendDocument", CHAT).files["document"][1] == b"y" * (3 * CHUNK)


@pytest.mark.parametrize(("answer", "error", "words"), [
    (bad_request("Bad Request: chat not found"), BadRequest, "Chat not found"),
    (forbidden(), Forbidden, "bot was blocked by the user"),
    ((500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}),
     NetworkError, "Internal Server Error"),
])
async def test_bot_api_errors_raise_the_matching_telegram_error(server, answer, error, words):
    server.api.failures.append(lambda call: answer if call.method == "sendMessage" else None)
    async with bot_for(server) as bot:
        with pytest.raises(error, match=words):
            await bot.send_message(CHAT, WARNING)


async def test_a_wrong_token_raises_invalid_token(server):
    with pytest.raises(InvalidToken):
        async with bot_for(server, token="42:not-the-token"):
            pass


async def test_flood_control_raises_retry_after_with_the_wait_telegram_asked_for(server):
    server.api.failures.append(lambda call: retry_after(7) if call.method == "sendMessage"
                               else None)
    async with bot_for(server) as bot:
        with pytest.raises(RetryAfter) as raised:
            await bot.send_message(CHAT, WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        wait = raised.value.retry_after
    assert (wait.total_seconds() if isinstance(wait, timedelta) else wait) == 7


async def test_an_answer_slower_than_the_read_timeout_raises_timed_out_and_the_next_call_works(
        server):
    async with bot_for(server, AiohttpRequest(read_timeout=0.2)) as bot:
        server.api.delay = 1.0
        with pytest.raises(TimedOut):
            await bot.send_message(CHAT, "slow")
        # A timeout given for one call wins over the request's default.
        with pytest.raises(TimedOut):
            await bot.send_message(CHAT, "slow too", read_timeout=0.1)
        server.api.delay = 0.0
        await bot.send_message(CHAT, "fast")

    assert server.api.texts(CHAT)[-1] == "fast"


async def test_no_free_connection_within_the_pool_timeout_raises_timed_out_unsent(server):
    server.api.delay = 0.5
    request = AiohttpRequest(connection_pool_size=1, pool_timeout=0.05)
    async with bot_for(server, request) as bot:
        first = asyncio.create_task(bot.send_message(CHAT, "first"))
        await asyncio.sleep(0.1)  # the first holds the one connection
        with pytest.raises(TimedOut, match="Pool timeout"):
            await bot.send_message(CHAT, "second")
        await first

    assert server.api.texts(CHAT) == ["first"]


async def test_a_body_the_server_stops_taking_raises_timed_out_after_the_write_timeout():
    # A server that never accepts: the kernel takes what fits in the buffers, then nothing.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    request = AiohttpRequest(media_write_timeout=0.3)
    # Not initialised (that would ask this server getMe): only the request is.
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/bot",
              request=request)
    await request.initialize()
    try:
        # The guard only keeps a broken timeout from hanging the run.
        async with asyncio.timeout(60):
            with pytest.raises(TimedOut):
                await bot.send_document(CHAT, InputFile(b"z" * 32 * 2**20, filename="huge.bin"))
    finally:
        await request.shutdown()
        listener.close()


async def test_an_unreachable_bot_api_raises_network_error_without_the_token():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    request = AiohttpRequest()
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=request)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(CHAT, WARNING)
    finally:
        await request.shutdown()

    assert not isinstance(raised.value, TimedOut)
    assert TOKEN.split(":")[1] not in str(raised.value)


async def test_long_polling_gets_the_updates_waiting(server):
    waiting = message_update(None, "你好", user_id=CHAT)
    server.push_update(waiting.to_dict())
    async with bot_for(server, AiohttpRequest(connection_pool_size=1)) as bot:
        updates = await bot.get_updates(timeout=1)

    assert [u.update_id for u in updates] == [waiting.update_id]
    assert updates[0].message is not None and updates[0].message.text == "你好"


@pytest.fixture
def settings(settings, server):  # type: ignore[no-untyped-def]
    """The test settings, with the Bot API at the fake server (QR_TELEGRAM_API_URL)."""
    return settings.model_copy(update={"telegram_api_url": server.url})


async def test_a_broadcast_through_the_production_application_reaches_everyone_once(
        services, server):
    from quickresponse.telegram.app import build_application
    from quickresponse.telegram.sender import TelegramSender

    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(3001, 3041), [CHAOYANG])
    flooded: set[int] = set()

    def flood(call):  # type: ignore[no-untyped-def]
        if call.method == "sendMessage" and call.chat_id in (3007, 3021) \
                and call.chat_id not in flooded:
            flooded.add(call.chat_id)
            return retry_after(1)
        return None

    server.api.failures.extend([
        flood, lambda call: forbidden() if call.chat_id == 3013 else None])
    application = build_application(services, rate_limit=False)
    async with application:
        alerts.attach(TelegramSender(application.bot))
        view = await send_now(alerts)
        await alerts.run_due()
        stats = await alerts.stats(view.id)

    delivered = [c.chat_id for c in server.api.sent("sendMessage")]
    assert sorted(delivered) == sorted(set(range(3001, 3041)) - {3013}), "each exactly once"
    assert flooded == {3007, 3021}
    assert (stats.sent, stats.blocked) == (39, 1)


def test_the_proxy_comes_from_the_environment_once_per_host(monkeypatch):
    from quickresponse.telegram.transport import _proxy_for

    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "no_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _proxy_for.cache_clear()
    try:
        assert _proxy_for("api.telegram.org") == "http://proxy.example:3128"
        assert _proxy_for("127.0.0.1") is None
        monkeypatch.delenv("HTTPS_PROXY")
        assert _proxy_for("api.telegram.org") == "http://proxy.example:3128"  # read once
        _proxy_for.cache_clear()
        assert _proxy_for("api.telegram.org") is None
    finally:
        _proxy_for.cache_clear()


async def test_a_json_body_carries_objects_as_objects_and_chinese_as_utf8():
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("已安全 Safe", callback_data="s:1")]])
    params = {"chat_id": CHAT, "text": WARNING, "parse_mode": "HTML", "reply_markup": keyboard}
    data = RequestData([RequestParameter.from_input(k, v) for k, v in params.items()])

    body, headers = await _encode(data, uploads=False)

    assert headers["Content-Type"] == "application/json"
    assert "暴雨橙色预警".encode() in body
    sent = json.loads(body)
    assert sent == {"chat_id": CHAT, "text": WARNING, "parse_mode": "HTML",
                    "reply_markup": keyboard.to_dict()}
    # What PTB's own encoder gives, once its stringified nested values are read back.
    ptb = {k: json.loads(v) if k == "reply_markup" else v
           for k, v in json.loads(data.json_payload).items()}
    assert sent == {**ptb, "chat_id": CHAT}


async def test_text_with_a_lone_surrogate_is_still_sent(server):
    # A resident's text can carry one (JSON's "\ud83d" decodes to it); UTF-8 cannot.
    async with bot_for(server) as bot:
        await bot.send_message(CHAT, "积水 \ud83d 很深")

    assert server.api.last("sendMessage", CHAT).text == "积水 \ud83d 很深"
