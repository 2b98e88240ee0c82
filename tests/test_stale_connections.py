"""PostgreSQL restarted (or a proxy dropped idle connections): every pooled connection is dead.

Connections are not pinged before each use (three round trips per transaction); the first
transaction on a dead one fails, SQLAlchemy discards the whole pool, and ``Database.run``
retries on a fresh connection. Residents notice nothing, and ``/healthz`` stays healthy.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from sqlmodel import func, select

from quickresponse.models import QuestionLog
from tests.conftest import FIXTURES, _truncate
from tests.fakebot import message_update
from tests.test_faults import NOT_SAVED_EN

pytestmark = pytest.mark.postgres


# ``settings`` is parametrised over both databases by conftest; this is about PostgreSQL only.
@pytest.fixture(params=["postgres"])
def db_url(request: pytest.FixtureRequest, postgres_url: str) -> str:
    asyncio.run(_truncate(postgres_url))
    return postgres_url


@pytest.fixture
def kb_dir() -> Path:
    return FIXTURES / "kb_small"


async def drop_every_connection(database_url: str) -> int:
    """What a server restart does to the bot's pool: terminate all its backends."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        return len(await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await conn.close()


async def questions_logged(services) -> int:  # type: ignore[no-untyped-def]
    async def work(session):  # type: ignore[no-untyped-def]
        return int((await session.exec(select(func.count()).select_from(QuestionLog))).one())

    return await services.db.run(work)


async def test_a_question_after_every_connection_was_dropped_is_answered_and_logged(
        app, fake_api, services, db_url):
    ask = "what to do when I smell gas"
    await app.process_update(message_update(app.bot, ask, user_id=4101, language_code="en"))
    assert await drop_every_connection(db_url) > 0
    await app.process_update(message_update(app.bot, ask, user_id=4102, language_code="en"))
    (answer,) = fake_api.sent("sendMessage", chat_id=4102)
    assert "gas" in answer.text.lower() and NOT_SAVED_EN not in answer.text
    assert await questions_logged(services) == 2


async def test_the_health_check_stays_healthy_after_every_connection_was_dropped(
        services, db_url):
    assert await services.db.ping()
    assert await drop_every_connection(db_url) > 0
    assert await services.db.ping()
