"""The benchmarks' smallest configurations, run once so that the benchmark code cannot rot.

Correctness only (every question answered and logged once, every report filed, every
subscriber warned exactly once, no ticket claimed twice); speed is measured by
``python -m bench``, never asserted here.
"""

from __future__ import annotations

import pytest

from bench import bot_bench, broadcast_bench, claims_bench
from bench.common import Results
from bench.databases import DatabaseUnavailable, scratch_database


def only_row(results: Results) -> dict:
    assert len(results.rows) == 1, results.rows
    row = results.rows[0]
    assert "skipped" not in row.figures, row.figures["skipped"] if row.figures else ""
    return row.figures


async def test_the_bot_answers_every_question_once_and_files_every_report_over_polling():
    pool = bot_bench.questions()
    async with scratch_database("sqlite", migrate=False) as url, \
            bot_bench.running_bot("polling", url) as bot:
        qa = await bot_bench.bench_qa(bot, pool, burst=12)
        tickets = await bot_bench.bench_tickets(bot, residents=2)
    assert qa["questions"] >= 12 + 20
    assert qa["unanswered"] == 0 and qa["extra_replies"] == 0
    assert qa["logged"] == qa["questions"]
    assert qa["p50_ms"] > 0 and qa["msg_s"] > 0
    assert tickets["filed"] == tickets["in_db"] == 2
    assert tickets["steps"] >= 2 * 6  # /report, category, text, photos, location, consent, submit


async def test_the_echo_baseline_answers_over_the_webhook():
    pool = bot_bench.questions()
    async with bot_bench.running_bot("webhook", echo=True) as bot:
        figures = await bot_bench.bench_qa(bot, pool, burst=10, check_log=False)
    assert figures["unanswered"] == 0 and figures["extra_replies"] == 0


async def test_a_warning_is_queued_for_exactly_the_subscribers_who_want_it():
    results = Results()
    await broadcast_bench.enqueue_case(results, "sqlite", 300)
    figures = only_row(results)
    assert figures["queued"] == figures["expected"]
    # Some seeded chats blocked the bot or want red warnings only: they must not be queued.
    assert 0 < figures["expected"] < 300
    assert figures["peak_mb"] >= figures["rss_before_mb"] > 0


async def test_a_broadcast_reaches_every_recipient_exactly_once():
    results = Results()
    await broadcast_bench.delivery_case(results, "sqlite", 40, 30)
    figures = only_row(results)
    assert figures["missing"] == figures["twice"] == figures["not_subscribed"] == 0
    assert figures["received"] == figures["recipients"] == figures["ledger_sent"]
    assert figures["msg_s"] > 0


@pytest.mark.postgres
async def test_concurrent_claims_on_postgres_never_claim_a_ticket_twice():
    results = Results()
    await claims_bench.contention_case(results, "postgres", tickets=12, staff=4)
    if results.rows and "skipped" in results.rows[0].figures:
        pytest.skip(results.rows[0].figures["skipped"])
    figures = only_row(results)
    assert figures["won"] == 12 and figures["refused"] == figures["attempts"] - 12
    assert figures["double_claims"] == figures["unclaimed"] == 0
    assert figures["row_mismatch"] == figures["event_log_mismatch"] == figures["errors"] == 0


async def test_an_unreachable_postgres_is_reported_not_crashed(monkeypatch):
    monkeypatch.setattr("bench.databases.PG_ADMIN_URL",
                        "postgresql+asyncpg://postgres@127.0.0.1:1/postgres")
    with pytest.raises(DatabaseUnavailable):
        async with scratch_database("postgres"):
            pass
    results = Results()
    await claims_bench.contention_case(results, "postgres", tickets=2, staff=2)
    assert "skipped" in results.rows[0].figures
    assert results.rows[0].met is None
