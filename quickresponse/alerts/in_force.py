"""Whether any warning is in force, known without a database query per resident's question.

Every answer carries the warnings in force for the resident's districts, and most of the time
there are none. :class:`InForce` keeps, per process, the end times of the alerts in force: read
from the database at most every ``REFRESH_SECONDS`` (so that an alert another process starts is
shown here within that time) and forgotten at once when this process changes an alert. Only
while one is in force does an answer pay for the per-resident query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from quickresponse.clock import Clock

REFRESH_SECONDS = 2.0
# Reads the end times of the alerts in force now from the database.
ReadEnds = Callable[[], Awaitable[tuple[datetime, ...]]]


class InForce:
    """The end times of the alerts in force, refreshed at most every ``refresh_seconds``."""

    def __init__(self, read_ends: ReadEnds, clock: Clock, *, monotonic: Callable[[], float],
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._read_ends = read_ends
        self._clock = clock
        self._monotonic = monotonic
        self._refresh_seconds = refresh_seconds
        self._ends: tuple[datetime, ...] = ()
        self._fresh_until = float("-inf")
        # Bumped by forget(): a read that began before a change must not be kept after it.
        self._generation = 0
        self._reading: asyncio.Future[tuple[datetime, ...]] | None = None
        self._reading_generation = -1

    def forget(self) -> None:
        """This process changed an alert: the next question reads the database again."""
        self._generation += 1
        self._fresh_until = float("-inf")

    async def any_now(self) -> bool:
        """Whether an alert may be in force now (raises StorageUnavailable if it can't tell)."""
        if self._monotonic() < self._fresh_until:
            ends = self._ends
        else:
            ends = await self._read()
        now = self._clock.now()
        return any(end > now for end in ends)

    async def _read(self) -> tuple[datetime, ...]:
        # Questions arriving together while the summary is stale share one query.
        reading = self._reading
        if reading is None or reading.done() or self._reading_generation != self._generation:
            reading = asyncio.ensure_future(self._read_and_keep(self._generation))
            self._reading, self._reading_generation = reading, self._generation
        return await asyncio.shield(reading)

    async def _read_and_keep(self, generation: int) -> tuple[datetime, ...]:
        ends = await self._read_ends()
        if generation == self._generation:
            self._ends = ends
            self._fresh_until = self._monotonic() + self._refresh_seconds
        return ends
