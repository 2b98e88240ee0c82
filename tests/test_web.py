"""Webhook, /healthz and /metrics over real HTTP on localhost."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from quickresponse.telegram.web import SECRET_HEADER, make_web_app, serve
from tests.conftest import FIXTURES
from tests.fakebot import message_update

SECRET = "s3cret-token-for-tests_0123"


@pytest.fixture
def kb_dir():
    return FIXTURES / "kb_small"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def server(app, services):
    port = free_port()
    await app.start()
    services.scheduler.start()
    http = await serve(make_web_app(services, app, webhook_path="telegram", secret=SECRET),
                 "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}"
    await http.stop()
    await app.stop()


async def wait_for(predicate, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_webhook_with_secret_is_answered(server, app, fake_api):
    update = message_update(app.bot, "家里着火了怎么逃生", user_id=4242)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server}/telegram", json=update.to_dict(),
                                     headers={SECRET_HEADER: SECRET})
    assert response.status_code == 200
    await wait_for(lambda: fake_api.sent("sendMessage", chat_id=4242))
    assert "119" in fake_api.last(chat_id=4242).text


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong-secret-value-123456"}])
async def test_webhook_without_the_secret_is_refused(server, app, fake_api, headers, caplog):
    update = message_update(app.bot, "家里着火了怎么逃生", user_id=4343)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server}/telegram", json=update.to_dict(), headers=headers)
    assert response.status_code == 403
    await asyncio.sleep(0.1)
    assert not fake_api.sent("sendMessage", chat_id=4343)
    assert "secret token" in caplog.text


async def test_webhook_rejects_a_body_that_is_not_an_update(server):
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server}/telegram", content=b"not json",
                                     headers={SECRET_HEADER: SECRET})
    assert response.status_code == 400


async def test_health_reports_database_and_scheduler(server, services):
    async with httpx.AsyncClient() as client:
        ok = await client.get(f"{server}/healthz")
        services.scheduler.shutdown()
        await asyncio.sleep(0.05)
        down = await client.get(f"{server}/healthz")
    assert ok.status_code == 200 and ok.json() == {"database": "ok", "scheduler": "running"}
    assert down.status_code == 503 and down.json()["scheduler"] == "stopped"


async def test_metrics_count_handled_updates(server, app, fake_api):
    update = message_update(app.bot, "闻到煤气味怎么办", user_id=4444)
    async with httpx.AsyncClient() as client:
        await client.post(f"{server}/telegram", json=update.to_dict(),
                          headers={SECRET_HEADER: SECRET})
        await wait_for(lambda: fake_api.sent("sendMessage", chat_id=4444))
        await asyncio.sleep(0.05)
        body = (await client.get(f"{server}/metrics")).text
    assert 'qr_updates_total{kind="text",result="ok"}' in body
    assert "qr_update_latency_seconds_bucket" in body
    assert "qr_match_outcomes_total" in body
