"""Staff of one process pressing Claim at once (for ``claims_bench``).

    python -m bench.claims_process  < plan

Settings come from ``QR_*`` environment variables (the database). The first line on stdin is a
JSON plan ``{"staff_id": [ticket ids in the order that person tries them], ...}``. The process
builds the ticket service as the bot does, prints ``ready``, waits for ``go`` on stdin, then every
staff member claims their tickets one after another while all of them run at once. Prints one
JSON object: who won which ticket, how many claims were refused as already taken, and any other
error (there must be none).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections import Counter
from typing import Any

from quickresponse.clock import SystemClock
from quickresponse.db import Database
from quickresponse.districts import load_city
from quickresponse.logs import configure_logging
from quickresponse.settings import Settings, load_settings
from quickresponse.tickets.errors import TicketAlreadyClaimed
from quickresponse.tickets.service import TicketService

log = logging.getLogger(__name__)


def ticket_service(settings: Settings, db: Database) -> TicketService:
    """The ticket service as ``build_services`` makes it, without the knowledge base and
    matcher this benchmark does not use (they only slow the start)."""
    return TicketService(
        db, SystemClock(), load_city(settings.city),
        admin_ids=settings.admin_ids, admin_chat_id=settings.admin_chat_id,
        default_lang=settings.default_language)


async def run(plan: dict[str, list[int]]) -> dict[str, Any]:
    settings = load_settings()
    configure_logging("WARNING", settings.log_format)
    db = Database(settings.database_url)
    service = ticket_service(settings, db)
    wins: list[tuple[int, int]] = []
    refused = 0
    errors: Counter[str] = Counter()

    async def claim_all(staff_id: int, tickets: list[int]) -> None:
        nonlocal refused
        for ticket_id in tickets:
            try:
                await service.claim(ticket_id, staff_id)
            except TicketAlreadyClaimed:
                refused += 1
            except Exception as exc:  # every other outcome is counted, not hidden
                if not errors:
                    log.exception("claim of ticket %s by %s failed", ticket_id, staff_id)
                errors[type(exc).__name__] += 1
            else:
                wins.append((ticket_id, staff_id))

    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.time()
        async with asyncio.TaskGroup() as group:
            for staff_id, tickets in plan.items():
                group.create_task(claim_all(int(staff_id), tickets))
        finished = time.time()
    finally:
        await db.close()
    return {"wins": wins, "refused": refused, "errors": dict(errors),
            "attempts": sum(len(t) for t in plan.values()),
            "started": started, "finished": finished}


def main() -> int:
    plan = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(run(plan))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
