"""/metrics over real HTTP: every figure an operator watches moves when the thing happens.

Updates handled and their latency, match outcomes, tickets by state and district (refreshed by
a scheduler job from the database), alert deliveries sent, failed, blocked and throttled.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from quickresponse.monitoring import REFRESH_JOB
from quickresponse.telegram.web import SECRET_HEADER, make_web_app, serve
from quickresponse.tickets.service import NewTicket
from tests.conftest import FIXTURES
from tests.fakebot import bad_request, forbidden, message_update, retry_after

SECRET = "metrics-test-secret-0123456789"
DONGCHENG, HAIDIAN = "110101", "110108"
STAFF = 2001


@pytest.fixture
def kb_dir():  # type: ignore[no-untyped-def]
    return FIXTURES / "kb_small"


@pytest.fixture
async def server(app, services):  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await app.start()
    services.scheduler.start()
    http = await serve(make_web_app(services, app, webhook_path="telegram", secret=SECRET),
                 "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}"
    await http.stop()
    await app.stop()


async def scrape(server: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(metrics, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_for(predicate, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(within / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_updates_their_latency_and_match_outcomes_move(server, app, fake_api):
    before = await scrape(server)
    update = message_update(app.bot, "闻到煤气味怎么办", user_id=4545)
    async with httpx.AsyncClient() as client:
        await client.post(f"{server}/telegram", json=update.to_dict(),
                          headers={SECRET_HEADER: SECRET})

    async def answered() -> bool:
        return bool(fake_api.sent("sendMessage", chat_id=4545))

    await wait_for(answered)
    await asyncio.sleep(0.1)
    after = await scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("qr_updates_total", kind="text", result="ok") == 1
    assert moved("qr_update_latency_seconds_count", kind="text") == 1
    assert moved("qr_update_latency_seconds_sum", kind="text") > 0
    assert moved("qr_match_outcomes_total", outcome="answer", urgent="false") + moved(
        "qr_match_outcomes_total", outcome="answer", urgent="true") == 1


async def test_tickets_by_state_and_district_follow_the_database(server, services):
    from quickresponse.metrics import TICKETS

    TICKETS.clear()  # one registry per process: start from what this test's database holds
    tickets = services.tickets
    await tickets.add_staff(None, STAFF, DONGCHENG)

    def new(district: str) -> NewTicket:
        return NewTicket(resident_id=1001, lang="zh", category="manhole", description="井盖丢了",
                         district_id=district, routing_method="chosen")

    first = (await tickets.file(new(DONGCHENG))).ticket
    await tickets.file(new(DONGCHENG))
    await tickets.file(new(HAIDIAN))
    await tickets.claim(first.id, STAFF)

    # The job refreshes the gauge as soon as the bot starts, then every half minute.
    await services.ticket_gauge.restore_jobs(services.scheduler)
    assert REFRESH_JOB in services.scheduler.job_ids()

    async def refreshed() -> bool:
        return value(await scrape(server), "qr_tickets", state="claimed",
                     district=DONGCHENG) == 1

    await wait_for(refreshed)
    metrics = await scrape(server)
    assert value(metrics, "qr_tickets", state="new", district=DONGCHENG) == 1
    assert value(metrics, "qr_tickets", state="new", district=HAIDIAN) == 1

    await tickets.withdraw(3, 1001)
    await services.ticket_gauge.refresh()
    metrics = await scrape(server)
    assert ("qr_tickets", (("district", HAIDIAN), ("state", "new"))) in metrics
    assert value(metrics, "qr_tickets", state="new", district=HAIDIAN) == 0, "not left stale"
    assert value(metrics, "qr_tickets", state="withdrawn", district=HAIDIAN) == 1


async def test_deliveries_sent_failed_blocked_and_throttled_move(server, app, fake_api,
                                                                 services):
    from quickresponse.telegram.sender import TelegramSender
    from tests.alert_helpers import CHAOYANG, FakeTime, add_residents, alert_service, send_now

    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(5001, 5011), [CHAOYANG])
    throttled: set[int] = set()

    def trouble(call):  # type: ignore[no-untyped-def]
        if call.method != "sendMessage":
            return None
        if call.chat_id == 5002 and 5002 not in throttled:
            throttled.add(5002)
            return retry_after(2)
        if call.chat_id == 5003:
            return forbidden()
        if call.chat_id == 5004:
            return bad_request("Bad Request: message is too long")
        return None

    fake_api.failures.append(trouble)
    alerts.attach(TelegramSender(app.bot))
    before = await scrape(server)
    await send_now(alerts)
    await alerts.run_due()
    after = await scrape(server)

    def moved(result: str) -> float:
        return (value(after, "qr_deliveries_total", result=result)
                - value(before, "qr_deliveries_total", result=result))

    assert (moved("sent"), moved("blocked"), moved("failed"), moved("throttled")) == (
        8, 1, 1, 1)
