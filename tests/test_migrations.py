"""Migrations: upgrade to the heads, down to base and up again, on SQLite and PostgreSQL; the
models match the migrated schema exactly."""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

import quickresponse
from quickresponse.db import Database, alembic_config
from tests.conftest import PG_URL, REQUIRE_PG, _pg_admin


def _import_every_model() -> None:
    # The same discovery migrations/env.py does, so that the metadata holds every table.
    for module in pkgutil.walk_packages(quickresponse.__path__, "quickresponse."):
        if module.name.endswith("models"):
            importlib.import_module(module.name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it: a new SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"qr_migrations_{uuid.uuid4().hex[:12]}"
    try:
        await _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        reason = f"PostgreSQL not reachable: {type(exc).__name__}"
        if REQUIRE_PG:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def _differences(db: Database) -> list[object]:
    _import_every_model()

    def compare(sync_conn) -> list[object]:  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(compare)


async def _revisions(db: Database) -> set[str]:
    def current(sync_conn) -> set[str]:  # type: ignore[no-untyped-def]
        return set(MigrationContext.configure(sync_conn).get_current_heads())

    async with db.engine.connect() as conn:
        return await conn.run_sync(current)


async def test_upgrade_downgrade_upgrade_and_models_match_the_schema(empty_url: str):
    heads = set(ScriptDirectory.from_config(alembic_config(empty_url)).get_heads())
    db = Database(empty_url)
    try:
        await db.upgrade()
        assert await _revisions(db) == heads
        tables = await _tables(db)
        assert {"users", "question_log", "conversation_state"} <= tables
        assert await _differences(db) == []

        await db.downgrade("base")
        assert await _tables(db) <= {"alembic_version"}
        assert await _revisions(db) == set()

        await db.upgrade()
        assert await _tables(db) == tables
        assert await _differences(db) == []
    finally:
        await db.close()


def test_every_table_in_the_models_is_created_by_a_migration(tmp_path: Path):
    # Catches a model added without its migration even when compare_metadata would be skipped.
    from alembic import command

    url = f"sqlite+aiosqlite:///{tmp_path / 'tables.db'}"
    command.upgrade(alembic_config(url), "heads")
    _import_every_model()
    import sqlite3

    with sqlite3.connect(tmp_path / "tables.db") as conn:
        created = {row[0] for row in conn.execute("SELECT name FROM sqlite_master "
                                                  "WHERE type = 'table'")}
    assert set(SQLModel.metadata.tables) <= created
