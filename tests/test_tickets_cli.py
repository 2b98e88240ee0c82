"""``python bot.py staff ...`` and ``python bot.py tickets ...`` on both databases."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quickresponse.cli import _parser
from quickresponse.db import Database
from quickresponse.districts import load_city
from quickresponse.tickets.commands import run_ticket_command
from quickresponse.tickets.export import BOM, COLUMNS, PERSONAL_COLUMNS
from quickresponse.tickets.service import NewTicket, TicketService

ROOT = Path(__file__).resolve().parent.parent


async def cli(settings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_ticket_command(_parser().parse_args(list(argv)), settings, out=out)
    return code, out.getvalue()


@pytest.fixture
async def tickets(settings, clock):
    db = Database(settings.database_url)
    yield TicketService(db, clock, load_city("beijing"), admin_ids=settings.admin_ids)
    await db.close()


async def test_staff_are_added_listed_and_removed(settings, tickets, capsys):
    assert await cli(settings, "staff", "add", "501", "朝阳", "--name", "王工") == (
        0, "501 is now staff of 朝阳区 (Chaoyang, 110105)\n")
    assert (await cli(settings, "staff", "add", "601", "Haidian District"))[0] == 0
    assert await tickets.staff_districts(501) == ["110105"]
    code, listing = await cli(settings, "staff", "list")
    assert code == 0
    lines = listing.splitlines()
    assert lines[1].split() == ["Chaoyang", "朝阳区", "501", "王工"]
    assert lines[2].split() == ["Haidian", "海淀区", "601"]
    code, listing = await cli(settings, "staff", "list", "--district", "110108")
    assert [line.split()[2] for line in listing.splitlines()[1:]] == ["601"]
    assert (await cli(settings, "staff", "remove", "601"))[0] == 0
    assert await tickets.staff_districts(601) == []


async def test_refusals_are_explained_and_exit_1(settings, capsys):
    assert (await cli(settings, "staff", "add", "501", "Gotham"))[0] == 1
    assert 'There is no district "Gotham"' in capsys.readouterr().err
    assert (await cli(settings, "staff", "remove", "777"))[0] == 1
    assert "not registered staff" in capsys.readouterr().err
    assert (await cli(settings, "tickets", "export", "--from", "2026-13-01"))[0] == 1


async def _file_two(tickets: TicketService, clock) -> tuple[int, int]:
    first = (await tickets.file(NewTicket(
        resident_id=1001, lang="zh", category="manhole", description="=HYPERLINK(\"x\") 井盖丢了",
        district_id="110105", routing_method="location", latitude=39.99, longitude=116.47,
        address="望京街道", contact_consent=True, contact_name="陈女士",
        contact_phone="13800000000"))).ticket
    clock.advance(days=1)
    second = (await tickets.file(NewTicket(
        resident_id=1002, lang="en", category="other", description="Broken street light",
        district_id="110108", routing_method="chosen", contact_name="Not consented",
        contact_phone="139"))).ticket
    return first.id, second.id


async def test_export_writes_one_row_per_ticket_without_personal_data(settings, tickets, clock):
    first, second = await _file_two(tickets, clock)
    code, text = await cli(settings, "tickets", "export")
    assert code == 0
    assert text.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))
    assert [r["number"] for r in rows] == [f"#{first}", f"#{second}"]
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0]["district_zh"] == "朝阳区" and rows[1]["district_en"] == "Haidian"
    assert rows[0]["filed_at"] == "2026-07-20 10:00:00"  # Beijing time
    assert rows[0]["state"] == "new" and rows[0]["urgent"] == "no"
    for personal in ("陈女士", "13800000000", "井盖", "望京", "39.99", "1001"):
        assert personal not in text


async def test_export_with_contact_includes_only_consented_details(settings, tickets, clock):
    await _file_two(tickets, clock)
    code, text = await cli(settings, "tickets", "export", "--with-contact")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))
    assert list(rows[0]) == list(COLUMNS + PERSONAL_COLUMNS)
    assert (rows[0]["contact_name"], rows[0]["contact_phone"]) == ("陈女士", "13800000000")
    assert (rows[1]["contact_name"], rows[1]["contact_phone"]) == ("", "")
    # A description that looks like a formula is defused for spreadsheets.
    assert rows[0]["description"].startswith("'=HYPERLINK")
    assert rows[0]["latitude"] == "39.990000"


async def test_export_by_local_day(settings, tickets, clock, tmp_path):
    _, second = await _file_two(tickets, clock)
    target = tmp_path / "tickets.csv"
    code, _ = await cli(settings, "tickets", "export", "--from", "2026-07-21", "--to",
                        "2026-07-21", "--output", str(target))
    assert code == 0
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["number"] for r in rows] == [f"#{second}"]


async def test_tickets_list(settings, tickets, clock):
    first, second = await _file_two(tickets, clock)
    await tickets.reject(second, 9001, "not ours")
    code, text = await cli(settings, "tickets", "list")
    assert code == 0
    assert [line.split()[0] for line in text.splitlines()] == [f"#{second}", f"#{first}"]
    code, text = await cli(settings, "tickets", "list", "--state", "new", "--district", "朝阳")
    assert [line.split()[0] for line in text.splitlines()] == [f"#{first}"]


def test_bot_py_writes_utf8_csv_to_stdout(tmp_path, sqlite_url):
    """The real entry point, as an operator runs it: `python bot.py tickets export > file`."""
    env = {**os.environ, "QR_DATABASE_URL": sqlite_url, "LANG": "C", "LC_ALL": "C",
           "PYTHONIOENCODING": "ascii", "QR_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, str(ROOT / "bot.py"), "tickets", "export"],
                         capture_output=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.startswith(b"\xef\xbb\xbfnumber,filed_at,district_id")
