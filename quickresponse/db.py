"""Database engine, sessions and migrations.

One :class:`Database` per process, built by :func:`open_database`. SQLite (aiosqlite) is the
embedded default, PostgreSQL (asyncpg) the production database; both run the same alembic
migrations from ``migrations/``.

Work that every message does (taking its update id, reading the resident's conversation,
logging the question) goes through a :class:`Batcher`: what the messages handled at the same
moment need is done in one shared transaction instead of one transaction each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

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
    # No ping before each use (three round trips, a sixth of a message's CPU at low load): a
    # connection the server dropped fails its transaction, SQLAlchemy empties the pool, and
    # Database.run retries on a fresh one (tests/test_stale_connections.py).
    return create_async_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)


class Database:
    """The engine and a session factory, plus migration and retry helpers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._transactions = _SharedTransactions(self)

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

    def batcher(self, work: BatchWork[ItemT, ResultT], *, order: int) -> Batcher[ItemT, ResultT]:
        """A :class:`Batcher` for ``work``; ``order`` places its work in a shared transaction
        (lower first; writes before reads, so that SQLite takes its write lock first)."""
        return Batcher(self._transactions, work, order)

    async def upgrade(self, revision: str = "heads") -> None:
        """Apply pending migrations (alembic runs its own event loop, so in a thread)."""
        await asyncio.to_thread(command.upgrade, alembic_config(self.url), revision)

    async def downgrade(self, revision: str) -> None:
        await asyncio.to_thread(command.downgrade, alembic_config(self.url), revision)

    async def ping(self) -> bool:
        # Twice: a pooled connection the server dropped fails once (and empties the pool).
        for _attempt in range(2):
            try:
                async with self.engine.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")
                return True
            except Exception:  # noqa: BLE001 - any failure means "not reachable"
                continue
        return False

    async def close(self) -> None:
        # A graceful stop loses nothing that was handed to a batcher.
        await self._transactions.drain()
        await self.engine.dispose()


class Batcher(Generic[ItemT, ResultT]):
    """One kind of batched work (``work`` does a list of items in a session); its items are done
    in the database's next shared transaction (see :class:`_SharedTransactions`)."""

    def __init__(self, transactions: _SharedTransactions, work: BatchWork[ItemT, ResultT],
                 order: int) -> None:
        self._transactions = transactions
        self.work = work
        self.order = order

    async def submit(self, item: ItemT) -> ResultT:
        """Do ``item`` in the next shared transaction; return its result once committed."""
        return await self._transactions.submit(self, item)  # type: ignore[no-any-return]


_Waiting = list[tuple[Any, "asyncio.Future[Any]"]]


class _SharedTransactions:
    """Group commit: the items of concurrent callers, of every batcher, in one transaction.

    A caller submits an item and waits for its own result. While a transaction runs, the items
    submitted meanwhile wait together for the next one, so under load one transaction serves
    many messages, and a lone message is not delayed (its transaction starts at the next turn
    of the event loop). Within a transaction the batchers' work runs in their ``order``, the
    same in every process, so that two processes take row locks in the same order and cannot
    deadlock.

    Each transaction runs through :meth:`Database.run` (retried when the database is briefly
    away); when it fails with ``StorageUnavailable`` every caller in it gets that, as each
    would have from a transaction of its own. Any other failure is narrowed down: each
    batcher's items are tried again in a transaction of their own, so one kind of work cannot
    fail another.
    """

    def __init__(self, db: Database, max_items: int = 200) -> None:
        self._db = db
        self._max_items = max_items
        self._pending: dict[Batcher[Any, Any], _Waiting] = {}
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, batcher: Batcher[Any, Any], item: Any) -> Any:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()
        self._pending.setdefault(batcher, []).append((item, result))
        if self._flushing is None:
            self._flushing = loop.create_task(self._flush())
        return await result

    async def drain(self) -> None:
        """Wait until everything submitted so far has been done."""
        while self._flushing is not None:
            # Its callers get its errors; waiting for it must not raise them here.
            await asyncio.wait({self._flushing})

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch: dict[Batcher[Any, Any], _Waiting] = {}
                for batcher in sorted(self._pending, key=lambda b: b.order):
                    waiting = self._pending[batcher]
                    batch[batcher] = waiting[:self._max_items]
                    del waiting[:self._max_items]
                    if not waiting:
                        del self._pending[batcher]
                await self._run(batch)
        finally:
            self._flushing = None
            # Only if this task was cancelled: nobody may be left waiting for good.
            for waiting in self._pending.values():
                for _item, result in waiting:
                    result.cancel()
            self._pending.clear()

    async def _run(self, batch: dict[Batcher[Any, Any], _Waiting]) -> None:
        async def work(session: AsyncSession) -> list[list[Any]]:
            done = []
            for batcher, waiting in batch.items():
                results = list(await batcher.work(session, [item for item, _ in waiting]))
                if len(results) != len(waiting):
                    raise AssertionError("a batch's work returns one result per item")
                done.append(results)
            return done

        try:
            done = await self._db.run(work)
        except StorageUnavailable as exc:
            _settle(batch.values(), exc)
            return
        except Exception as exc:  # noqa: BLE001 - handed to the callers, narrowed down first
            if len(batch) == 1:
                _settle(batch.values(), exc)
                return
            log.warning("a shared transaction failed (%s); its kinds of work go one by one",
                        type(exc).__name__)
            for batcher, waiting in batch.items():
                await self._run({batcher: waiting})
            return
        except BaseException:
            _settle(batch.values(), None)
            raise
        for waiting, results in zip(batch.values(), done, strict=True):
            for (_item, result), value in zip(waiting, results, strict=True):
                if not result.done():
                    result.set_result(value)


def _settle(batches: Iterable[_Waiting], error: BaseException | None) -> None:
    """Hand ``error`` to everyone waiting (None: they are cancelled)."""
    for waiting in batches:
        for _item, result in waiting:
            if result.done():
                continue
            if error is None:
                result.cancel()
            else:
                result.set_exception(error)


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix) or url == prefix + ":memory:":
        return None
    return Path(url[len(prefix):])
