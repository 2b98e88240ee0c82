"""How well districts answer calls, 12345-style: response, resolution and satisfaction rates.

For the tickets filed in a period, judged at ``as_of`` (now):

* **response rate** = tickets first answered by staff (claimed, rejected or marked duplicate)
  by their claim deadline / tickets that were answered or whose claim deadline has passed.
  A ticket the resident withdrew before anyone answered is not counted.
* **resolution rate** = tickets resolved by their resolution deadline / tickets that were resolved
  or whose resolution deadline has passed; rejected, duplicate and withdrawn tickets are not
  counted. A reopened ticket counts against its new deadline.
* **satisfaction rate** = (satisfied + basically satisfied) / tickets the resident rated.

A rate with nothing to count is None (shown as "—"), never 0 %. A transferred ticket counts for
the district it is in now, against the deadlines it got there.
"""

from __future__ import annotations

import asyncio
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.clock import Clock, as_utc
from quickresponse.db import Database
from quickresponse.districts import City
from quickresponse.errors import InvalidInput
from quickresponse.i18n import html_to_text, t
from quickresponse.tickets.models import Ticket
from quickresponse.tickets.service import OPEN_STATES, Satisfaction, State, sla_stage

# Fonts that draw Chinese district names; without one the chart uses English names, so that no
# label is drawn as empty boxes.
_CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei",
    "PingFang SC", "Heiti SC",
)
MAX_PERIOD_DAYS = 366 * 5


@dataclass(frozen=True)
class StatsRow:
    """The figures of one district (``district_id``) or of the whole city (None)."""

    district_id: str | None
    filed: int = 0
    open: int = 0
    overdue: int = 0
    response_due: int = 0
    responded_in_time: int = 0
    resolution_due: int = 0
    resolved_in_time: int = 0
    rated: int = 0
    satisfied: int = 0  # satisfied + basically satisfied
    rejected: int = 0
    duplicate: int = 0
    withdrawn: int = 0

    @property
    def response_rate(self) -> float | None:
        return _rate(self.responded_in_time, self.response_due)

    @property
    def resolution_rate(self) -> float | None:
        return _rate(self.resolved_in_time, self.resolution_due)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied, self.rated)


@dataclass(frozen=True)
class StatsReport:
    since: datetime
    until: datetime
    as_of: datetime
    rows: tuple[StatsRow, ...]  # districts with tickets in the period, in city order
    overall: StatsRow


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


class TicketStats:
    """Builds reports from the tickets table; one per process (``services.ticket_stats``)."""

    def __init__(self, db: Database, clock: Clock, city: City) -> None:
        self._db = db
        self._clock = clock
        self.city = city

    async def report(self, since: datetime, until: datetime) -> StatsReport:
        """Figures for tickets filed in [since, until), judged now."""
        since, until = as_utc(since), as_utc(until)
        if until <= since:
            raise InvalidInput("the period ends before it starts")
        as_of = self._clock.now()

        async def work(session: AsyncSession) -> list[Ticket]:
            return list((await session.exec(select(Ticket).where(
                col(Ticket.created_at) >= since, col(Ticket.created_at) < until))).all())

        counts: dict[str, dict[str, int]] = {}
        total: dict[str, int] = {}
        for ticket in await self._db.run(work):
            figures = _figures(ticket, as_of)
            for bucket in (counts.setdefault(ticket.district_id, {}), total):
                for key, value in figures.items():
                    bucket[key] = bucket.get(key, 0) + value
        order = {d.id: i for i, d in enumerate(self.city.queues)}
        rows = tuple(
            StatsRow(district_id, **figures)
            for district_id, figures in sorted(
                counts.items(), key=lambda item: order.get(item[0], len(order))))
        return StatsReport(since, until, as_of, rows, StatsRow(None, **total))

    def district_label(self, district_id: str | None, lang: str) -> str:
        if district_id is None:
            return html_to_text(t("tickets.stats.overall", lang))
        if self.city.knows(district_id):
            return self.city.district(district_id).name(lang)
        return district_id

    def format_table(self, report: StatsReport, lang: str) -> str:
        """The report as plain monospace text (the adapter puts it in <pre>)."""
        tz = self.city.tz
        heading = html_to_text(t(
            "tickets.stats.heading", lang,
            since=_local_day(report.since, tz), until=_local_day(
                report.until - timedelta(microseconds=1), tz),
            as_of=as_utc(report.as_of).astimezone(tz).strftime("%Y-%m-%d %H:%M")))
        header = [html_to_text(t(f"tickets.stats.col.{c}", lang)) for c in (
            "district", "filed", "open", "overdue", "response", "resolution", "satisfaction")]
        lines = [header]
        for row in (*report.rows, report.overall):
            lines.append([
                self.district_label(row.district_id, lang), str(row.filed), str(row.open),
                str(row.overdue), _percent(row.response_rate, row.response_due),
                _percent(row.resolution_rate, row.resolution_due),
                _percent(row.satisfaction_rate, row.rated),
            ])
        widths = [max(display_width(line[i]) for line in lines) for i in range(len(header))]
        rendered = []
        for n, line in enumerate(lines):
            cells = [pad_display(line[0], widths[0], left=True)] + [
                pad_display(cell, width) for cell, width in zip(line[1:], widths[1:], strict=True)]
            rendered.append("  ".join(cells).rstrip())
            if n == 0 or n == len(lines) - 2:
                rendered.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        if report.overall.filed == 0:
            rendered = [html_to_text(t("tickets.stats.empty", lang))]
        notes = html_to_text(t("tickets.stats.notes", lang))
        return "\n".join([heading, "", *rendered, "", notes])

    async def chart_png(self, report: StatsReport, lang: str) -> bytes:
        """A bar chart of the three rates per district and overall, as PNG bytes."""
        return await asyncio.to_thread(self._chart, report, lang)

    def _chart(self, report: StatsReport, lang: str) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        font = cjk_font()
        # Without a font for Chinese, label in English so nothing is drawn as boxes.
        label_lang = lang if (lang == "en" or font is not None) else "en"
        rows = [*report.rows, report.overall]
        labels = [self.district_label(r.district_id, label_lang) for r in rows]
        series = [
            ("response", [r.response_rate for r in rows], "#1f77b4"),
            ("resolution", [r.resolution_rate for r in rows], "#2ca02c"),
            ("satisfaction", [r.satisfaction_rate for r in rows], "#ff7f0e"),
        ]
        figure = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.5), dpi=110)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        font_kw = {"fontfamily": font} if font and label_lang == "zh" else {}
        width = 0.26
        for i, (key, values, colour) in enumerate(series):
            xs = [n + (i - 1) * width for n in range(len(rows))]
            heights = [0.0 if v is None else 100 * v for v in values]
            bars = axes.bar(xs, heights, width, color=colour,
                            label=html_to_text(t(f"tickets.stats.col.{key}", label_lang)))
            for bar, value in zip(bars, values, strict=True):
                text = "—" if value is None else f"{100 * value:.0f}"
                axes.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                              ha="center", va="bottom", fontsize=7)
        axes.set_xticks(range(len(rows)), labels, rotation=30, ha="right", **font_kw)
        axes.set_ylim(0, 110)
        axes.set_ylabel("%")
        title = html_to_text(t(
            "tickets.stats.chart_title", label_lang,
            since=_local_day(report.since, self.city.tz),
            until=_local_day(report.until - timedelta(microseconds=1), self.city.tz)))
        axes.set_title(title, **font_kw)
        legend = axes.legend(loc="upper right", fontsize=8)
        if font_kw:
            for text in legend.get_texts():
                text.set_fontfamily(font)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()


def _figures(ticket: Ticket, as_of: datetime) -> dict[str, int]:
    claim_due, resolve_due = as_utc(ticket.claim_due), as_utc(ticket.resolve_due)
    responded = None if ticket.responded_at is None else as_utc(ticket.responded_at)
    resolved = None if ticket.resolved_at is None else as_utc(ticket.resolved_at)
    state = str(ticket.state)
    figures = {"filed": 1, "open": int(state in OPEN_STATES)}
    stage = sla_stage(state)
    if stage is not None:
        figures["overdue"] = int((claim_due if stage == "claim" else resolve_due) <= as_of)
    if not (state == State.WITHDRAWN and responded is None) and (
            responded is not None or claim_due <= as_of):
        figures["response_due"] = 1
        figures["responded_in_time"] = int(responded is not None and responded <= claim_due)
    if state not in (State.REJECTED, State.DUPLICATE, State.WITHDRAWN) and (
            resolved is not None or resolve_due <= as_of):
        figures["resolution_due"] = 1
        figures["resolved_in_time"] = int(resolved is not None and resolved <= resolve_due)
    if ticket.satisfaction is not None:
        figures["rated"] = 1
        figures["satisfied"] = int(ticket.satisfaction in (Satisfaction.SATISFIED,
                                                           Satisfaction.BASIC))
    for finished in ("rejected", "duplicate", "withdrawn"):
        if state == finished:
            figures[finished] = 1
    return figures


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of an installed font that can draw Chinese, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in _CJK_FONTS if name in installed), None)


def _percent(rate: float | None, whole: int) -> str:
    return "—" if rate is None else f"{100 * rate:.0f}% ({whole})"


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad_display(text: str, width: int, *, left: bool = False) -> str:
    space = " " * (width - display_width(text))
    return text + space if left else space + text


def _local_day(moment: datetime, tz: ZoneInfo) -> str:
    return as_utc(moment).astimezone(tz).strftime("%Y-%m-%d")


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_DAYS = re.compile(r"^(\d{1,4})\s*d?$")


def parse_period(text: str | None, tz: ZoneInfo, now: datetime, *, default_days: int = 30
                 ) -> tuple[datetime, datetime]:
    """A reporting period in local days, as aware UTC [since, until).

    Accepts ``""`` (the last ``default_days`` days), ``7`` or ``7d`` (the last 7 days, today
    included), ``2026-07`` (a month), ``2026-07-01`` (one day) or ``2026-07-01 2026-07-31`` /
    ``2026-07-01..2026-07-31`` (both days included). Raises InvalidInput otherwise.
    """
    value = unicodedata.normalize("NFKC", text or "").strip().lower()
    today = as_utc(now).astimezone(tz).date()
    if not value:
        return _local_range(today - timedelta(days=default_days - 1), today, tz)
    if match := _DAYS.match(value):
        days = int(match.group(1))
        if not 0 < days <= MAX_PERIOD_DAYS:
            raise InvalidInput(f"period of {days} days")
        return _local_range(today - timedelta(days=days - 1), today, tz)
    if match := _MONTH.match(value):
        year, month = int(match.group(1)), int(match.group(2))
        try:
            first = date(year, month, 1)
        except ValueError:
            raise InvalidInput(f"no month {value!r}") from None
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return _local_range(first, last, tz)
    parts = [p for p in re.split(r"\s*(?:\.\.|\s|~|to)\s*", value) if p]
    if 1 <= len(parts) <= 2:
        try:
            days = [date.fromisoformat(p) for p in parts]
        except ValueError:
            raise InvalidInput(f"not a period: {value[:40]!r}") from None
        first, last = days[0], days[-1]
        if last < first or (last - first).days > MAX_PERIOD_DAYS:
            raise InvalidInput(f"not a period: {value[:40]!r}")
        return _local_range(first, last, tz)
    raise InvalidInput(f"not a period: {value[:40]!r}")


def _local_range(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    since = datetime.combine(first, time.min, tzinfo=tz)
    until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
    return as_utc(since), as_utc(until)
