"""Tickets as CSV for reporting: one row per ticket, UTF-8 with a BOM so that Excel reads the
Chinese names correctly.

Personal data stays out unless asked for (``with_contact``): the resident's id, name and phone,
the description, the typed address and the exact location. Without it the row still carries
the district, category, states, deadlines and outcomes, which is what a performance report
needs. Contact details are exported only where the resident consented to share them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.clock import as_utc
from quickresponse.db import Database
from quickresponse.districts import City
from quickresponse.tickets.models import Ticket
from quickresponse.tickets.service import ticket_number

BOM = "\ufeff"
COLUMNS = (
    "number", "filed_at", "district_id", "district_zh", "district_en", "category", "urgent",
    "state", "routing_method", "claim_due", "responded_at", "responded_in_time", "resolve_due",
    "resolved_at", "resolved_in_time", "closed_at", "solved", "satisfaction", "escalation_level",
    "transfers_or_reopenings",
)
PERSONAL_COLUMNS = (
    "resident_id", "contact_name", "contact_phone", "description", "address", "latitude",
    "longitude",
)


async def export_rows(
    db: Database, city: City, *, since: datetime | None = None, until: datetime | None = None,
    with_contact: bool = False,
) -> list[dict[str, str]]:
    """Rows for tickets filed in [since, until), oldest first, times in the city's zone."""
    async def work(session: AsyncSession) -> list[Ticket]:
        stmt = select(Ticket)
        if since is not None:
            stmt = stmt.where(col(Ticket.created_at) >= as_utc(since))
        if until is not None:
            stmt = stmt.where(col(Ticket.created_at) < as_utc(until))
        return list((await session.exec(stmt.order_by(col(Ticket.id)))).all())

    return [_row(t, city, with_contact) for t in await db.run(work)]


def write_csv(rows: Iterable[dict[str, str]], *, with_contact: bool = False) -> str:
    """The rows as CSV text beginning with a BOM."""
    out = io.StringIO()
    columns = COLUMNS + (PERSONAL_COLUMNS if with_contact else ())
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return BOM + out.getvalue()


def _row(ticket: Ticket, city: City, with_contact: bool) -> dict[str, str]:
    assert ticket.id is not None
    tz = city.tz
    district = city.district(ticket.district_id) if city.knows(ticket.district_id) else None
    responded = ticket.responded_at
    resolved = ticket.resolved_at
    row = {
        "number": ticket_number(ticket.id),
        "filed_at": _local(ticket.created_at, tz),
        "district_id": ticket.district_id,
        "district_zh": district.name_zh if district else "",
        "district_en": district.name_en if district else "",
        "category": ticket.category,
        "urgent": _flag(ticket.urgent),
        "state": str(ticket.state),
        "routing_method": ticket.routing_method,
        "claim_due": _local(ticket.claim_due, tz),
        "responded_at": _local(responded, tz),
        "responded_in_time": "" if responded is None else _flag(
            as_utc(responded) <= as_utc(ticket.claim_due)),
        "resolve_due": _local(ticket.resolve_due, tz),
        "resolved_at": _local(resolved, tz),
        "resolved_in_time": "" if resolved is None else _flag(
            as_utc(resolved) <= as_utc(ticket.resolve_due)),
        "closed_at": _local(ticket.closed_at, tz),
        "solved": "" if ticket.solved is None else _flag(ticket.solved),
        "satisfaction": ticket.satisfaction or "",
        "escalation_level": str(ticket.escalation_level),
        "transfers_or_reopenings": str(ticket.cycle),
    }
    if with_contact:
        consent = ticket.contact_consent
        row.update({
            "resident_id": str(ticket.resident_id),
            "contact_name": (ticket.contact_name or "") if consent else "",
            "contact_phone": (ticket.contact_phone or "") if consent else "",
            "description": _no_formula(ticket.description),
            "address": _no_formula(ticket.address or ""),
            "latitude": "" if ticket.latitude is None else f"{ticket.latitude:.6f}",
            "longitude": "" if ticket.longitude is None else f"{ticket.longitude:.6f}",
        })
    return row


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return "" if value is None else as_utc(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _flag(value: bool) -> str:
    return "yes" if value else "no"


def _no_formula(text: str) -> str:
    """Residents' text must not run as a spreadsheet formula (CSV injection)."""
    text = " ".join(text.split())
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
