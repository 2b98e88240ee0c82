"""Handle each Telegram update once, across redeliveries and processes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.metrics import DUPLICATE_UPDATES
from quickresponse.models import ProcessedUpdate


class UpdateLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def first_time(self, update_id: int) -> bool:
        """Record ``update_id``; False when some process already took it."""
        now = self._clock.now()

        async def work(session):  # type: ignore[no-untyped-def]
            session.add(ProcessedUpdate(update_id=update_id, received_at=now))
            await session.flush()

        try:
            await self._db.run(work)
        except IntegrityError:
            DUPLICATE_UPDATES.inc()
            return False
        return True

    async def purge(self, *, keep: timedelta = timedelta(days=2)) -> int:
        """Forget old ids (Telegram never redelivers after a day)."""
        cutoff = self._clock.now() - keep

        async def work(session):  # type: ignore[no-untyped-def]
            result = await session.exec(
                delete(ProcessedUpdate).where(ProcessedUpdate.received_at < cutoff))
            return result.rowcount or 0

        return await self._db.run(work)
