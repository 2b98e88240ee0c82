"""Real bot processes for the fault and scale-out tests: started as production starts them
(``python bot.py run --webhook``), talking to the fake Bot API over HTTP, killed or stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from quickresponse.telegram.web import SECRET_HEADER
from tests.conftest import ADMIN_ID, FIXTURES
from tests.fake_bot_server import FakeBotServer
from tests.fakebot import TOKEN

ROOT = Path(__file__).resolve().parent.parent
SECRET = "multiprocess-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class BotProcess:
    """One ``bot.py run --webhook`` process on its own port; its output is kept for failures."""

    name: str
    port: int
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    output: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), "run", "--webhook", env=self.env,
            cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace").rstrip())

    async def wait_healthy(self, within: float = 60.0) -> None:
        async with httpx.AsyncClient() as client:
            for _ in range(int(within / 0.1)):
                if self.proc is not None and self.proc.returncode is not None:
                    raise AssertionError(f"{self.name} exited early ({self.proc.returncode}):\n"
                                         + self.log())
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} never became healthy:\n{self.log()}")

    async def post_update(self, client: httpx.AsyncClient, update: dict[str, Any]) -> int:
        response = await client.post(f"{self.url}/telegram", json=update,
                                     headers={SECRET_HEADER: SECRET})
        return response.status_code

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def wait_exit(self, within: float = 30.0) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout=within)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=within)
        return code

    async def stop(self) -> int:
        """SIGTERM, as an orchestrator stops a container."""
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return await self.wait_exit()

    def log(self) -> str:
        return "\n".join(self.output[-80:])


def bot_env(fake_server: FakeBotServer, database_url: str, port: int, **extra: str
            ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QR_")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        "QR_TELEGRAM_TOKEN": TOKEN,
        "QR_TELEGRAM_API_URL": fake_server.url,
        "QR_DATABASE_URL": database_url,
        "QR_KNOWLEDGE_BASE_DIR": str(FIXTURES / "kb_small"),
        "QR_ADMIN_IDS": str(ADMIN_ID),
        "QR_WEBHOOK_URL": "https://bot.example.org/telegram",
        "QR_WEBHOOK_SECRET": SECRET,
        "QR_WEBHOOK_LISTEN": "127.0.0.1",
        "QR_WEBHOOK_PORT": str(port),
        **extra,
    })
    return env


async def wait_for(predicate: Callable[[], bool], within: float = 30.0,
                   what: str = "condition", processes: list[BotProcess] | None = None) -> None:
    for _ in range(int(within / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    logs = "\n\n".join(f"--- {p.name} ---\n{p.log()}" for p in processes or [])
    raise AssertionError(f"{what}: not met within {within:.0f} s\n{logs}")
