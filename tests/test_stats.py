"""Response, resolution and satisfaction rates on a constructed set of tickets."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from quickresponse.db import Database
from quickresponse.districts import load_city
from quickresponse.errors import InvalidInput
from quickresponse.tickets.service import NewTicket, TicketService
from quickresponse.tickets.stats import TicketStats, parse_period
from tests.conftest import ADMIN_ID

CHAOYANG, HAIDIAN = "110105", "110108"
CY_STAFF, HD_STAFF = 501, 601
SHANGHAI = ZoneInfo("Asia/Shanghai")


def report(resident: int, district: str, category: str) -> NewTicket:
    return NewTicket(resident_id=resident, lang="zh", category=category, description="问题",
                     district_id=district, routing_method="chosen")


@pytest.fixture
async def world(db_url, clock):
    """Seven tickets filed at t0 (plus one two days earlier), worked as the comments say."""
    city = load_city("beijing")
    db = Database(db_url)
    tickets = TicketService(db, clock, city, admin_ids=frozenset({ADMIN_ID}))
    stats = TicketStats(db, clock, city)
    await tickets.add_staff(None, CY_STAFF, CHAOYANG)
    await tickets.add_staff(None, HD_STAFF, HAIDIAN)
    clock.advance(days=-2)
    await tickets.file(report(9, CHAOYANG, "waterlogging"))  # before the period
    clock.advance(days=2)
    t0 = clock.now()
    # Chaoyang, waterlogging: claim within 30 min, resolve within 2 h.
    a, b, _c, d, e = [(await tickets.file(report(n, CHAOYANG, "waterlogging"))).ticket.id
                     for n in range(1, 6)]
    # Haidian, other: claim within 24 h, resolve within 7 days.
    f, g = [(await tickets.file(report(n, HAIDIAN, "other"))).ticket.id for n in (6, 7)]

    async def at(minutes: int) -> None:
        clock.set(t0 + timedelta(minutes=minutes))

    await at(5)
    await tickets.withdraw(d, 4)  # before anyone answered: not counted
    await at(10)
    await tickets.claim(a, CY_STAFF)  # in time
    await at(20)
    await tickets.reject(e, CY_STAFF, "物业负责")  # answered in time; no resolution expected
    await at(45)
    await tickets.claim(b, CY_STAFF)  # late
    await at(60)
    await tickets.resolve(a, CY_STAFF, "已处理")  # in time
    await tickets.claim(g, HD_STAFF)
    await at(65)
    await tickets.rate(a, 1, solved=True, satisfaction="satisfied")
    await at(120)
    await tickets.claim(f, HD_STAFF)  # in time for a general call
    await at(180)
    await tickets.resolve(b, CY_STAFF, "已处理")  # late
    await tickets.rate(b, 2, solved=True, satisfaction="basic")
    await at(240)
    await tickets.resolve(g, HD_STAFF, "已处理")
    await tickets.rate(g, 7, solved=True, satisfaction="not_satisfied")
    await at(300)  # c is still unclaimed, 4.5 h late
    yield stats, t0
    await db.close()


async def test_rates_per_district_and_overall(world):
    stats, t0 = world
    result = await stats.report(t0 - timedelta(hours=1), t0 + timedelta(days=1))
    rows = {r.district_id: r for r in result.rows}
    assert list(rows) == [CHAOYANG, HAIDIAN]

    cy = rows[CHAOYANG]
    assert (cy.filed, cy.open, cy.overdue, cy.rejected, cy.withdrawn) == (5, 1, 1, 1, 1)
    assert (cy.responded_in_time, cy.response_due) == (2, 4)  # a, e of a, b, c, e
    assert (cy.resolved_in_time, cy.resolution_due) == (1, 3)  # a of a, b, c
    assert (cy.satisfied, cy.rated) == (2, 2)
    assert cy.response_rate == 0.5
    assert cy.resolution_rate == pytest.approx(1 / 3)
    assert cy.satisfaction_rate == 1.0

    hd = rows[HAIDIAN]
    assert (hd.filed, hd.open, hd.overdue) == (2, 1, 0)
    assert (hd.responded_in_time, hd.response_due) == (2, 2)
    assert (hd.resolved_in_time, hd.resolution_due) == (1, 1)  # f's 7 days are not over
    assert hd.satisfaction_rate == 0.0

    overall = result.overall
    assert overall.district_id is None and overall.filed == 7
    assert (overall.responded_in_time, overall.response_due) == (4, 6)
    assert (overall.resolved_in_time, overall.resolution_due) == (2, 4)
    assert (overall.satisfied, overall.rated) == (2, 3)


async def test_the_text_table_shows_the_figures_in_both_languages(world):
    stats, t0 = world
    result = await stats.report(t0 - timedelta(hours=1), t0 + timedelta(days=1))
    zh = stats.format_table(result, "zh")
    assert "朝阳区" in zh and "海淀区" in zh and "全市" in zh
    chaoyang_line = next(line for line in zh.splitlines() if line.startswith("朝阳区"))
    assert chaoyang_line.split()[1:] == ["5", "1", "1", "50%", "(4)", "33%", "(3)", "100%",
                                         "(2)"]
    en = stats.format_table(result, "en")
    whole = next(line for line in en.splitlines() if line.startswith("Whole city"))
    assert "67% (6)" in whole and "50% (4)" in whole and "67% (3)" in whole
    # Columns line up even with double-width Chinese names.
    table = [line for line in zh.splitlines() if line.startswith(("朝阳区", "海淀区", "全市"))]
    assert len({len(line.encode("gbk")) for line in table}) == 1


async def test_a_period_without_tickets(world):
    stats, t0 = world
    result = await stats.report(t0 + timedelta(days=3), t0 + timedelta(days=4))
    assert result.rows == () and result.overall.filed == 0
    assert result.overall.response_rate is None  # nothing to count is not 0 %
    assert "No tickets" in stats.format_table(result, "en")
    with pytest.raises(InvalidInput):
        await stats.report(t0, t0)


async def test_the_chart_is_a_png_without_missing_glyphs(world):
    stats, t0 = world
    result = await stats.report(t0 - timedelta(hours=1), t0 + timedelta(days=1))
    for lang in ("zh", "en"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            png = stats._chart(result, lang)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
        assert not [w for w in caught if "missing from" in str(w.message)], lang
    assert (await stats.chart_png(result, "zh")).startswith(b"\x89PNG")


NOW = datetime(2026, 7, 20, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.mark.parametrize(("text", "first", "last"), [
    ("", "2026-06-21", "2026-07-20"),
    ("7", "2026-07-14", "2026-07-20"),
    ("7d", "2026-07-14", "2026-07-20"),
    ("2026-02", "2026-02-01", "2026-02-28"),
    ("2026-07-01", "2026-07-01", "2026-07-01"),
    ("2026-07-01 2026-07-10", "2026-07-01", "2026-07-10"),
    ("2026-07-01..2026-07-10", "2026-07-01", "2026-07-10"),
    ("２０２６-０７", "2026-07-01", "2026-07-31"),
])
def test_periods_are_local_days(text, first, last):
    since, until = parse_period(text, SHANGHAI, NOW)
    assert since.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") == f"{first} 00:00"
    assert (until - timedelta(seconds=1)).astimezone(SHANGHAI).strftime("%Y-%m-%d") == last
    assert until.astimezone(SHANGHAI).strftime("%H:%M") == "00:00"


@pytest.mark.parametrize("text", ["0", "-3", "99999", "2026-13", "yesterday",
                                  "2026-07-10..2026-07-01", "2026-02-30"])
def test_bad_periods(text):
    with pytest.raises(InvalidInput):
        parse_period(text, SHANGHAI, NOW)
