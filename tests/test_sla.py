"""Time limits and escalation with an injected clock, including a restart and two processes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from quickresponse.clock import FakeClock
from quickresponse.db import Database
from quickresponse.districts import load_city
from quickresponse.services import build_services
from quickresponse.tickets.service import NewTicket, TicketService
from quickresponse.tickets.sla import SWEEP_JOB_ID, Escalation, SlaMonitor, job_id
from tests.conftest import ADMIN_ID

CHAOYANG, HAIDIAN = "110105", "110108"
GROUP, HAIDIAN_GROUP, STAFF, RESIDENT = -100105, -100108, 501, 1001


def report(**overrides) -> NewTicket:
    values = dict(resident_id=RESIDENT, lang="en", category="waterlogging",
                  description="Street flooded", district_id=CHAOYANG, routing_method="chosen")
    values.update(overrides)
    return NewTicket(**values)


@pytest.fixture
async def setup(services):
    await services.tickets.add_staff(None, STAFF, CHAOYANG, display_name="Officer Wang")
    await services.tickets.link_group(ADMIN_ID, CHAOYANG, GROUP)
    await services.tickets.link_group(ADMIN_ID, HAIDIAN, HAIDIAN_GROUP)
    return services


async def escalations(services, ticket_id: int) -> list[tuple[str, int, str]]:
    """(audience, recipient, step) of each escalation message queued for the ticket since the
    last call (the messages are marked sent, as the Telegram side does)."""
    notes = await services.tickets.take_notifications(limit=500)
    for note in notes:
        await services.tickets.mark_sent(note.id)
    return [(n.audience, n.recipient_id, f"{n.params['stage']}-{n.params['step']}")
            for n in notes if n.kind == "escalated" and n.ticket_id == ticket_id]


async def test_an_unclaimed_urgent_ticket_goes_to_the_group_then_the_admins_once_each(
        setup, clock):
    services = setup
    sla = services.ticket_sla
    ticket = (await services.tickets.file(report())).ticket  # claim within 30 minutes
    clock.advance(minutes=29)
    assert await sla.run_due() == []
    clock.advance(minutes=2)
    assert await sla.run_due() == [Escalation(ticket.id, "claim", 1)]
    assert await sla.run_due() == []
    assert await escalations(services, ticket.id) == [("district", GROUP, "claim-1")]
    view = await services.tickets.view(ticket.id)
    assert view.escalation_level == 1
    assert view.events[-1].action == "escalated" and view.events[-1].actor_id is None
    clock.advance(minutes=30)  # admins_after for urgent calls
    assert await sla.run_due() == [Escalation(ticket.id, "claim", 2)]
    assert await sla.run_due(clock.now() + timedelta(days=1)) == []
    # No admin chat configured: each admin is told directly.
    assert await escalations(services, ticket.id) == [("admins", ADMIN_ID, "claim-2")]


async def test_after_a_long_outage_both_steps_fire_in_order(setup, clock):
    services = setup
    ticket = (await services.tickets.file(report())).ticket
    clock.advance(hours=5)
    fired = await services.ticket_sla.run_due()
    assert fired == [Escalation(ticket.id, "claim", 1), Escalation(ticket.id, "claim", 2)]


async def test_a_claimed_ticket_runs_against_its_resolution_deadline(setup, clock):
    services = setup
    ticket = (await services.tickets.file(report())).ticket
    clock.advance(minutes=10)
    await services.tickets.claim(ticket.id, STAFF)
    clock.advance(minutes=100)  # 1 h 50 min after filing: within the 2 h limit
    assert await services.ticket_sla.run_due() == []
    clock.advance(minutes=11)
    assert await services.ticket_sla.run_due() == [Escalation(ticket.id, "resolve", 1)]
    await services.tickets.resolve(ticket.id, STAFF, "Pumped out")
    clock.advance(hours=3)
    assert await services.ticket_sla.run_due() == []


async def test_a_transfer_starts_a_new_cycle_of_escalation(setup, clock):
    services = setup
    ticket = (await services.tickets.file(report())).ticket
    clock.advance(minutes=31)
    assert await services.ticket_sla.run_due() == [Escalation(ticket.id, "claim", 1)]
    await services.tickets.transfer(ticket.id, ADMIN_ID, HAIDIAN, "Wrong district")
    clock.advance(minutes=29)
    assert await services.ticket_sla.run_due() == []
    clock.advance(minutes=2)
    assert await services.ticket_sla.run_due() == [Escalation(ticket.id, "claim", 1)]
    assert ("district", HAIDIAN_GROUP, "claim-1") in await escalations(services, ticket.id)


async def test_a_resolved_ticket_nobody_rates_is_closed_after_a_week(setup, clock):
    services = setup
    rated = (await services.tickets.file(report())).ticket
    unrated = (await services.tickets.file(report())).ticket
    for t in (rated, unrated):
        await services.tickets.claim(t.id, STAFF)
        await services.tickets.resolve(t.id, STAFF, "Done")
    await services.tickets.rate(rated.id, RESIDENT, solved=True, satisfaction="satisfied")
    clock.advance(days=6, hours=23)
    await services.ticket_sla.run_due()
    assert (await services.tickets.view(unrated.id)).state == "resolved"
    clock.advance(hours=2)
    await services.ticket_sla.run_due()
    closed = await services.tickets.view(unrated.id)
    assert closed.state == "closed" and closed.satisfaction is None
    assert closed.events[-1].action == "auto_closed"


async def test_a_restart_between_filing_and_the_deadline_still_escalates_once(
        settings, clock):
    first = await build_services(settings, clock=clock, migrate=False)
    try:
        await first.tickets.link_group(ADMIN_ID, CHAOYANG, GROUP)
        ticket = (await first.tickets.file(report())).ticket
    finally:
        await first.close()
    clock.advance(minutes=20)
    # The bot comes back: new services on the same database.
    second = await build_services(settings, clock=clock, migrate=False)
    try:
        clock.advance(minutes=15)
        assert await second.ticket_sla.run_due() == [Escalation(ticket.id, "claim", 1)]
        assert await second.ticket_sla.run_due() == []
        assert await escalations(second, ticket.id) == [("district", GROUP, "claim-1")]
    finally:
        await second.close()
    # And once more after another restart: the step is not repeated.
    third = await build_services(settings, clock=clock, migrate=False)
    try:
        assert await third.ticket_sla.run_due() == []
    finally:
        await third.close()


async def test_two_processes_sweeping_at_once_fire_each_step_once(setup, db_url, clock):
    services = setup
    tickets = [(await services.tickets.file(report())).ticket for _ in range(3)]
    clock.advance(hours=1, minutes=1)
    city = load_city("beijing")
    databases = [Database(db_url) for _ in range(2)]
    monitors = []
    for db in databases:
        service = TicketService(db, clock, city, admin_ids=frozenset({ADMIN_ID}))
        monitors.append(SlaMonitor(db, clock, city, service))
    try:
        results = await asyncio.gather(*(m.run_due() for m in monitors))
    finally:
        for db in databases:
            await db.close()
    fired = sorted((e.ticket_id, e.level) for result in results for e in result)
    assert fired == sorted((t.id, level) for t in tickets for level in (1, 2))
    for t in tickets:
        view = await services.tickets.view(t.id)
        assert [e.note for e in view.events if e.action == "escalated"] == ["claim-1", "claim-2"]


async def test_jobs_are_rebuilt_from_the_database_at_start(settings):
    # The scheduler runs on the real clock: put the injected one a day ahead so that the
    # deadlines are in the future and the jobs stay scheduled while we look at them.
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=1))
    first = await build_services(settings, clock=clock, migrate=False)
    try:
        await first.tickets.add_staff(None, STAFF, CHAOYANG)
        new = (await first.tickets.file(report())).ticket
        claimed = (await first.tickets.file(report(category="outage"))).ticket
        await first.tickets.claim(claimed.id, STAFF)
        resolved = (await first.tickets.file(report())).ticket
        await first.tickets.claim(resolved.id, STAFF)
        await first.tickets.resolve(resolved.id, STAFF, "Done")
        rejected = (await first.tickets.file(report())).ticket
        await first.tickets.reject(rejected.id, STAFF, "Not ours")
    finally:
        await first.close()

    second = await build_services(settings, clock=clock, migrate=False)
    try:
        await second.start_background()
        scheduler = second.scheduler
        assert set(scheduler.job_ids()) >= {
            SWEEP_JOB_ID, job_id(new.id, "claim"), job_id(claimed.id, "resolve"),
            job_id(resolved.id, "autoclose")}
        assert not any(j.startswith(f"ticket:{rejected.id}:") for j in scheduler.job_ids())
        assert scheduler.next_run(job_id(new.id, "claim")) == new.claim_due
        assert scheduler.next_run(job_id(claimed.id, "resolve")) == claimed.resolve_due
        # A change reschedules: once claimed, the claim job gives way to the resolve job.
        await second.tickets.claim(new.id, STAFF)
        assert job_id(new.id, "claim") not in scheduler.job_ids()
        assert scheduler.next_run(job_id(new.id, "resolve")) == new.resolve_due
        # The job itself: when it fires after the deadline it escalates, once.
        clock.advance(hours=2, minutes=10)
        assert await second.ticket_sla.run_ticket(new.id) == [Escalation(new.id, "resolve", 1)]
        assert await second.ticket_sla.run_ticket(new.id) == []
        assert scheduler.next_run(job_id(new.id, "resolve")) == new.resolve_due + timedelta(
            minutes=30)
    finally:
        await second.close()
