"""Command line: ``python bot.py [command]``. The only place besides the Telegram application
factory where things are wired together."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from sqlalchemy.exc import DatabaseError

from quickresponse.alerts.commands import add_alert_commands, run_alert_command
from quickresponse.errors import ConfigError, KnowledgeBaseInvalid, StorageUnavailable
from quickresponse.i18n import html_to_text
from quickresponse.knowledge import check_knowledge_base, load_knowledge_base
from quickresponse.logs import configure_logging
from quickresponse.settings import Settings, load_settings
from quickresponse.tickets.commands import add_ticket_commands, run_ticket_command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bot.py",
        description="QuickResponse: community disaster questions and quick response.",
    )
    sub = p.add_subparsers(dest="command")

    run = sub.add_parser("run", help="start the bot (Telegram with a token, else the console chat)")
    run.add_argument("--console", action="store_true", help="always open the console chat")
    run.add_argument("--webhook", action="store_true",
                     help="take updates by webhook (QR_WEBHOOK_URL, QR_WEBHOOK_SECRET) not polling")
    sub.add_parser("console", help="chat with the bot in this terminal")

    db = sub.add_parser("db", help="database migrations")
    dbs = db.add_subparsers(dest="db_command", required=True)
    dbs.add_parser("upgrade", help="apply pending migrations")
    down = dbs.add_parser("downgrade", help="revert to a revision (e.g. base)")
    down.add_argument("revision")

    kb = sub.add_parser("kb", help="the knowledge base")
    kbs = kb.add_subparsers(dest="kb_command", required=True)
    kbs.add_parser("check", help="validate every entry; exit 1 on any problem")
    show = kbs.add_parser("show", help="print one entry as a resident reads it")
    show.add_argument("entry_id")
    show.add_argument("--lang", choices=["zh", "en"])
    ev = kbs.add_parser("eval", help="score the matcher on a labelled JSONL file")
    ev.add_argument("file", type=Path)
    ev.add_argument("--errors", action="store_true", help="list every wrong message")
    gaps = kbs.add_parser("gaps", help="frequent questions with no answer or 'not helpful'")
    gaps.add_argument("--days", type=int, default=30)
    gaps.add_argument("--limit", type=int, default=20)

    export = sub.add_parser(
        "export-my-data", help="print as JSON everything held about one user (access requests)")
    export.add_argument("user_id", type=int, help="the person's Telegram user id")

    add_ticket_commands(sub)
    add_alert_commands(sub)

    ask = sub.add_parser("ask", help="answer one question, or JSON lines from stdin")
    ask.add_argument("question", nargs="?")
    ask.add_argument("--jsonl", action="store_true", help="read one message per line on stdin")
    ask.add_argument("--lang", choices=["zh", "en"])
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        if command == "kb":
            return _kb(args, settings)
        if command == "export-my-data":
            return asyncio.run(_export(args, settings))
        if command in ("staff", "tickets"):
            return asyncio.run(run_ticket_command(args, settings))
        if command == "alerts":
            return asyncio.run(run_alert_command(args, settings))
        if command == "ask":
            return _ask(args, settings)
        if command == "db":
            return asyncio.run(_db(args, settings))
        if command in ("run", "console"):
            return _run(args, settings,
                        console=command == "console" or getattr(args, "console", False))
    except KnowledgeBaseInvalid as exc:
        print("error: the knowledge base is invalid; fix these and start again "
              "(`python bot.py kb check`):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    _parser().print_help()
    return 2


def _run(args: argparse.Namespace, settings: Settings, *, console: bool) -> int:
    load_knowledge_base(settings.knowledge_base_dir)  # refuse to start on an invalid one
    if settings.telegram_token and not console:
        from quickresponse.telegram.runner import run_bot

        asyncio.run(run_bot(settings, webhook=getattr(args, "webhook", False)))
        return 0
    if getattr(args, "webhook", False):
        raise ConfigError("webhook mode needs QR_TELEGRAM_TOKEN")
    from quickresponse.console import run_console

    # Migration progress at INFO would bury the chat's banner.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not console:
        print("QR_TELEGRAM_TOKEN is not set, so this is the console chat; set it (in .env or "
              "the environment) to run the bot on Telegram.", file=sys.stderr)
    try:
        return asyncio.run(run_console(settings))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


async def _db(args: argparse.Namespace, settings: Settings) -> int:
    from quickresponse.db import Database

    db = Database(settings.database_url)
    try:
        if args.db_command == "upgrade":
            await db.upgrade()
            print("database is up to date")
        else:
            await db.downgrade(args.revision)
            print(f"database downgraded to {args.revision}")
    finally:
        await db.close()
    return 0


def _kb(args: argparse.Namespace, settings: Settings) -> int:
    directory = settings.knowledge_base_dir
    if args.kb_command == "check":
        kb, problems = check_knowledge_base(directory)
        for problem in problems:
            print(problem)
        if problems:
            print(f"{len(problems)} problem(s) in {directory}")
            return 1
        print(f"OK: {len(kb)} entries in {len(kb.categories)} categories, no problems")
        return 0
    if args.kb_command == "gaps":
        return asyncio.run(_gaps(args, settings))
    kb = load_knowledge_base(directory)
    if args.kb_command == "show":
        from quickresponse.presenter import render_entry

        if args.entry_id not in kb:
            print(f"error: no entry with id {args.entry_id!r}", file=sys.stderr)
            return 1
        entry = kb.get(args.entry_id)
        for lang in [args.lang] if args.lang else ["zh", "en"]:
            print(html_to_text(render_entry(entry, lang)))
            print()
        return 0
    if args.kb_command == "eval":
        from quickresponse.evaluation import EvaluationFileInvalid, evaluate_file, format_report
        from quickresponse.services import build_matcher

        try:
            report = evaluate_file(args.file, build_matcher(kb, settings))
        except EvaluationFileInvalid as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1
        print(format_report(report, show_errors=args.errors))
        return 0
    return 2


async def _gaps(args: argparse.Namespace, settings: Settings) -> int:
    from quickresponse.services import build_services

    services = await build_services(settings)
    try:
        gaps = await services.qa.gaps(days=args.days, limit=args.limit)
    finally:
        await services.close()
    if not gaps:
        print(f"No unanswered or unhelpful questions in the last {args.days} days.")
        return 0
    print(f"{'count':>5}  {'why':<11}  question")
    for gap in gaps:
        print(f"{gap.count:>5}  {gap.outcome:<11}  {gap.text[:100]}")
    return 0


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    from quickresponse.clock import SystemClock
    from quickresponse.db import Database, sqlite_path
    from quickresponse.privacy import PrivacyService
    from quickresponse.updates import UpdateLog

    path = sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        # SQLite would create an empty file rather than say there is nothing there.
        print(f"error: there is no database at {path}", file=sys.stderr)
        return 1
    db = Database(settings.database_url)
    clock = SystemClock()
    privacy = PrivacyService(
        db, clock, UpdateLog(db, clock),
        question_retention_days=settings.question_retention_days,
        personal_data_retention_days=settings.personal_data_retention_days,
    )
    try:
        data = await privacy.export(args.user_id)
    except StorageUnavailable as exc:
        print(f"error: the database cannot be reached: {exc.detail}", file=sys.stderr)
        return 1
    except DatabaseError as exc:
        print(f"error: cannot read the database ({type(exc.orig).__name__}); "
              "run `python bot.py db upgrade` first?", file=sys.stderr)
        return 1
    finally:
        await db.close()
    print(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))
    return 0


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from quickresponse.clock import SystemClock
    from quickresponse.presenter import render_reply
    from quickresponse.qa import QAService
    from quickresponse.services import build_matcher

    kb = load_knowledge_base(settings.knowledge_base_dir)
    qa = QAService(kb, build_matcher(kb, settings), None, SystemClock(),
                   default_lang=settings.default_language)
    if args.jsonl:
        for line in sys.stdin:
            question = line.rstrip("\n")
            if not question.strip():
                continue
            reply = qa.reply_for(question, lang=args.lang)
            m = reply.match
            print(json.dumps({
                "q": question, "id": m.entry_id, "score": round(m.score, 1),
                "urgent": m.urgent, "lang": m.lang, "alternatives": list(m.alternatives),
            }, ensure_ascii=False), flush=True)
        return 0
    if not args.question:
        print("error: give a question, or --jsonl to read them from stdin", file=sys.stderr)
        return 2
    print(html_to_text(render_reply(qa.reply_for(args.question, lang=args.lang))))
    return 0
