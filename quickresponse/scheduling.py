"""One APScheduler per process, for deadlines and scheduled alerts.

The database is the source of truth: a job only says "look at this now". Each feature keeps an
idempotent ``run_due(now)``-style method that does whatever is due and records that it did it, so
a job that fires twice, late, or in two processes at once does the work once. Jobs have explicit
ids (``feature:thing:step``) and are rebuilt from the database at start by each feature's
``restore_jobs``; a periodic sweep catches anything a lost job would have missed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from quickresponse.clock import as_utc

log = logging.getLogger(__name__)

Job = Callable[..., Awaitable[Any]]


class Scheduler:
    """A thin wrapper that makes every job replaceable by id and tolerant of lateness."""

    def __init__(self, *, misfire_grace_seconds: int = 3600) -> None:
        self._scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": misfire_grace_seconds,
            },
        )

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def start(self) -> None:
        if not self._scheduler.running:
            self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def at(self, job_id: str, when: datetime, job: Job, *args: Any) -> None:
        """Run ``job(*args)`` at ``when`` (replacing any job with the same id)."""
        self._scheduler.add_job(
            job, DateTrigger(run_date=as_utc(when)), args=args, id=job_id,
            replace_existing=True,
        )

    def every(self, job_id: str, seconds: float, job: Job, *args: Any) -> None:
        self._scheduler.add_job(
            job, IntervalTrigger(seconds=seconds), args=args, id=job_id, replace_existing=True
        )

    def cancel(self, job_id: str) -> bool:
        job = self._scheduler.get_job(job_id)
        if job is None:
            return False
        job.remove()
        return True

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self._scheduler.get_jobs())

    def next_run(self, job_id: str) -> datetime | None:
        job = self._scheduler.get_job(job_id)
        if job is None:
            return None
        # Before start() a job is pending and has no next_run_time yet; ask its trigger.
        when = getattr(job, "next_run_time", None)
        if when is None:
            when = job.trigger.get_next_fire_time(None, datetime.now(UTC))
        return when
