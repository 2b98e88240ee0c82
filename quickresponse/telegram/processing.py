"""How updates are processed: concurrently across users, in order for any one user, timed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from quickresponse.metrics import UPDATE_LATENCY, UPDATES


def update_kind(update: object) -> str:
    if not isinstance(update, Update):
        return "other"
    if update.callback_query is not None:
        return "callback"
    message = update.effective_message
    if message is None:
        return "other"
    if message.text and message.text.startswith("/"):
        return "command"
    if message.location is not None:
        return "location"
    if message.photo:
        return "photo"
    return "text"


def serial_key(update: object) -> int | None:
    """Updates of one user in one chat are handled one after another (flows depend on order)."""
    if isinstance(update, Update):
        user = update.effective_user
        chat = update.effective_chat
        if user is not None:
            return hash((chat.id if chat else 0, user.id))
    return None


class OrderedUpdateProcessor(BaseUpdateProcessor):
    """Up to ``max_concurrent`` updates at once, but never two of the same user and chat."""

    def __init__(self, max_concurrent: int = 64) -> None:
        super().__init__(max_concurrent)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiters: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        kind = update_kind(update)
        key = serial_key(update)
        started = time.perf_counter()
        result = "ok"
        try:
            if key is None:
                await coroutine
            else:
                lock = self._locks.setdefault(key, asyncio.Lock())
                self._waiters[key] = self._waiters.get(key, 0) + 1
                try:
                    async with lock:
                        await coroutine
                finally:
                    self._waiters[key] -= 1
                    if self._waiters[key] == 0:
                        del self._waiters[key]
                        self._locks.pop(key, None)
        except Exception:
            result = "error"
            raise
        finally:
            UPDATES.labels(kind, result).inc()
            UPDATE_LATENCY.labels(kind).observe(time.perf_counter() - started)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
