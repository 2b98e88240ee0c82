"""The real process, started as the container starts it (docker/start.sh), against the fake
Bot API over HTTP through QR_TELEGRAM_API_URL: webhook and polling, health, clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from quickresponse.telegram.web import SECRET_HEADER
from tests.conftest import FIXTURES
from tests.fake_bot_server import FakeBotServer
from tests.fakebot import TOKEN, message_update

ROOT = Path(__file__).resolve().parent.parent
SECRET = "process-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def fake_server():
    server = FakeBotServer()
    await server.start()
    yield server
    await server.stop()


def bot_env(fake_server: FakeBotServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QR_")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        "QR_TELEGRAM_TOKEN": TOKEN,
        "QR_TELEGRAM_API_URL": fake_server.url,
        "QR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "QR_KNOWLEDGE_BASE_DIR": str(FIXTURES / "kb_small"),
        "QR_WEBHOOK_LISTEN": "127.0.0.1",
        **extra,
    })
    return env


async def start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sh", str(ROOT / "docker" / "start.sh"), *args, env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )


async def wait_healthy(port: int, proc: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.returncode is not None:
                out = (await proc.stdout.read()).decode() if proc.stdout else ""
                raise AssertionError(f"bot exited early ({proc.returncode}):\n{out}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("bot never became healthy")


async def wait_for(predicate, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_webhook_process_answers_and_stops_cleanly(fake_server, tmp_path):
    port = free_port()
    env = bot_env(fake_server, tmp_path, QR_WEBHOOK_URL="https://bot.example.org/telegram",
                  QR_WEBHOOK_SECRET=SECRET, QR_WEBHOOK_PORT=str(port))
    proc = await start(env, "--webhook")
    try:
        await wait_healthy(port, proc)
        webhook = fake_server.api.last("setWebhook")
        assert webhook.params["url"] == "https://bot.example.org/telegram"
        assert webhook.params["secret_token"] == SECRET
        update = message_update(None, "家里着火了怎么逃生", user_id=777).to_dict()
        async with httpx.AsyncClient() as client:
            refused = await client.post(f"http://127.0.0.1:{port}/telegram", json=update)
            ok = await client.post(f"http://127.0.0.1:{port}/telegram", json=update,
                                   headers={SECRET_HEADER: SECRET})
        assert (refused.status_code, ok.status_code) == (403, 200)
        await wait_for(lambda: fake_server.api.sent("sendMessage", chat_id=777))
        assert "119" in fake_server.api.last(chat_id=777).text
    finally:
        output = await stop(proc)
    assert TOKEN not in output
    assert TOKEN.split(":")[1] not in output
    assert "stopped cleanly" in output


async def test_polling_process_uses_the_custom_api_url(fake_server, tmp_path):
    port = free_port()
    env = bot_env(fake_server, tmp_path, QR_METRICS_PORT=str(port))
    proc = await start(env)
    try:
        await wait_healthy(port, proc)
        fake_server.push_update(message_update(None, "闻到煤气味怎么办", user_id=778).to_dict())
        await wait_for(lambda: fake_server.api.sent("sendMessage", chat_id=778))
        assert "96777" in fake_server.api.last(chat_id=778).text
        assert fake_server.api.sent("setMyCommands")
    finally:
        output = await stop(proc)
    assert TOKEN not in output


async def test_missing_webhook_secret_fails_with_one_line(fake_server, tmp_path):
    env = bot_env(fake_server, tmp_path, QR_WEBHOOK_URL="https://bot.example.org/telegram")
    proc = await start(env, "--webhook")
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    lines = [line for line in out.decode().splitlines() if line.startswith("error:")]
    assert lines == ["error: webhook mode needs QR_WEBHOOK_SECRET (16-256 of A-Z a-z 0-9 _ -)"]
    assert "Traceback" not in out.decode()
