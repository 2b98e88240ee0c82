"""Time limits and automatic escalation of tickets.

Each open ticket runs against one deadline: ``claim_due`` while it is new, ``resolve_due`` once it
is claimed (or reopened). When the deadline passes, step 1 re-posts it to the district group;
``admins_after`` later (per SLA class in city.yaml) step 2 tells the admins. A resolved ticket
nobody rates is closed after ``city.auto_close_after``.

The database decides, the scheduler only wakes us up: :meth:`SlaMonitor.run_due` looks at what is
due and fires each step through :meth:`TicketService.escalate_step`, whose unique key
(ticket, cycle, step) makes a step fire once even when a job fires twice, late, or in two
processes. :meth:`SlaMonitor.restore_jobs` rebuilds one date job per ticket (``ticket:<id>:claim``,
``ticket:<id>:resolve``, ``ticket:<id>:autoclose``) plus a periodic sweep from the database at
start, and every committed change reschedules its ticket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.clock import Clock, as_utc
from quickresponse.db import Database
from quickresponse.districts import City
from quickresponse.scheduling import Scheduler
from quickresponse.tickets.errors import TicketNotFound
from quickresponse.tickets.models import Ticket
from quickresponse.tickets.service import State, TicketService, TicketView, sla_stage

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "tickets:sla:sweep"
SWEEP_SECONDS = 60.0
_STAGES = ("claim", "resolve", "autoclose")


@dataclass(frozen=True)
class Escalation:
    """One step that fired."""

    ticket_id: int
    stage: str  # claim | resolve
    level: int  # 1 district group, 2 admins


@dataclass(frozen=True)
class _Due:
    """What the monitor needs to know about one ticket."""

    id: int
    state: str
    cycle: int
    category: str
    urgent: bool
    claim_due: datetime
    resolve_due: datetime
    escalation_level: int
    resolved_at: datetime | None


class SlaMonitor:
    """Escalates overdue tickets and closes unrated ones; one per process."""

    def __init__(self, db: Database, clock: Clock, city: City, tickets: TicketService) -> None:
        self._db = db
        self._clock = clock
        self.city = city
        self._tickets = tickets
        self._scheduler: Scheduler | None = None
        tickets.add_change_listener(self._on_change)

    # -- deadlines -----------------------------------------------------------------------------

    def step_time(self, due: _Due | TicketView, level: int) -> datetime | None:
        """When escalation step ``level`` (1 or 2) of the ticket's current stage is due."""
        stage = sla_stage(due.state)
        if stage is None or level not in (1, 2):
            return None
        base = as_utc(due.claim_due if stage == "claim" else due.resolve_due)
        if level == 1:
            return base
        return base + self.city.limits(due.category, urgent=due.urgent).admins_after

    def next_action(self, due: _Due | TicketView) -> tuple[str, datetime] | None:
        """(stage, when) of the next thing the monitor will do for this ticket, or None."""
        stage = sla_stage(due.state)
        if stage is not None:
            if due.escalation_level >= 2:
                return None
            when = self.step_time(due, due.escalation_level + 1)
            return None if when is None else (stage, when)
        if due.state == State.RESOLVED and due.resolved_at is not None:
            return "autoclose", as_utc(due.resolved_at) + self.city.auto_close_after
        return None

    # -- the work ------------------------------------------------------------------------------

    async def run_due(self, now: datetime | None = None) -> list[Escalation]:
        """Fire every escalation step that is due at ``now`` and close unrated tickets whose
        time ran out. Idempotent: running it twice fires nothing new."""
        now = as_utc(now or self._clock.now())
        fired: list[Escalation] = []
        for due in await self._load_due(now):
            fired += await self._run_one(due, now)
        return fired

    async def run_ticket(self, ticket_id: int) -> list[Escalation]:
        """The date job of one ticket: do what is due for it and schedule its next step."""
        now = self._clock.now()
        rows = await self._load_due(now, ticket_id=ticket_id)
        fired: list[Escalation] = []
        for due in rows:
            fired += await self._run_one(due, now)
        if not fired and not rows:
            # Nothing due (yet, or any more): make sure the next wake-up is right.
            try:
                self._on_change(await self._tickets.view(ticket_id))
            except TicketNotFound:
                self._cancel(ticket_id)
        return fired

    async def sweep(self) -> None:
        """The periodic job: whatever a lost date job would have done."""
        try:
            await self.run_due()
        except Exception:
            log.exception("SLA sweep failed; the next sweep retries")

    async def _run_one(self, due: _Due, now: datetime) -> list[Escalation]:
        stage = sla_stage(due.state)
        fired: list[Escalation] = []
        if stage is None:
            if due.state == State.RESOLVED:
                await self._tickets.close_unrated(due.id)
            return fired
        # Step by step: after a long outage both steps may be due and both fire, in order.
        for level in (1, 2):
            when = self.step_time(due, level)
            if level <= due.escalation_level or when is None or when > now:
                continue
            outcome = await self._tickets.escalate_step(
                due.id, cycle=due.cycle, stage=stage, level=level, deadline=when)
            if outcome is not None:
                fired.append(Escalation(due.id, stage, level))
        return fired

    async def _load_due(self, now: datetime, *, ticket_id: int | None = None) -> list[_Due]:
        """Tickets whose current deadline has passed (candidates; each step re-checks)."""
        autoclose_before = now - self.city.auto_close_after

        async def work(session: AsyncSession) -> list[_Due]:
            stmt = select(Ticket).where(or_(
                (col(Ticket.state) == State.NEW.value) & (col(Ticket.claim_due) <= now),
                col(Ticket.state).in_((State.CLAIMED.value, State.REOPENED.value))
                & (col(Ticket.resolve_due) <= now),
                (col(Ticket.state) == State.RESOLVED.value)
                & (col(Ticket.resolved_at) <= autoclose_before),
            ))
            if ticket_id is not None:
                stmt = stmt.where(col(Ticket.id) == ticket_id)
            rows = (await session.exec(stmt.order_by(col(Ticket.id)))).all()
            return [_as_due(r) for r in rows]

        return await self._db.run(work)

    # -- jobs ----------------------------------------------------------------------------------

    async def restore_jobs(self, scheduler: Scheduler) -> int:
        """Schedule the sweep and one date job per ticket with a pending deadline, from the
        database; returns the number of ticket jobs."""
        self._scheduler = scheduler
        scheduler.every(SWEEP_JOB_ID, SWEEP_SECONDS, self.sweep)

        async def work(session: AsyncSession) -> list[_Due]:
            rows = (await session.exec(select(Ticket).where(col(Ticket.state).in_((
                State.NEW.value, State.CLAIMED.value, State.REOPENED.value,
                State.RESOLVED.value))))).all()
            return [_as_due(r) for r in rows]

        count = 0
        for due in await self._db.run(work):
            if self._schedule(due.id, self.next_action(due)):
                count += 1
        log.info("SLA: %d ticket deadline job(s) restored", count)
        return count

    def _on_change(self, view: TicketView) -> None:
        if self._scheduler is not None:
            self._schedule(view.id, self.next_action(view))

    def _schedule(self, ticket_id: int, action: tuple[str, datetime] | None) -> bool:
        if self._scheduler is None:
            return False
        self._cancel(ticket_id, keep=action[0] if action else None)
        if action is None:
            return False
        stage, when = action
        # A deadline that passed while the bot was down runs now rather than being dropped
        # as a misfire.
        when = max(when, self._clock.now())
        self._scheduler.at(job_id(ticket_id, stage), when, self.run_ticket, ticket_id)
        return True

    def _cancel(self, ticket_id: int, keep: str | None = None) -> None:
        if self._scheduler is None:
            return
        for stage in _STAGES:
            if stage != keep:
                self._scheduler.cancel(job_id(ticket_id, stage))


def job_id(ticket_id: int, stage: str) -> str:
    return f"ticket:{ticket_id}:{stage}"


def _as_due(row: Ticket) -> _Due:
    assert row.id is not None
    return _Due(
        id=row.id, state=str(row.state), cycle=row.cycle, category=row.category,
        urgent=row.urgent, claim_due=as_utc(row.claim_due), resolve_due=as_utc(row.resolve_due),
        escalation_level=row.escalation_level,
        resolved_at=None if row.resolved_at is None else as_utc(row.resolved_at),
    )
