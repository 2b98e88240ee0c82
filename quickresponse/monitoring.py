"""Gauges that come from the database, refreshed by a scheduler job.

Counters (updates, match outcomes, deliveries) are counted where things happen. How many tickets
are in each state and district is a fact of the database, so every process reads it every
``REFRESH_SECONDS`` and exports the same numbers: aggregate ``qr_tickets`` across instances with
``max``, not ``sum``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.metrics import TICKETS
from quickresponse.scheduling import Scheduler
from quickresponse.tickets.models import Ticket

log = logging.getLogger(__name__)

REFRESH_JOB = "metrics:tickets"
REFRESH_SECONDS = 30.0


class TicketGauge:
    """Keeps ``qr_tickets{state, district}`` equal to the tickets table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._shown: set[tuple[str, str]] = set()

    async def refresh(self) -> dict[tuple[str, str], int]:
        """Read the counts and set the gauge; a state a district no longer has goes to 0."""
        async def work(session: AsyncSession) -> list[tuple[str, str, int]]:
            rows = (await session.exec(
                select(Ticket.state, Ticket.district_id, func.count())
                .group_by(col(Ticket.state), col(Ticket.district_id)))).all()
            return [(str(state), str(district), int(n)) for state, district, n in rows]

        counts = {(state, district): n for state, district, n in await self._db.run(work)}
        for state, district in self._shown - set(counts):
            TICKETS.labels(state, district).set(0)
        for (state, district), n in counts.items():
            TICKETS.labels(state, district).set(n)
        self._shown |= set(counts)
        return counts

    async def restore_jobs(self, scheduler: Scheduler) -> None:
        scheduler.every(REFRESH_JOB, REFRESH_SECONDS, self._job)
        # Right away (wall time: this is about the process, not about the data's dates).
        scheduler.at(f"{REFRESH_JOB}:start", datetime.now(UTC), self._job)

    async def _job(self) -> None:
        try:
            await self.refresh()
        except Exception:  # a metric must never take the bot down; the next run retries
            log.warning("could not refresh the tickets gauge", exc_info=True)
