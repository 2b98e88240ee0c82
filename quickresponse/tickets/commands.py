"""``python bot.py staff ...`` and ``python bot.py tickets ...``: district staff and reports from
the command line (run by an operator on the server, so no admin id is needed)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from quickresponse.clock import SystemClock
from quickresponse.db import Database
from quickresponse.districts import load_city
from quickresponse.errors import InvalidInput, QuickResponseError
from quickresponse.i18n import html_to_text, t
from quickresponse.settings import Settings
from quickresponse.tickets.export import export_rows, write_csv
from quickresponse.tickets.service import State, TicketService
from quickresponse.tickets.stats import TicketStats, pad_display, parse_period

COMMANDS = ("staff", "tickets")


def add_ticket_commands(sub: Any) -> None:
    """Add the ``staff`` and ``tickets`` sub-commands to the main parser."""
    staff = sub.add_parser("staff", help="district staff who work the tickets")
    ss = staff.add_subparsers(dest="staff_command", required=True)
    add = ss.add_parser("add", help="register a Telegram user as staff of a district")
    add.add_argument("user_id", type=int)
    add.add_argument("district", help="district id, name or alias (110105, 朝阳, Chaoyang)")
    add.add_argument("--name", help="how residents and colleagues see them")
    remove = ss.add_parser("remove", help="remove a user from one district's staff (or all)")
    remove.add_argument("user_id", type=int)
    remove.add_argument("district", nargs="?")
    listing = ss.add_parser("list", help="list active staff")
    listing.add_argument("--district")

    tickets = sub.add_parser("tickets", help="tickets: list, export, stats")
    ts = tickets.add_subparsers(dest="tickets_command", required=True)
    tl = ts.add_parser("list", help="list tickets, newest first")
    tl.add_argument("--state", choices=[s.value for s in State])
    tl.add_argument("--district")
    tl.add_argument("--limit", type=int, default=50)
    for name, help_text in (("export", "write tickets as CSV (UTF-8 with BOM, for Excel)"),
                            ("stats", "response, resolution and satisfaction rates")):
        cmd = ts.add_parser(name, help=help_text)
        cmd.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD",
                         help="first day (local time)")
        cmd.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD",
                         help="last day, included")
        cmd.add_argument("--output", "-o", type=Path, help="write to this file, not stdout")
    export = ts.choices["export"]
    export.add_argument("--with-contact", action="store_true",
                        help="include personal data: resident id, consented name and phone, "
                             "description, address, location")
    stats = ts.choices["stats"]
    stats.add_argument("--days", type=int, help="the last N days (default 30)")
    stats.add_argument("--chart", type=Path, help="also write a PNG bar chart here")
    stats.add_argument("--lang", choices=["zh", "en"], default=None)


async def run_ticket_command(args: argparse.Namespace, settings: Settings,
                             out: TextIO | None = None) -> int:
    """Run one ``staff``/``tickets`` command; 0 on success, 1 when refused (message on stderr)."""
    out = out or sys.stdout
    db = Database(settings.database_url)
    try:
        await db.upgrade()
        city = load_city(settings.city)
        tickets = TicketService(db, SystemClock(), city, admin_ids=settings.admin_ids,
                                admin_chat_id=settings.admin_chat_id,
                                default_lang=settings.default_language)
        if args.command == "staff":
            return await _staff(args, tickets, out)
        return await _tickets(args, tickets, db, settings, out)
    except QuickResponseError as exc:
        message = html_to_text(t(exc.message_key, "en", **exc.params))
        print(f"error: {message} ({exc.detail})", file=sys.stderr)
        return 1
    finally:
        await db.close()


async def _staff(args: argparse.Namespace, tickets: TicketService, out: TextIO) -> int:
    city = tickets.city
    if args.staff_command == "add":
        district = city.find_district(args.district)
        await tickets.add_staff(None, args.user_id, district.id, display_name=args.name)
        print(f"{args.user_id} is now staff of {district.name_zh} ({district.name_en}, "
              f"{district.id})", file=out)
        return 0
    if args.staff_command == "remove":
        district_id = city.find_district(args.district).id if args.district else None
        removed = await tickets.remove_staff(None, args.user_id, district_id)
        print(f"{args.user_id} removed from {removed} district(s)", file=out)
        return 0
    district_id = city.find_district(args.district).id if args.district else None
    staff = await tickets.list_staff(district_id)
    if not staff:
        print("no staff registered", file=out)
        return 0
    print(f"{pad_display('district', 22, left=True)} {'user id':>12}  name", file=out)
    for member in staff:
        d = city.district(member.district_id)
        label = pad_display(f"{d.name_en} {d.name_zh}", 22, left=True)
        print(f"{label} {member.user_id:>12}  {member.display_name or ''}".rstrip(), file=out)
    return 0


async def _tickets(args: argparse.Namespace, tickets: TicketService, db: Database,
                   settings: Settings, out: TextIO) -> int:
    city = tickets.city
    if args.tickets_command == "list":
        district_id = city.find_district(args.district).id if args.district else None
        rows = await tickets.list_tickets(state=args.state, district_id=district_id,
                                          limit=max(1, args.limit))
        if not rows:
            print("no tickets", file=out)
            return 0
        tz = city.tz
        for row in rows:
            flags = ("URGENT " if row.urgent else "") + ("OVERDUE " if row.overdue else "")
            print(f"{row.number:>7}  {row.created_at.astimezone(tz):%Y-%m-%d %H:%M}  "
                  f"{city.district(row.district_id).name_en:<12} {row.category:<16} "
                  f"{row.state:<10} {flags}{row.description}", file=out)
        return 0

    since, until = _period(args, city.tz, default_days=30 if args.tickets_command == "stats"
                           else None)
    if args.tickets_command == "export":
        rows = await export_rows(db, city, since=since, until=until,
                                 with_contact=args.with_contact)
        text = write_csv(rows, with_contact=args.with_contact)
        if args.output:
            args.output.write_text(text, encoding="utf-8", newline="")
            print(f"{len(rows)} ticket(s) written to {args.output}", file=sys.stderr)
        else:
            _write_utf8(out, text)
        return 0

    stats = TicketStats(db, SystemClock(), city)
    if since is None:
        since = datetime(2000, 1, 1, tzinfo=UTC)
    if until is None:
        until = SystemClock().now() + timedelta(days=1)
    report = await stats.report(since, until)
    lang = args.lang or settings.default_language
    table = stats.format_table(report, lang)
    if args.output:
        args.output.write_text(table + "\n", encoding="utf-8")
    else:
        print(table, file=out)
    if args.chart:
        args.chart.write_bytes(await stats.chart_png(report, lang))
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0


def _period(args: argparse.Namespace, tz: Any, *, default_days: int | None
            ) -> tuple[datetime | None, datetime | None]:
    """[since, until) from --days or --from/--to (local days, --to included); open-ended when
    only one is given; else the last ``default_days`` days, or everything when None."""
    now = SystemClock().now()
    days = getattr(args, "days", None)
    if days is not None:
        return parse_period(str(days), tz, now)
    if args.date_from or args.date_to:
        since = parse_period(args.date_from, tz, now)[0] if args.date_from else None
        until = parse_period(args.date_to, tz, now)[1] if args.date_to else None
        if since is not None and until is not None and until <= since:
            raise InvalidInput("--to is before --from")
        return since, until
    if default_days is None:
        return None, None
    return parse_period(str(default_days), tz, now)


def _write_utf8(out: TextIO, text: str) -> None:
    """CSV goes out as UTF-8 whatever the terminal's locale says (Excel needs the BOM)."""
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        out.flush()
        buffer.write(text.encode("utf-8"))
        buffer.flush()
    else:
        out.write(text)
