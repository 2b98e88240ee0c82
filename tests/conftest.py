"""Shared fixtures: databases (SQLite and PostgreSQL), settings, services, the fake Bot API.

Every storage test runs on both databases. PostgreSQL tests skip with a reason when the server
is not reachable, except when ``QR_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from quickresponse.clock import FakeClock
from quickresponse.db import Database, alembic_config
from quickresponse.services import Services, build_services
from quickresponse.settings import DEFAULT_KB_DIR, Settings, load_settings
from tests.fakebot import TOKEN, FakeBotAPI

PG_URL = os.environ.get("QR_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("QR_REQUIRE_POSTGRES") == "1"
ADMIN_ID = 9001
FIXTURES = Path(__file__).parent / "fixtures"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run, dropped at the end."""
    name = f"qr_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        reason = f"PostgreSQL not reachable at {PG_URL.split('@')[-1]}: {type(exc).__name__}"
        if REQUIRE_PG:
            pytest.fail(reason + " (QR_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    base = PG_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    command.upgrade(alembic_config(url), "heads")
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file made by the real migrations once per run; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "migrated.db"
    command.upgrade(alembic_config(f"sqlite+aiosqlite:///{path}"), "heads")
    return path


def _fresh_sqlite(template: Path, directory: Path) -> str:
    target = directory / "qr.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a new SQLite file, or the run's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return _fresh_sqlite(request.getfixturevalue("sqlite_template"), tmp_path)
    url = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


async def _truncate(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            rows = await conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"))
            tables = [r[0] for r in rows]
            if tables:
                quoted = ", ".join(f'"{t}"' for t in tables)
                await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        await db.close()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return _fresh_sqlite(sqlite_template, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kb_dir() -> Path:
    return DEFAULT_KB_DIR


@pytest.fixture
def settings(db_url: str, kb_dir: Path) -> Settings:
    return load_settings(
        _env_file=None,
        telegram_token=TOKEN,
        database_url=db_url,
        admin_ids=str(ADMIN_ID),
        knowledge_base_dir=kb_dir,
        default_language="zh",
    )


@pytest.fixture
async def services(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    built = await build_services(settings, clock=clock, migrate=False)
    yield built
    await built.close()


@pytest.fixture
def fake_api() -> FakeBotAPI:
    return FakeBotAPI()


@pytest.fixture
async def app(services: Services, fake_api: FakeBotAPI):  # type: ignore[no-untyped-def]
    from quickresponse.telegram.app import build_application

    application = build_application(services, request=fake_api, rate_limit=False)
    async with application:
        yield application
