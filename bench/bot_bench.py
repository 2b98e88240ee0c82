"""The whole bot: messages per second and time to reply, through the real process.

Run: ``python -m bench bot``. For each way Telegram hands over updates (long polling and
webhook) and each database (SQLite and PostgreSQL), the benchmark

* starts a fake Bot API over real HTTP (``tests/fake_bot_server.py``) in this process,
* starts the bot as its own process (``bench/bot_process.py``: ``build_services`` +
  ``build_application``, the real HTTPXRequest, updater, update processor, handlers and a
  freshly migrated database of its own), pointed at the fake API by ``QR_TELEGRAM_API_URL``,
* hands it updates: pushed into the fake server's ``getUpdates`` queue (polling) or POSTed to
  the webhook with the secret token (webhook),
* times each update from the moment it is handed over to the moment the fake server receives
  the bot's answer in that chat (one clock: both ends are in this process).

Q&A: questions are the knowledge base's own example questions (zh and en mixed, not the
evaluation set), each from a different resident, because one resident's updates are handled one
after another by design. *Bursts* (everything at once; the median of three) measure how many
messages per second the process answers; a *paced* run then offers the target rate of 300
messages/s, or 80% of the burst rate when the process cannot take 300, and gives the p50 / p99
time a resident waits at that load. Every question must be answered and logged exactly once.
``cpu_ms`` is the bot process's CPU time per message (user + system) in the bursts: less
sensitive to other load on the machine than the rates.

Baseline, measured in the same run: PTB alone (``bot_process.py --echo``: same updater, update
processor and HTTP client, a handler that answers "ok", no database). ``vs_echo`` is the bot's
burst rate as a share of it.

Ticket filing: residents go through ``/report`` at the same time, each pressing the buttons the
bot sends (category, no photos, location, consent, submit; a district confirmation or "file
anyway" when the bot asks), until the ticket is filed. Figures: tickets filed per second, the
time of each step (update to the bot's next question), and every resident gets one ticket.

The bot runs with PTB's rate limiter off: with it on, every reply waits for Telegram's limit of
30 messages per second overall, so the benchmark would measure the limiter. One extra row shows
the process with the limiter on (production's setting).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from sqlalchemy import func
from sqlmodel import col, select

from bench.common import ROOT, Profiler, Results, median, percentile
from bench.databases import KINDS, DatabaseUnavailable, scratch_database
from quickresponse.db import Database
from quickresponse.knowledge import load_knowledge_base
from quickresponse.models import QuestionLog
from quickresponse.settings import DEFAULT_KB_DIR
from quickresponse.telegram import ticket_keyboards as report_buttons
from quickresponse.telegram.web import SECRET_HEADER
from quickresponse.tickets.models import Ticket
from tests.fake_bot_server import FakeBotServer
from tests.fakebot import TOKEN, FakeBotAPI, callback_update, message_update

MODES = ("polling", "webhook")
TARGET_QA = 300.0
SECRET = "bench-webhook-secret-0123456789"
ADMIN = 9001
# Residents' user ids start here and are never reused within a run.
FIRST_USER = 50_000_000
READY_TIMEOUT = 180.0
REPLY_TIMEOUT = 180.0
# The paced run offers the target, or this share of the burst rate when that is lower.
PACED_SHARE = 0.8
PACED_SECONDS = 4.0
# The burst is split in this many; the rate reported is their median.
BURSTS = 3


@dataclass(frozen=True)
class Question:
    text: str
    lang: str
    entry_id: str


@dataclass(frozen=True)
class Received:
    """One message the bot sent to a chat, as it arrived at the fake Bot API."""

    method: str
    params: dict[str, Any]
    message_id: int
    at: float

    @property
    def text(self) -> str:
        return str(self.params.get("text") or "")

    @property
    def buttons(self) -> list[tuple[str, str]]:
        markup = self.params.get("reply_markup") or {}
        return [(b["text"], b.get("callback_data") or "")
                for row in markup.get("inline_keyboard", []) for b in row]

    def actions(self) -> dict[str, str]:
        """Callback action name -> the data of its first button."""
        found: dict[str, str] = {}
        for _label, data in self.buttons:
            found.setdefault(data.split(":", 1)[0], data)
        return found


class ObservedAPI(FakeBotAPI):
    """The fake Bot API answers as usual and also drops each message the bot sends into the
    inbox of its chat, so that a waiting resident wakes up the moment the bot answers."""

    def __init__(self) -> None:
        super().__init__()
        self.inbox: defaultdict[int, asyncio.Queue[Received]] = defaultdict(asyncio.Queue)

    def _observe(self, method: str, params: dict[str, Any], result: dict[str, Any]) -> None:
        chat_id = params.get("chat_id")
        if chat_id is not None:
            at = params.get("_received") or time.perf_counter()
            self.inbox[int(chat_id)].put_nowait(
                Received(method, params, int(result["message_id"]), at))

    def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        result = super()._api_sendMessage(params)
        self._observe("sendMessage", params, result)
        return result

    def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        result = super()._api_editMessageText(params)
        self._observe("editMessageText", params, result)
        return result


def questions(seed: int = 6) -> list[Question]:
    """Every example question of the shipped knowledge base, zh and en, shuffled."""
    kb = load_knowledge_base(DEFAULT_KB_DIR)
    found = [Question(text, lang, entry.id) for entry in kb for lang in ("zh", "en")
             for text in entry.examples.get(lang, ())]
    random.Random(seed).shuffle(found)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _LongPollCut(logging.Filter):
    """When a run ends, the fake server's pending ``getUpdates`` (the bot has gone) is cut off
    and tornado reports a 500 for it: not a failure of anything under test."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "/getUpdates" not in record.getMessage()


class BotUnderTest:
    """The bot process, the fake Bot API it talks to, and the way updates reach it."""

    def __init__(self, mode: str, database_url: str, *, rate_limit: bool = False,
                 echo: bool = False) -> None:
        self.mode = mode
        self.database_url = database_url
        self.rate_limit = rate_limit
        self.echo = echo
        self.server = FakeBotServer()
        self.api = ObservedAPI()
        self.server.api = self.api
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.client: aiohttp.ClientSession | None = None
        self.profiler: Profiler | None = None
        # The process's log (stderr); gone when closed.
        self._log = tempfile.TemporaryFile(prefix="qr-bench-bot-")
        self._next_user = FIRST_USER

    def new_user(self) -> int:
        self._next_user += 1
        return self._next_user

    @property
    def name(self) -> str:
        kind = "echo" if self.echo else self.database_url.split(":", 1)[0].split("+")[0]
        return f"bot-{self.mode}-{kind}{'-limited' if self.rate_limit else ''}"

    async def start(self) -> None:
        access = logging.getLogger("tornado.access")
        if not any(isinstance(f, _LongPollCut) for f in access.filters):
            access.addFilter(_LongPollCut())
        await self.server.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("QR_")}
        env.update({
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
            "QR_TELEGRAM_TOKEN": TOKEN,
            "QR_TELEGRAM_API_URL": self.server.url,
            "QR_ADMIN_IDS": str(ADMIN),
            "QR_WEBHOOK_URL": "https://bench.example.org/telegram",
            "QR_WEBHOOK_SECRET": SECRET,
            "QR_WEBHOOK_LISTEN": "127.0.0.1",
            "QR_WEBHOOK_PORT": str(self.port),
            "QR_LOG_LEVEL": "INFO",
        })
        if self.database_url:
            env["QR_DATABASE_URL"] = self.database_url
        args = [sys.executable, "-m", "bench.bot_process", self.mode]
        if self.rate_limit:
            args.append("--rate-limit")
        if self.echo:
            args.append("--echo")
        self.proc = await asyncio.create_subprocess_exec(
            *args, env=env, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=self._log)
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), READY_TIMEOUT)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.stop()
            raise RuntimeError(f"the bot did not start ({self.name}):\n{self.log_tail()}")
        self.profiler = Profiler(self.proc.pid, self.name)
        # Telegram's side of the webhook. aiohttp, not httpx: httpx's pool scan costs this
        # process milliseconds per request with 64 connections in use (see transport.py), and
        # the webhook rows then measured this process, not the bot.
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=60))

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    async def hand_over(self, update: dict[str, Any]) -> float:
        """Give the bot one update the way Telegram would; return when it was handed over."""
        at = time.perf_counter()
        if self.mode == "polling":
            self.server.push_update(update)
            return at
        assert self.client is not None
        async with self.client.post(
                f"http://127.0.0.1:{self.port}/telegram", json=update,
                headers={SECRET_HEADER: SECRET}) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"webhook refused an update: HTTP {response.status}")
        return at

    async def stop(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()
        if self.client is not None:
            await self.client.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self.server.stop()

    def close_log(self) -> None:
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@asynccontextmanager
async def running_bot(mode: str, database_url: str = "", *, rate_limit: bool = False,
                      echo: bool = False) -> AsyncIterator[BotUnderTest]:
    bot = BotUnderTest(mode, database_url, rate_limit=rate_limit, echo=echo)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
        bot.close_log()


# -- Q&A ------------------------------------------------------------------------------------------

@dataclass
class QaRun:
    sent: int
    answered: int
    seconds: float
    latencies_ms: list[float]
    users: list[int]
    asked: list[Question]
    cpu_ms: float = 0.0

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0


async def ask_many(bot: BotUnderTest, pool: Sequence[Question], count: int,
                   rate: float | None) -> QaRun:
    """Hand over ``count`` questions, each from a new resident, ``rate`` a second (None: all
    at once), and wait for every first reply."""
    asked = [pool[i % len(pool)] for i in range(count)]
    users = [bot.new_user() for _ in asked]
    handed: dict[int, float] = {}
    cpu_before = bot.cpu_seconds()
    start = time.perf_counter()

    async def give(user: int, question: Question) -> None:
        code = "zh-hans" if question.lang == "zh" else "en"
        update = message_update(None, question.text, user_id=user,
                                language_code=code).to_dict()
        handed[user] = await bot.hand_over(update)

    async def send_all() -> None:
        async with asyncio.TaskGroup() as group:
            for i, (user, question) in enumerate(zip(users, asked, strict=True)):
                if rate is not None:
                    delay = start + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                group.create_task(give(user, question))

    async def first_reply(user: int) -> float:
        return (await bot.api.inbox[user].get()).at

    sender = asyncio.create_task(send_all())
    try:
        replies = await asyncio.wait_for(
            asyncio.gather(*(first_reply(u) for u in users)), REPLY_TIMEOUT)
    except TimeoutError as exc:
        missing = sum(1 for u in users if bot.api.inbox[u].empty())
        raise RuntimeError(f"{missing} of {count} questions got no reply in time:\n"
                           f"{bot.log_tail()}") from exc
    finally:
        await sender
    cpu_ms = (bot.cpu_seconds() - cpu_before) * 1000 / count
    first = min(handed.values())
    latencies = [(at - handed[u]) * 1000 for u, at in zip(users, replies, strict=True)]
    return QaRun(sent=count, answered=len(replies), seconds=max(replies) - first,
                 latencies_ms=latencies, users=users, asked=asked, cpu_ms=cpu_ms)


async def logged_questions(database_url: str, users: Sequence[int],
                           asked: Sequence[Question]) -> tuple[int, float]:
    """How many of these questions the bot logged, and the share logged with their own topic."""
    db = Database(database_url)
    try:
        async def work(session):  # type: ignore[no-untyped-def]
            rows = await session.exec(
                select(QuestionLog.user_id, QuestionLog.entry_id)
                .where(col(QuestionLog.user_id).in_(list(users))))
            return rows.all()

        rows = await db.run(work)
    finally:
        await db.close()
    expected = {u: q.entry_id for u, q in zip(users, asked, strict=True)}
    own = sum(1 for user, entry_id in rows if expected.get(user) == entry_id)
    return len(rows), own / len(rows) if rows else 0.0


def paced_rate(burst_rate: float) -> float:
    return max(1.0, min(TARGET_QA, PACED_SHARE * burst_rate))


async def bench_qa(bot: BotUnderTest, pool: Sequence[Question], *, burst: int,
                   check_log: bool = True) -> dict[str, Any]:
    """Warm up, then bursts (capacity: the median of BURSTS) and a paced run (latency at a load
    the process can take)."""
    await ask_many(bot, pool, 20, None)
    floods = [await ask_many(bot, pool, max(1, burst // BURSTS), None) for _ in range(BURSTS)]
    capacity = median([f.per_second for f in floods])
    rate = paced_rate(capacity)
    steady = await ask_many(bot, pool, max(20, round(rate * PACED_SECONDS)), rate)
    runs = [*floods, steady]
    users = [u for r in runs for u in r.users]
    replies = sum(bot.api.inbox[u].qsize() + 1 for u in users)
    figures: dict[str, Any] = {
        "msg_s": capacity, "cpu_ms": median([f.cpu_ms for f in floods]), "paced_at": rate,
        "paced_msg_s": steady.per_second, "p50_ms": median(steady.latencies_ms),
        "p99_ms": percentile(steady.latencies_ms, 99),
        "questions": len(users), "unanswered": len(users) - sum(r.answered for r in runs),
        "extra_replies": replies - len(users),
    }
    if check_log:
        logged, own = await logged_questions(bot.database_url, users,
                                             [q for r in runs for q in r.asked])
        figures.update(logged=logged, own_topic=own)
    return figures


# -- ticket filing ---------------------------------------------------------------------------------

DESCRIPTIONS = (
    "路口积水很深，已经没过膝盖，车辆无法通行",
    "小区门口的树被大风刮倒了，压住了人行道",
    "楼道里的灯坏了好几天，晚上很黑",
    "Water is pouring into the underground garage of building 3",
    "A manhole cover is missing on the main road near the school",
)
# Central Beijing: points here route by location, now and then near a border (a confirmation).
CENTRE = ((39.86, 39.99), (116.30, 116.48))


@dataclass
class Filing:
    """One resident filing one report, step by step; each step's time is kept."""

    user: int
    rng: random.Random
    steps_ms: list[float] = field(default_factory=list)
    filed: Received | None = None


class Resident:
    """Talks to the bot process through the fake Bot API, as a person with a phone would."""

    def __init__(self, bot: BotUnderTest, user: int, rng: random.Random) -> None:
        self.bot = bot
        self.filing = Filing(user, rng)
        self.inbox = bot.api.inbox[user]

    async def _next(self, handed: float, *, question: bool) -> Received:
        """The bot's next message in this chat: the next one with buttons when ``question``."""
        while True:
            got = await asyncio.wait_for(self.inbox.get(), REPLY_TIMEOUT)
            if not question or got.buttons:
                self.filing.steps_ms.append((got.at - handed) * 1000)
                return got

    async def send(self, *, question: bool = True, **message: Any) -> Received:
        update = message_update(None, user_id=self.filing.user, **message).to_dict()
        return await self._next(await self.bot.hand_over(update), question=question)

    async def press(self, on: Received, data: str, *, question: bool = True) -> Received:
        update = callback_update(
            None, data, user_id=self.filing.user, message_id=on.message_id,
            message_text=on.text, reply_markup=on.params.get("reply_markup")).to_dict()
        return await self._next(await self.bot.hand_over(update), question=question)

    async def file_report(self) -> Filing:
        rng = self.filing.rng
        asked = await self.send(text="/report")
        located = False
        for _ in range(12):
            actions = asked.actions()
            if report_buttons.REPORT_CATEGORY.name in actions:
                categories = [d for _, d in asked.buttons
                              if d.startswith(report_buttons.REPORT_CATEGORY.name + ":")]
                asked = await self.press(asked, rng.choice(categories))
            elif report_buttons.REPORT_PHOTOS_DONE.name in actions:
                asked = await self.press(asked, actions[report_buttons.REPORT_PHOTOS_DONE.name])
            elif report_buttons.REPORT_DISTRICT.name in actions and not located:
                located = True
                (lat0, lat1), (lon0, lon1) = CENTRE
                asked = await self.send(location=(rng.uniform(lat0, lat1),
                                                  rng.uniform(lon0, lon1)))
            elif report_buttons.REPORT_DISTRICT.name in actions:
                asked = await self.press(asked, actions[report_buttons.REPORT_DISTRICT.name])
            elif report_buttons.REPORT_FILE_NEW.name in actions:
                asked = await self.press(asked, actions[report_buttons.REPORT_FILE_NEW.name])
            elif report_buttons.REPORT_CONSENT.name in actions:
                asked = await self.press(
                    asked, report_buttons.REPORT_CONSENT.pack("none"))
            elif report_buttons.REPORT_SUBMIT.name in actions:
                self.filing.filed = await self.press(
                    asked, actions[report_buttons.REPORT_SUBMIT.name], question=False)
                return self.filing
            elif set(actions) == {report_buttons.REPORT_CANCEL.name}:
                asked = await self.send(text=rng.choice(DESCRIPTIONS))
            else:
                raise RuntimeError(f"unexpected step in the report flow: {asked.text[:200]!r} "
                                   f"{sorted(actions)}")
        raise RuntimeError("the report flow did not end within 12 steps")


async def count_tickets(database_url: str, users: Sequence[int]) -> int:
    db = Database(database_url)
    try:
        async def work(session):  # type: ignore[no-untyped-def]
            stmt = (select(func.count()).select_from(Ticket)
                    .where(col(Ticket.resident_id).in_(list(users))))
            return int((await session.exec(stmt)).one())

        return await db.run(work)
    finally:
        await db.close()


async def bench_tickets(bot: BotUnderTest, residents: int, seed: int = 3) -> dict[str, Any]:
    """``residents`` people file a report each, all at once."""
    rng = random.Random(seed)
    people = [Resident(bot, bot.new_user(), random.Random(rng.random()))
              for _ in range(residents)]
    start = time.perf_counter()
    filings = await asyncio.gather(*(p.file_report() for p in people))
    seconds = max(f.filed.at for f in filings if f.filed) - start
    steps = [ms for f in filings for ms in f.steps_ms]
    filed = sum(1 for f in filings if f.filed and "#" in f.filed.text)
    in_db = await count_tickets(bot.database_url, [f.user for f in filings])
    return {
        "tickets_s": filed / seconds, "updates_s": len(steps) / seconds,
        "step_p50_ms": median(steps), "step_p99_ms": percentile(steps, 99),
        "steps": len(steps), "residents": residents, "filed": filed, "in_db": in_db,
    }


# -- the benchmark --------------------------------------------------------------------------------

async def run(results: Results, *, quick: bool = False,
              databases: Sequence[str] = KINDS, modes: Sequence[str] = MODES) -> None:
    pool = questions()
    burst, residents = (40, 4) if quick else (400, 30)
    echo: dict[str, float] = {}
    for mode in modes:
        async with running_bot(mode, echo=True) as bot:
            figures = await bench_qa(bot, pool, burst=burst, check_log=False)
        echo[mode] = figures["msg_s"]
        results.add("bot", f"baseline: PTB echo bot, {mode}", "", None, **figures)
    for kind in databases:
        for mode in modes:
            try:
                async with scratch_database(kind, migrate=False) as url, \
                        running_bot(mode, url) as bot:
                    qa = await bench_qa(bot, pool, burst=burst)
                    tickets = await bench_tickets(bot, residents)
            except DatabaseUnavailable as exc:
                results.add("bot", f"{mode}, {kind}", "", None, skipped=str(exc))
                continue
            correct = (qa["unanswered"] == 0 and qa["extra_replies"] == 0
                       and qa["logged"] == qa["questions"])
            results.add("bot", f"Q&A, {mode}, {kind}", f"≥ {TARGET_QA:g} msg/s, none lost",
                        qa["msg_s"] >= TARGET_QA and correct,
                        vs_echo=qa["msg_s"] / echo[mode], **qa)
            results.add("bot", f"ticket filing, {mode}, {kind}", "every report filed once",
                        tickets["filed"] == tickets["in_db"] == residents, **tickets)
    if not quick and "sqlite" in databases:
        await _with_rate_limiter(results, pool)


async def _with_rate_limiter(results: Results, pool: Sequence[Question]) -> None:
    """Production's setting: PTB's AIORateLimiter holds replies to 30 messages/s overall."""
    async with scratch_database("sqlite", migrate=False) as url, \
            running_bot("polling", url, rate_limit=True) as bot:
        await ask_many(bot, pool, 10, None)
        flood = await ask_many(bot, pool, 120, None)
    results.add("bot", "Q&A, polling, sqlite, rate limiter on", "≈ 30 msg/s (Telegram's limit)",
                None, msg_s=flood.per_second, burst_p50_ms=median(flood.latencies_ms),
                questions=flood.sent, unanswered=flood.sent - flood.answered)
