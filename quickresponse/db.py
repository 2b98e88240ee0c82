"""Database engine, sessions and migrations.

One :class:`Database` per process, built by :func:`open_database`. SQLite (aiosqlite) is the
embedded default, PostgreSQL (asyncpg) the production database; both run the same alembic
migrations from ``migrations/``.

Work that every message does (recording its update id, reading the resident's conversation,
logging the question) goes through a :class:`Batcher`: the messages handled at the same moment
share one transaction instead of paying for one each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Generic, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.errors import StorageUnavailable
from quickresponse.metrics import DB_RETRIES
from quickresponse.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
T = TypeVar("T")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
# Does the work of a batch in one session: one result per item, in the items' order.
BatchWork = Callable[[AsyncSession, list[ItemT]], Awaitable[Sequence[ResultT]]]


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    # Statement parameters hold what residents typed; errors (and so logs) must not show them.
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                               hide_parameters=True)


class Database:
    """The engine and a session factory, plus migration and retry helpers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._batchers: list[Batcher] = []  # type: ignore[type-arg]

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def run(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 3
    ) -> T:
        """Run ``work`` in its own transaction, retrying when the database is briefly away.

        Raises :class:`StorageUnavailable` after the last attempt so that the caller can tell
        the user to resend instead of losing the message silently.
        """
        delay = 0.2
        for attempt in range(1, attempts + 1):
            try:
                async with self.session() as session:
                    return await work(session)
            except (OperationalError, InterfaceError, ConnectionError, OSError) as exc:
                failure: Exception = exc
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                failure = exc
            if attempt == attempts:
                raise StorageUnavailable(str(failure)) from failure
            log.warning("database unavailable (attempt %d/%d), retrying", attempt, attempts)
            DB_RETRIES.inc()
            await asyncio.sleep(delay)
            delay *= 3
        raise AssertionError("unreachable")

    def batcher(self, work: BatchWork[ItemT, ResultT], *,
                max_items: int = 200) -> Batcher[ItemT, ResultT]:
        """A :class:`Batcher` for ``work``, drained by :meth:`close`."""
        batcher = Batcher(self, work, max_items=max_items)
        self._batchers.append(batcher)
        return batcher

    async def upgrade(self, revision: str = "heads") -> None:
        """Apply pending migrations (alembic runs its own event loop, so in a thread)."""
        await asyncio.to_thread(command.upgrade, alembic_config(self.url), revision)

    async def downgrade(self, revision: str) -> None:
        await asyncio.to_thread(command.downgrade, alembic_config(self.url), revision)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False

    async def close(self) -> None:
        # A graceful stop loses nothing that was handed to a batcher.
        for batcher in self._batchers:
            await batcher.drain()
        await self.engine.dispose()


class Batcher(Generic[ItemT, ResultT]):
    """Group commit: the items of concurrent callers done in one transaction.

    A caller submits an item and waits for its own result. While a batch's transaction runs,
    the items submitted meanwhile wait together for the next one, so under load one transaction
    serves many messages, and a lone message is not delayed (its batch starts at the next turn
    of the event loop). Each batch runs through :meth:`Database.run` (retried when the database
    is briefly away); when it fails, every caller in it gets the error (``StorageUnavailable``
    after the retries), as each would have from a transaction of its own.
    """

    def __init__(self, db: Database, work: BatchWork[ItemT, ResultT], *,
                 max_items: int = 200) -> None:
        self._db = db
        self._work = work
        self._max_items = max_items
        self._pending: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, item: ItemT) -> ResultT:
        """Do ``item`` in the next batch; return its result once that batch has committed."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[ResultT] = loop.create_future()
        self._pending.append((item, result))
        if self._flushing is None:
            self._flushing = loop.create_task(self._flush())
        return await result

    async def drain(self) -> None:
        """Wait until everything submitted so far has been done."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:self._max_items]
                del self._pending[:self._max_items]
                await self._run(batch)
        finally:
            self._flushing = None
            # Only if this task was cancelled: nobody may be left waiting for good.
            for _item, waiting in self._pending:
                waiting.cancel()
            self._pending.clear()

    async def _run(self, batch: list[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = list(await self._db.run(lambda session: self._work(session, items)))
            if len(results) != len(batch):
                raise AssertionError("a batch's work returns one result per item")
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
            for _item, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(exc)
            return
        except BaseException:
            for _item, waiting in batch:
                waiting.cancel()
            raise
        for (_item, waiting), result in zip(batch, results, strict=True):
            if not waiting.done():
                waiting.set_result(result)


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix) or url == prefix + ":memory:":
        return None
    return Path(url[len(prefix):])
