"""Throw-away databases for a benchmark: a SQLite file or a PostgreSQL database of its own.

Each benchmark creates its database, migrates it with the real migrations, and drops it when
done, so runs never see each other's rows (and never touch the test databases).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command

from quickresponse.db import alembic_config

PG_ADMIN_URL = os.environ.get(
    "QR_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
KINDS = ("sqlite", "postgres")


class DatabaseUnavailable(RuntimeError):
    """The benchmark's database server cannot be reached (the row is skipped, with the reason)."""


async def _pg_admin(sql: str) -> None:
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        where = PG_ADMIN_URL.split("@")[-1]
        raise DatabaseUnavailable(f"PostgreSQL not reachable at {where}: {exc}") from exc
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_database(kind: str, *, migrate: bool = True) -> AsyncIterator[str]:
    """Yield the SQLAlchemy URL of a new, migrated database; drop it afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="qr-bench-") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            if migrate:
                await asyncio.to_thread(command.upgrade, alembic_config(url), "heads")
            yield url
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}")
    name = f"qr_bench_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        if migrate:
            await asyncio.to_thread(command.upgrade, alembic_config(url), "heads")
        yield url
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
