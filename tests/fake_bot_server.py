"""The fake Bot API over real HTTP, for end-to-end runs of the real process and benchmarks.

It serves ``/bot<token>/<method>`` with the same answers as :class:`tests.fakebot.FakeBotAPI`,
so a bot started with ``QR_TELEGRAM_API_URL=http://127.0.0.1:<port>`` talks to it exactly as it
would to Telegram or a self-hosted telegram-bot-api server. ``push_update`` queues updates for
``getUpdates`` (long polling).

Run alone: ``python -m tests.fake_bot_server --port 8081``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from typing import Any
from urllib.parse import parse_qsl

import tornado.httpserver
import tornado.web

from tests.fakebot import TOKEN, Call, FakeBotAPI


class _MethodHandler(tornado.web.RequestHandler):
    def initialize(self, server: FakeBotServer) -> None:
        self.server = server

    async def post(self, token: str, method: str) -> None:
        await self._handle(token, method)

    async def get(self, token: str, method: str) -> None:
        await self._handle(token, method)

    async def _handle(self, token: str, method: str) -> None:
        if token != self.server.token:
            self.set_status(401)
            self.finish({"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        params = self._params()
        if method == "getUpdates":
            result: Any = await self.server.next_updates(params)
            self.finish({"ok": True, "result": result})
            return
        call = Call(method, params, self.request.uri or "")
        for part, uploads in self.request.files.items():
            call.files[part] = (uploads[0].filename, uploads[0].body)
        if self.server.api.delay:
            await asyncio.sleep(self.server.api.delay)
        for failure in self.server.api.failures:
            answer = failure(call)
            if answer is not None:
                # Marked as FakeBotAPI marks it, so that ``sent()`` leaves it out.
                call.params["_failed"] = answer[0]
                self.server.api.calls.append(call)
                self.set_status(answer[0])
                self.finish(answer[1])
                return
        handler = getattr(self.server.api, f"_api_{method}", None)
        if handler is None:
            self.set_status(404)
            self.finish({"ok": False, "error_code": 404, "description": "Not Found"})
            return
        call.params["_received"] = time.perf_counter()
        self.server.api.calls.append(call)
        self.finish({"ok": True, "result": handler(params)})

    def _params(self) -> dict[str, Any]:
        body = self.request.body or b""
        content_type = self.request.headers.get("Content-Type", "")
        if "json" in content_type and body:
            params = json.loads(body)
        elif "multipart" in content_type:
            params = {k: v[0].decode() for k, v in self.request.body_arguments.items()}
        else:
            params = dict(parse_qsl(body.decode())) if body else {}
            params.update({k: v[0].decode() for k, v in self.request.query_arguments.items()})
        for key, value in list(params.items()):
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    params[key] = json.loads(value)
                except json.JSONDecodeError:
                    pass
        return params


class FakeBotServer:
    """An HTTP Bot API on 127.0.0.1 backed by a FakeBotAPI recorder."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.api = FakeBotAPI()
        self._updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._server: tornado.httpserver.HTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        app = tornado.web.Application([(r"/bot([^/]+)/(\w+)", _MethodHandler, {"server": self})])
        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        sock.close()
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.listen(self.port, address="127.0.0.1")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def push_update(self, update: dict[str, Any]) -> None:
        self._updates.put_nowait(update)

    async def next_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        timeout = float(params.get("timeout") or 0)
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        batch: list[dict[str, Any]] = []
        try:
            first = await asyncio.wait_for(self._updates.get(), timeout=max(timeout, 0.01))
            batch.append(first)
        except TimeoutError:
            return []
        while len(batch) < limit and not self._updates.empty():
            batch.append(self._updates.get_nowait())
        return [u for u in batch if u["update_id"] >= offset]


async def _main(port: int) -> None:
    server = FakeBotServer()
    await server.start(port)
    print(f"fake Bot API on {server.url} (token {server.token})", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8081)
    asyncio.run(_main(parser.parse_args().port))
