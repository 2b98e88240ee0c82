"""``python bot.py alerts ...``: warnings from the command line.

The CLI composes, confirms, approves, cancels and exports alerts in the database; the running
bot sends them (its sweep picks up a due alert within half a minute). The CLI never sends
itself: a second process with its own rate limit would push the bot over Telegram's limits.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta

from quickresponse.alerts.hazards import Hazard, parse_hazard, parse_level
from quickresponse.alerts.service import AlertDraft, AlertService, AlertState, AlertView
from quickresponse.alerts.subscriptions import SubscriptionService
from quickresponse.clock import Clock, SystemClock
from quickresponse.db import Database
from quickresponse.districts import load_city
from quickresponse.errors import ConfigError, QuickResponseError
from quickresponse.i18n import html_to_text, t
from quickresponse.settings import Settings


def add_alert_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    alerts = sub.add_parser("alerts", help="warnings: create, schedule, cancel, update, CAP")
    cmds = alerts.add_subparsers(dest="alerts_command", required=True)

    listing = cmds.add_parser("list", help="recent alerts with delivery figures")
    listing.add_argument("--state", choices=[s.value for s in AlertState], action="append")
    listing.add_argument("--limit", type=int, default=20)

    show = cmds.add_parser("show", help="one alert: state, figures and the message")
    show.add_argument("alert_id", type=int)

    create = cmds.add_parser("create", help="compose and confirm an alert")
    create.add_argument("--hazard", required=True, help=", ".join(h.value for h in Hazard))
    create.add_argument("--level", required=True, help="blue, yellow, orange or red")
    create.add_argument("--districts", required=True,
                        help="comma-separated district ids or names, or 'all'")
    _message_options(create)
    create.add_argument("--draft", action="store_true",
                        help="only save a draft (confirm later with 'alerts submit')")

    submit = cmds.add_parser("submit", help="confirm a draft")
    submit.add_argument("alert_id", type=int)

    update = cmds.add_parser("update", help="send an update of a sent alert (CAP Update)")
    update.add_argument("alert_id", type=int)
    update.add_argument("--level", help="new level (default: unchanged)")
    update.add_argument("--districts", help="new districts (default: unchanged)")
    _message_options(update)

    clear = cmds.add_parser("allclear", help="lift a sent alert (CAP Cancel)")
    clear.add_argument("alert_id", type=int)
    clear.add_argument("--zh", help="Chinese text (default: the all-clear template)")
    clear.add_argument("--en", help="English text (default: the all-clear template)")
    _when_options(clear, until=False)

    for name, text in (("cancel", "cancel a draft, pending or scheduled alert"),
                       ("approve", "approve an alert another admin wrote")):
        cmd = cmds.add_parser(name, help=text)
        cmd.add_argument("alert_id", type=int)

    cap = cmds.add_parser("cap", help="write the alert as CAP 1.2 XML to stdout")
    cap.add_argument("alert_id", type=int)

    for cmd in cmds.choices.values():
        cmd.add_argument("--as", dest="admin_id", type=int,
                         help="the admin acting (default: the first of QR_ADMIN_IDS)")


def _message_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zh", help="Chinese text (default: the template for hazard and level)")
    parser.add_argument("--en", help="English text (default: the template for hazard and level)")
    _when_options(parser, until=True)


def _when_options(parser: argparse.ArgumentParser, *, until: bool) -> None:
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--at", help="send at this local time, e.g. 2026-07-20T18:00")
    when.add_argument("--in", dest="in_minutes", type=float, help="send in this many minutes")
    if until:
        end = parser.add_mutually_exclusive_group()
        end.add_argument("--until", help="in force until this local time")
        end.add_argument("--hours", type=float, help="in force for this many hours")


async def run_alert_command(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        await db.upgrade()
        city = load_city(settings.city)
        clock = SystemClock()
        alerts = AlertService(db, clock, settings, city, SubscriptionService(db, clock, city))
        return await _dispatch(args, settings, alerts, clock)
    except QuickResponseError as exc:
        if isinstance(exc, ConfigError):
            raise
        try:
            message = html_to_text(t(exc.message_key, "en", **exc.params))
        except (KeyError, IndexError):  # a message needing a value the error does not carry
            message = exc.detail or type(exc).__name__
        print(f"error: {message}" + (f" ({exc.detail})" if exc.detail else ""), file=sys.stderr)
        return 1
    finally:
        await db.close()


async def _dispatch(
    args: argparse.Namespace, settings: Settings, alerts: AlertService, clock: Clock
) -> int:
    command = args.alerts_command
    admin = _admin(args, settings)
    if command == "list":
        states = [AlertState(s) for s in args.state] if args.state else None
        rows = await alerts.list_alerts(states=states, limit=args.limit)
        if not rows:
            print("No alerts.")
        for view in rows:
            print(_line(alerts, view, settings))
        return 0
    if command == "show":
        view = await alerts.get(args.alert_id)
        print(_line(alerts, view, settings))
        for lang in ("zh", "en"):
            print()
            print(html_to_text(alerts.message_html(view, lang)))
        return 0
    if command == "cap":
        sys.stdout.buffer.write(await alerts.cap_xml(args.alert_id))
        sys.stdout.flush()
        return 0
    if command == "cancel":
        view = await alerts.cancel(admin, args.alert_id)
        print(f"alert #{view.id} cancelled")
        return 0
    if command == "approve":
        return await _confirmed(alerts, await alerts.approve(admin, args.alert_id), settings)
    if command == "submit":
        return await _confirmed(alerts, await alerts.submit(admin, args.alert_id), settings)
    now = clock.now()
    send_at = _send_at(args, settings, now)
    if command == "allclear":
        view = await alerts.compose_all_clear(admin, args.alert_id, text_zh=args.zh,
                                              text_en=args.en, send_at=send_at)
        return await _preview_and_submit(alerts, admin, view, settings, draft_only=False)
    if command == "update":
        original = await alerts.get(args.alert_id)
        level = parse_level(args.level) if args.level else original.level
        districts = (_districts(alerts, args.districts) if args.districts else
                     (None if original.all_districts else original.district_ids))
        draft = AlertDraft(hazard=original.hazard, level=level, district_ids=districts,
                           text_zh=args.zh, text_en=args.en, send_at=send_at,
                           expires_at=_until(args, settings, send_at or now,
                                             default=original.expires_at))
        view = await alerts.compose_update(admin, args.alert_id, draft)
        return await _preview_and_submit(alerts, admin, view, settings, draft_only=False)
    draft = AlertDraft(
        hazard=parse_hazard(args.hazard), level=parse_level(args.level),
        district_ids=_districts(alerts, args.districts), text_zh=args.zh, text_en=args.en,
        send_at=send_at, expires_at=_until(args, settings, send_at or now, default=None),
    )
    view = await alerts.compose(admin, draft)
    return await _preview_and_submit(alerts, admin, view, settings, draft_only=args.draft)


async def _preview_and_submit(alerts: AlertService, admin: int, view: AlertView,
                              settings: Settings, *, draft_only: bool) -> int:
    preview = await alerts.preview(view.id)
    print(html_to_text(preview.messages["zh"]))
    print()
    print(html_to_text(preview.messages["en"]))
    print()
    print(f"recipients: {preview.recipients}")
    if draft_only:
        print(f"draft #{view.id} saved; confirm with: python bot.py alerts submit {view.id}")
        return 0
    return await _confirmed(alerts, await alerts.submit(admin, view.id), settings)


async def _confirmed(alerts: AlertService, view: AlertView, settings: Settings) -> int:
    if view.state == AlertState.PENDING_APPROVAL:
        print(f"alert #{view.id} waits for a second admin: python bot.py alerts approve "
              f"{view.id} --as ADMIN_ID")
        return 0
    local = view.send_at.astimezone(settings.tz)
    print(f"alert #{view.id} scheduled for {local:%Y-%m-%d %H:%M %Z}; the running bot sends it "
          "(a due alert within 30 seconds)")
    return 0


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    if args.admin_id is not None:
        return int(args.admin_id)
    if not settings.admin_ids:
        raise ConfigError("set QR_ADMIN_IDS (or pass --as ADMIN_ID) to act as an admin")
    return min(settings.admin_ids)


def _districts(alerts: AlertService, spec: str) -> tuple[str, ...] | None:
    if spec.strip().lower() == "all":
        return None
    parts = [p.strip() for p in spec.replace("，", ",").split(",") if p.strip()]
    ids = []
    for part in parts:
        if alerts.city.has_district(part):
            ids.append(part)
        else:
            ids.append(alerts.city.find_district(part).id)
    return tuple(ids)


def _local(value: str, settings: Settings) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not a time like 2026-07-20T18:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=settings.tz)
    return when


def _send_at(args: argparse.Namespace, settings: Settings, now: datetime) -> datetime | None:
    if getattr(args, "at", None):
        return _local(args.at, settings)
    if getattr(args, "in_minutes", None) is not None:
        return now + timedelta(minutes=args.in_minutes)
    return None


def _until(args: argparse.Namespace, settings: Settings, start: datetime,
           default: datetime | None) -> datetime | None:
    if getattr(args, "until", None):
        return _local(args.until, settings)
    if getattr(args, "hours", None) is not None:
        return start + timedelta(hours=args.hours)
    return default


def _line(alerts: AlertService, view: AlertView, settings: Settings) -> str:
    area = "all" if view.all_districts else ",".join(view.district_ids)
    send = view.send_at.astimezone(settings.tz)
    until = view.expires_at.astimezone(settings.tz)
    ref = f" ref #{view.references_id}" if view.references_id else ""
    late = " late" if view.late else ""
    s = view.stats
    return (f"#{view.id:<4} {view.state.value:<16} {view.msg_type:<6} {view.hazard.value:<13} "
            f"{view.level.value:<6} {area:<20} {send:%m-%d %H:%M}->{until:%m-%d %H:%M} "
            f"sent {s.sent}/{s.total} blocked {s.blocked} failed {s.failed}{late}{ref}")

