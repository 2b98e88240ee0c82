"""Broadcast: queueing a warning for 100,000 subscribers, memory, and the delivery rate achieved.

Run: ``python -m bench broadcast``. Each case gets a fresh, migrated database filled with
subscribers (one or two districts each, zh or en; a few who blocked the bot and a few who only
want red warnings, so the recipient list is not simply every row), a fake Bot API over real HTTP
in this process, and ``bench/broadcast_process.py`` as the bot: it builds the services and the
Telegram application as production does, composes an orange rainstorm warning for the whole
city and confirms it for now.

* **Enqueue**: from the admin's confirmation to one delivery row per recipient, and the
  process's memory: its peak resident set size (what a container limit is about) and how much
  the enqueue raised it.
* **Delivery**: the rate the fake Bot API actually received the warnings at, with the limiter at
  30 messages/s (Telegram's free limit) and at 1,000 (paid broadcasts), from the first to the
  last message; and exactly one message per recipient, checked at the fake Bot API (by chat)
  and in the delivery ledger.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.common import ROOT, Profiler, Results
from bench.databases import DatabaseUnavailable, scratch_database
from quickresponse.alerts.hazards import Level
from quickresponse.alerts.models import AlertPreference, AlertSubscription
from quickresponse.db import Database
from quickresponse.districts import load_city
from quickresponse.models import User
from tests.fake_bot_server import FakeBotServer
from tests.fakebot import TOKEN

ADMIN = 9001
FIRST_CHAT = 70_000_000
ENQUEUE_TARGET_S = 10.0
MEMORY_TARGET_MB = 300.0
RATE_SHARE = 0.95
PROCESS_TIMEOUT = 600.0


@dataclass(frozen=True)
class Subscribers:
    """Who is in the database, and who an orange warning for every district must reach."""

    chats: int
    recipients: frozenset[int]


async def seed(database_url: str, chats: int, *, seed: int = 11) -> Subscribers:
    """``chats`` subscribed chats: 10% in two districts, 20% English, 2% blocked the bot,
    3% want red warnings only (those two groups must not get an orange one)."""
    rng = random.Random(seed)
    districts = [d.id for d in load_city("beijing").districts]
    now = datetime.now(UTC)
    users: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []
    preferences: list[dict[str, Any]] = []
    recipients: set[int] = set()
    for n in range(chats):
        chat = FIRST_CHAT + n
        active = rng.random() >= 0.02
        red_only = rng.random() < 0.03
        users.append({"id": chat, "language": "en" if rng.random() < 0.2 else "zh",
                      "created_at": now, "last_seen_at": now, "active": active})
        for district in rng.sample(districts, 2 if rng.random() < 0.1 else 1):
            subscriptions.append({"chat_id": chat, "district_id": district, "created_at": now})
        if red_only:
            preferences.append({"chat_id": chat, "min_level_rank": Level.RED.rank,
                                "updated_at": now})
        if active and not red_only:
            recipients.add(chat)
    db = Database(database_url)
    try:
        for model, rows in ((User, users), (AlertSubscription, subscriptions),
                            (AlertPreference, preferences)):
            for start in range(0, len(rows), 5000):
                chunk = rows[start:start + 5000]

                async def work(session, model=model, chunk=chunk):  # type: ignore[no-untyped-def]
                    connection = await session.connection()
                    await connection.execute(insert(model.__table__), chunk)

                await db.run(work)
    finally:
        await db.close()
    return Subscribers(chats, frozenset(recipients))


async def broadcast(mode: str, database_url: str, server: FakeBotServer, *,
                    rate: float, args: Sequence[str] = ()) -> dict[str, Any]:
    """Run ``bench/broadcast_process.py``; return the figures it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QR_")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        "QR_TELEGRAM_TOKEN": TOKEN,
        "QR_TELEGRAM_API_URL": server.url,
        "QR_ADMIN_IDS": str(ADMIN),
        "QR_BROADCAST_RATE": f"{rate:g}",
        "QR_ALLOW_PAID_BROADCAST": "true" if rate > 30 else "false",
    })
    if database_url:
        env["QR_DATABASE_URL"] = database_url
    with tempfile.TemporaryFile() as errors:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.broadcast_process", mode, *(args or [str(ADMIN)]),
            env=env,
            cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=errors)
        profiler = Profiler(proc.pid, f"broadcast-{mode}-{rate:g}")
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        finally:
            profiler.stop()
        if proc.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"broadcast process failed ({proc.returncode}):\n{tail}")
    return json.loads(out.decode().strip().splitlines()[-1])


def warnings_received(server: FakeBotServer) -> tuple[Counter[int], list[float]]:
    """Messages per subscriber chat at the fake Bot API, and when each arrived."""
    counts: Counter[int] = Counter()
    times: list[float] = []
    for call in server.api.sent("sendMessage"):
        chat = call.chat_id
        if chat is not None and chat >= FIRST_CHAT:
            counts[chat] += 1
            times.append(float(call.params["_received"]))
    return counts, times


async def enqueue_case(results: Results, kind: str, chats: int) -> None:
    case = f"enqueue {chats:,} subscribers, {kind}"
    target = f"< {ENQUEUE_TARGET_S:g} s, peak < {MEMORY_TARGET_MB:g} MB, every recipient once"
    try:
        async with scratch_database(kind) as url:
            subscribers = await seed(url, chats)
            server = FakeBotServer()
            await server.start()
            try:
                figures = await broadcast("enqueue", url, server, rate=30)
            finally:
                await server.stop()
    except DatabaseUnavailable as exc:
        results.add("broadcast", case, target, None, skipped=str(exc))
        return
    queued_right = figures["total"] == len(subscribers.recipients)
    met = (figures["enqueue_s"] < ENQUEUE_TARGET_S and figures["peak_mb"] < MEMORY_TARGET_MB
           and queued_right)
    results.add("broadcast", case, target, met, enqueue_s=figures["enqueue_s"],
                queued=figures["total"], expected=len(subscribers.recipients),
                rss_before_mb=figures["rss_before_mb"], peak_mb=figures["peak_mb"],
                peak_raised_mb=figures["peak_mb"] - figures["peak_before_mb"])


async def delivery_case(results: Results, kind: str, chats: int, rate: float, *,
                        baseline: float | None = None) -> None:
    """Deliver to ``chats`` subscribers at ``rate``; ``baseline`` is the bare bot's rate."""
    case = f"deliver at {rate:g}/s to {chats:,} subscribers, {kind}"
    target = f"≥ {RATE_SHARE:.0%} of {rate:g}/s, exactly once"
    try:
        async with scratch_database(kind) as url:
            subscribers = await seed(url, chats)
            server = FakeBotServer()
            await server.start()
            try:
                figures = await broadcast("deliver", url, server, rate=rate)
            finally:
                await server.stop()
    except DatabaseUnavailable as exc:
        results.add("broadcast", case, target, None, skipped=str(exc))
        return
    counts, times = warnings_received(server)
    achieved = (len(times) - 1) / (max(times) - min(times)) if len(times) > 1 else 0.0
    wrong = set(counts) - subscribers.recipients
    missing = subscribers.recipients - set(counts)
    twice = sum(1 for n in counts.values() if n > 1)
    exactly_once = not wrong and not missing and not twice \
        and figures["sent"] == len(subscribers.recipients)
    extra = {"vs_bare_bot": achieved / baseline} if baseline else {}
    results.add("broadcast", case, target,
                achieved >= RATE_SHARE * rate and exactly_once,
                msg_s=achieved, share=achieved / rate, **extra, received=sum(counts.values()),
                recipients=len(subscribers.recipients), missing=len(missing), twice=twice,
                not_subscribed=len(wrong), ledger_sent=figures["sent"],
                cpu_ms=figures["deliver_cpu_s"] * 1000 / max(1, figures["sent"]),
                peak_mb=figures["peak_mb"])


async def raw_send_case(results: Results, count: int, rate: float,
                        transport: str = "aiohttp") -> float:
    """The baseline: how fast the bare PTB bot sends here and now over ``transport`` (the bot's
    aiohttp, or PTB's default httpx); returns messages/s."""
    server = FakeBotServer()
    await server.start()
    try:
        figures = await broadcast("raw", "", server, rate=rate,
                                  args=[str(count), str(FIRST_CHAT), transport])
    finally:
        await server.stop()
    counts, times = warnings_received(server)
    achieved = (len(times) - 1) / (max(times) - min(times)) if len(times) > 1 else 0.0
    results.add("broadcast", f"baseline: bare PTB bot over {transport}, {count:,} messages, "
                f"{figures['parallel']} at once", "", None, msg_s=achieved,
                cpu_ms=figures["cpu_ms"], received=sum(counts.values()))
    return achieved


async def run(results: Results, *, quick: bool = False,
              databases: Sequence[str] = ("sqlite", "postgres")) -> None:
    if quick:
        for kind in databases:
            await enqueue_case(results, kind, 1000)
            await delivery_case(results, kind, 60, 30)
        return
    for kind in databases:
        await enqueue_case(results, kind, 100_000)
    await delivery_case(results, "sqlite", 500, 30)
    await raw_send_case(results, 3000, 1000, "httpx")
    bare = await raw_send_case(results, 3000, 1000)
    for kind in databases:
        await delivery_case(results, kind, 5000, 1000, baseline=bare)
