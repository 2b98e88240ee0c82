"""Warnings in answers without a query per question: the process-local summary of the alerts in
force (``quickresponse/alerts/in_force.py``). This process's own alerts show at once; another
process's within the refresh time; while none is in force, answers read no alerts at all."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from quickresponse.alerts.in_force import REFRESH_SECONDS
from quickresponse.services import build_services
from tests.alert_helpers import (
    CHAOYANG,
    FakeSender,
    FakeTime,
    add_residents,
    alert_service,
    send_now,
)

RESIDENT = 1


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def alerts(services, time):
    """The alerts service answers use, on fake monotonic time (the refresh clock)."""
    service = alert_service(services, time)
    service.attach(FakeSender())
    services.qa.warnings = service
    return service


@pytest.fixture
def alert_reads(services) -> list[str]:
    """Every statement that reads the alerts table."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM alerts" in statement:
            seen.append(statement)

    event.listen(services.db.engine.sync_engine, "before_cursor_execute", record)
    return seen


async def banner(services) -> list[int]:
    return [w.alert_id for w in (await services.qa.ask(RESIDENT, "下暴雨了怎么办")).warnings]


async def test_no_alert_query_per_question_while_none_is_in_force(services, alerts, time,
                                                                  alert_reads):
    await add_residents(services, [RESIDENT], [CHAOYANG])
    for _ in range(5):
        assert await banner(services) == []
    assert len(alert_reads) == 1, "one read of the alerts in force, then none per question"
    time.now += REFRESH_SECONDS
    assert await banner(services) == []
    assert len(alert_reads) == 2


async def test_this_processs_own_alert_shows_at_once(services, alerts):
    await add_residents(services, [RESIDENT], [CHAOYANG])
    assert await banner(services) == []
    view = await send_now(alerts)
    await alerts.run_due()
    assert await banner(services) == [view.id]
    clear = await alerts.compose_all_clear(9001, view.id)
    await alerts.submit(9001, clear.id)
    await alerts.run_due()
    assert await banner(services) == []


async def test_another_processs_alert_shows_within_the_refresh(services, alerts, time):
    await add_residents(services, [RESIDENT], [CHAOYANG])
    assert await banner(services) == []
    other = await build_services(services.settings, clock=services.clock, migrate=False)
    try:
        other.alerts.attach(FakeSender())
        view = await send_now(other.alerts)
        await other.alerts.run_due()
    finally:
        await other.close()
    time.now += REFRESH_SECONDS
    assert await banner(services) == [view.id]


async def test_an_alert_stops_showing_when_it_ends(services, alerts, clock, alert_reads):
    await add_residents(services, [RESIDENT], [CHAOYANG])
    view = await send_now(alerts, hours=2)
    await alerts.run_due()
    assert await banner(services) == [view.id]
    reads = len(alert_reads)
    clock.advance(hours=2)
    assert await banner(services) == []
    assert len(alert_reads) == reads, "its end time is known: no query to find it has ended"
