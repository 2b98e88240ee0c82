"""Three bot processes side by side on one PostgreSQL behind a round-robin load balancer.

Each process is started as production starts it (``bot.py run --webhook`` on its own port) and
talks to the fake Bot API over HTTP. The tests show what running several instances must not
break: a resident's consecutive updates land on different processes and the conversation goes
on; an update delivered to two processes is handled once; a due alert reaches every subscriber
exactly once; an overdue ticket is escalated once.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.alerts.models import AlertDelivery, AlertNotice
from quickresponse.alerts.service import AlertDraft
from quickresponse.clock import FakeClock
from quickresponse.db import Database
from quickresponse.services import build_services
from quickresponse.settings import Settings
from quickresponse.tickets.models import Ticket, TicketEscalation
from quickresponse.tickets.service import NewTicket
from tests.bot_processes import BotProcess, bot_env, free_port, wait_for
from tests.conftest import ADMIN_ID, _truncate
from tests.fake_bot_server import FakeBotServer
from tests.fakebot import Call, callback_update, message_update

pytestmark = [pytest.mark.postgres, pytest.mark.multiprocess]

RESIDENT = 1001
STAFF = 2001
DONGCHENG = "110101"
CHAOYANG = "110105"
DONGCHENG_GROUP = -100101
TIANANMEN = (39.9087, 116.3975)
SUBSCRIBERS = range(7001, 7121)


@pytest.fixture
async def pg_settings(postgres_url: str, settings: Settings) -> Settings:
    """The run's PostgreSQL database, emptied; Dongcheng has staff and a staff group."""
    await _truncate(postgres_url)
    pg = settings.model_copy(update={"database_url": postgres_url})
    services = await build_services(pg, migrate=False)
    try:
        await services.tickets.add_staff(None, STAFF, DONGCHENG, display_name="王芳")
        await services.tickets.link_group(ADMIN_ID, DONGCHENG, DONGCHENG_GROUP)
    finally:
        await services.close()
    return pg


# ``settings`` is parametrised over both databases by conftest; these tests need PostgreSQL only.
@pytest.fixture(params=["postgres"])
def db_url(request: pytest.FixtureRequest, postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeBotServer]:
    server = FakeBotServer()
    await server.start()
    yield server
    await server.stop()


class Cluster:
    """Three processes and a load balancer that hands each update to the next one."""

    def __init__(self, fake_server: FakeBotServer, database_url: str, size: int = 3) -> None:
        self.processes = []
        for n in range(size):
            port = free_port()
            self.processes.append(BotProcess(f"bot-{n + 1}", port,
                                             bot_env(fake_server, database_url, port)))
        self._next = itertools.cycle(self.processes)
        self.client = httpx.AsyncClient(timeout=10)
        self.handled_by: list[str] = []

    async def __aenter__(self) -> Cluster:
        for process in self.processes:
            await process.start()
        await asyncio.gather(*(p.wait_healthy(120) for p in self.processes))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        codes = await asyncio.gather(*(p.stop() for p in self.processes))
        assert codes == [0] * len(codes), "\n".join(p.log() for p in self.processes)

    async def post(self, update: dict[str, Any]) -> None:
        """The load balancer: round robin."""
        process = next(self._next)
        self.handled_by.append(process.name)
        assert await process.post_update(self.client, update) == 200

    async def post_to(self, process: BotProcess, update: dict[str, Any]) -> int:
        return await process.post_update(self.client, update)


class HttpPerson:
    """Someone whose every update may land on a different process; waits for the bot's reply
    before the next one, as a person reads before tapping."""

    def __init__(self, cluster: Cluster, api: Any, user_id: int = RESIDENT,
                 chat_id: int | None = None) -> None:
        self.cluster = cluster
        self.api = api
        self.user_id = user_id
        self.chat_id = chat_id

    async def _settle(self, before: int) -> list[Call]:
        chat = self.chat_id or self.user_id
        await wait_for(lambda: any(c.chat_id == chat or c.method == "answerCallbackQuery"
                                   for c in self.api.calls[before:]),
                       30, "the bot's reply", self.cluster.processes)
        # Then until nothing more arrives for a moment (a reply can be several messages).
        seen = -1
        while seen != len(self.api.calls):
            seen = len(self.api.calls)
            await asyncio.sleep(0.4)
        return self.api.calls[before:]

    async def send(self, text: str | None = None, **kwargs: Any) -> list[Call]:
        before = len(self.api.calls)
        await self.cluster.post(message_update(
            None, text, user_id=self.user_id, chat_id=self.chat_id, **kwargs).to_dict())
        return await self._settle(before)

    async def press(self, on: Call, label: str) -> list[Call]:
        before = len(self.api.calls)
        markup = on.params.get("reply_markup")
        await self.cluster.post(callback_update(
            None, on.button(label), user_id=self.user_id, chat_id=self.chat_id,
            message_text=on.text, message_id=int(on.params.get("message_id") or 1),
            reply_markup=markup if isinstance(markup, dict) else None).to_dict())
        return await self._settle(before)


def with_buttons(calls: list[Call]) -> Call:
    found = [c for c in calls if c.buttons]
    assert found, f"no message with buttons in {[(c.method, c.text[:40]) for c in calls]}"
    return found[-1]


def texts(calls: list[Call]) -> str:
    return "\n".join(c.text for c in calls)


async def count_rows(url: str, model: type, *where: Any) -> int:
    db = Database(url)
    try:
        async with db.session() as session:
            stmt = select(func.count()).select_from(model)
            for condition in where:
                stmt = stmt.where(condition)
            return int((await session.exec(stmt)).one())
    finally:
        await db.close()


async def test_a_resident_talks_to_three_processes_as_to_one(pg_settings, fake_server):
    url = pg_settings.database_url
    api = fake_server.api
    async with Cluster(fake_server, url) as cluster:
        resident = HttpPerson(cluster, api)
        # A report, one step per update, each on the next process.
        calls = await resident.send("/report")
        calls = await resident.press(with_buttons(calls), "积水")
        assert "描述问题" in texts(calls)
        calls = await resident.send("东长安街路口积水很深，已经没过膝盖")
        calls = await resident.press(with_buttons(calls), "跳过照片")
        assert "问题在哪里" in texts(calls)
        calls = await resident.send(location=TIANANMEN)
        calls = await resident.press(with_buttons(calls), "匿名反映")
        summary = with_buttons(calls)
        assert "没过膝盖" in summary.text and "东城区" in summary.text
        calls = await resident.press(summary, "提交")
        assert "#1" in texts(c for c in calls if c.chat_id == RESIDENT)
        assert set(cluster.handled_by) == {"bot-1", "bot-2", "bot-3"}

        # The district group gets the ticket once, whichever process drained the outbox.
        await wait_for(lambda: any(c.chat_id == DONGCHENG_GROUP for c in api.calls), 30,
                       "the group's post", cluster.processes)
        await asyncio.sleep(1.0)
        posts = [c for c in api.sent("sendMessage", DONGCHENG_GROUP) if "#1" in c.text]
        assert len(posts) == 1
        assert await count_rows(url, Ticket) == 1

        # Telegram delivers one update to two processes (a webhook answer timed out).
        question = message_update(None, "闻到煤气味怎么办", user_id=1002).to_dict()
        codes = await asyncio.gather(*(cluster.post_to(p, question)
                                       for p in cluster.processes[:2]))
        assert codes == [200, 200]
        await wait_for(lambda: bool(api.sent("sendMessage", 1002)), 30, "an answer",
                       cluster.processes)
        assert await cluster.post_to(cluster.processes[2], question) == 200
        await asyncio.sleep(1.5)
        assert len(api.sent("sendMessage", 1002)) == 1, "handled once"


async def seed_background_work(settings: Settings) -> int:
    """Before the processes start: subscribers and a warning due now, and an urgent ticket
    filed 31 minutes ago that nobody claimed (its claim deadline passed a minute ago)."""
    now = datetime.now(UTC)
    services = await build_services(settings, clock=FakeClock(now - timedelta(minutes=31)),
                                    migrate=False)
    try:
        await services.tickets.file(NewTicket(
            resident_id=RESIDENT, lang="zh", category="manhole", description="路口井盖丢了",
            district_id=DONGCHENG, routing_method="location", latitude=TIANANMEN[0],
            longitude=TIANANMEN[1]))
        services.clock.set(now)  # type: ignore[attr-defined]
        for chat in SUBSCRIBERS:
            await services.subscriptions.subscribe(chat, [CHAOYANG])
        view = await services.alerts.compose(ADMIN_ID, AlertDraft(
            hazard=Hazard.RAINSTORM, level=Level.RED, district_ids=(CHAOYANG,),
            expires_at=now + timedelta(hours=6)))
        await services.alerts.submit(ADMIN_ID, view.id)
        return view.id
    finally:
        await services.close()


async def test_due_work_is_done_once_by_three_processes(pg_settings, fake_server):
    url = pg_settings.database_url
    alert_id = await seed_background_work(pg_settings)
    api = fake_server.api

    def received() -> Counter[int]:
        return Counter(c.chat_id for c in api.sent("sendMessage")
                       if c.chat_id in SUBSCRIBERS)

    async with Cluster(fake_server, url) as cluster:
        # All three start together and all three find the warning due and the ticket overdue.
        await wait_for(lambda: len(received()) == len(SUBSCRIBERS), 60,
                       "every subscriber reached", cluster.processes)
        await wait_for(lambda: any("尚未认领" in c.text for c in
                                   api.sent("sendMessage", DONGCHENG_GROUP)),
                       60, "the escalation", cluster.processes)
        await asyncio.sleep(2.0)  # time for any duplicate to show up

        counts = received()
        assert set(counts.values()) == {1}, {c: n for c, n in counts.items() if n > 1}
        escalations = [c for c in api.sent("sendMessage", DONGCHENG_GROUP)
                       if "尚未认领" in c.text]
        assert len(escalations) == 1
        assert await count_rows(url, TicketEscalation) == 1
        assert await count_rows(url, AlertDelivery, AlertDelivery.alert_id == alert_id,
                                AlertDelivery.state == "sent") == len(SUBSCRIBERS)
        assert await count_rows(url, AlertNotice, AlertNotice.kind == "finished") == 1
        started = [line for p in cluster.processes for line in p.output
                   if f"alert #{alert_id} sending to" in line]
        assert len(started) == 1, "one process started the broadcast"
