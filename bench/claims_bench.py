"""Claims under contention: many staff pressing Claim on many tickets at once.

Run: ``python -m bench claims``. A fresh, migrated database holds tickets filed through the
ticket service in one district and that district's staff. Two processes (as two bot processes
behind a webhook would be) each run half of the staff; every staff member works through their
own random list of tickets, all of them at the same time, so every ticket is fought over by
several people in both processes. Claims go through ``TicketService.claim``, the same call the
Claim button makes.

Figures: claim attempts and successful claims per second, and the proof that nothing was
claimed twice, from three sides: each ticket has exactly one winner among the processes' results,
the ticket row names that winner, and its event log has exactly one ``claimed`` entry. Any error
other than "already claimed" counts as a failure. PostgreSQL is the target; SQLite is shown too.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from bench.claims_process import ticket_service
from bench.common import ROOT, Profiler, Results
from bench.databases import DatabaseUnavailable, scratch_database
from quickresponse.db import Database
from quickresponse.settings import load_settings
from quickresponse.tickets.models import Ticket, TicketEvent
from quickresponse.tickets.service import NewTicket

DISTRICT = "110101"  # Dongcheng
ADMIN = 9001
FIRST_STAFF = 80_000_000
FIRST_RESIDENT = 81_000_000
PROCESSES = 2
CONTENDERS = 5  # staff trying each ticket
PROCESS_TIMEOUT = 600.0


def plan(tickets: Sequence[int], staff: Sequence[int], seed: int = 5) -> dict[int, list[int]]:
    """Each ticket goes on the lists of ``CONTENDERS`` staff; each list is shuffled."""
    rng = random.Random(seed)
    lists: dict[int, list[int]] = {s: [] for s in staff}
    for ticket_id in tickets:
        for person in rng.sample(list(staff), min(CONTENDERS, len(staff))):
            lists[person].append(ticket_id)
    for todo in lists.values():
        rng.shuffle(todo)
    return lists


async def prepare(database_url: str, tickets: int, staff: int) -> tuple[list[int], list[int]]:
    db = Database(database_url)
    # With an admin, each new ticket's notice has somebody to go to (as in a deployment).
    service = ticket_service(
        load_settings(_env_file=None, database_url=database_url, admin_ids=str(ADMIN)), db)
    try:
        people = [FIRST_STAFF + n for n in range(staff)]
        for person in people:
            await service.add_staff(None, person, DISTRICT, display_name=f"S{person}")
        ids = []
        for n in range(tickets):
            outcome = await service.file(NewTicket(
                resident_id=FIRST_RESIDENT + n, lang="zh", category="waterlogging",
                description=f"积水很深，第 {n} 号路口", district_id=DISTRICT,
                routing_method="chosen"))
            ids.append(outcome.ticket.id)
        return ids, people
    finally:
        await db.close()


async def claim_everywhere(database_url: str, lists: dict[int, list[int]]
                           ) -> list[dict[str, Any]]:
    """Start the claim processes, let them all go at once, collect their results."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QR_")}
    env["QR_DATABASE_URL"] = database_url
    env["QR_ADMIN_IDS"] = str(ADMIN)
    people = sorted(lists)
    shares = [people[i::PROCESSES] for i in range(PROCESSES)]
    procs = []
    logs = []
    for n, share in enumerate(shares):
        log = tempfile.TemporaryFile()
        logs.append(log)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.claims_process", env=env, cwd=str(ROOT),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({str(s): lists[s] for s in share}).encode() + b"\n")
        await proc.stdin.drain()
        procs.append((proc, Profiler(proc.pid, f"claims-{n}")))
    try:
        for proc, _ in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), PROCESS_TIMEOUT)
            if line.strip() != b"ready":
                raise RuntimeError(f"a claims process did not start: {_tail(logs)}")
        for proc, _ in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = []
        for proc, profiler in procs:
            out, _ = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
            profiler.stop()
            if proc.returncode != 0:
                raise RuntimeError(f"a claims process failed: {_tail(logs)}")
            output = json.loads(out.decode().strip().splitlines()[-1])
            if output["errors"]:
                output["log"] = _tail(logs)
            outputs.append(output)
        return outputs
    finally:
        for proc, profiler in procs:
            profiler.stop()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for log in logs:
            log.close()


def _tail(logs: list[Any]) -> str:
    text = []
    for log in logs:
        log.seek(0)
        text.append(log.read().decode(errors="replace")[-2000:])
    return "\n".join(text)


async def ledger(database_url: str) -> tuple[dict[int, int | None], Counter[int]]:
    """Each ticket's claimer as the row says, and how many ``claimed`` events each has."""
    db = Database(database_url)

    async def work(session):  # type: ignore[no-untyped-def]
        rows = (await session.exec(select(Ticket.id, Ticket.state, Ticket.claimed_by))).all()
        events = (await session.exec(
            select(TicketEvent.ticket_id, func.count())
            .where(TicketEvent.action == "claimed")
            .group_by(TicketEvent.ticket_id))).all()
        return rows, events

    try:
        rows, events = await db.run(work)
    finally:
        await db.close()
    claimers = {tid: (by if state == "claimed" else None) for tid, state, by in rows}
    return claimers, Counter({tid: int(n) for tid, n in events})


async def contention_case(results: Results, kind: str, tickets: int, staff: int) -> None:
    case = f"{staff} staff, {tickets} tickets, {CONTENDERS} claims each, " \
           f"{PROCESSES} processes, {kind}"
    target = "no double claims, no errors"
    try:
        async with scratch_database(kind) as url:
            ids, people = await prepare(url, tickets, staff)
            lists = plan(ids, people)
            outputs = await claim_everywhere(url, lists)
            claimers, events = await ledger(url)
    except DatabaseUnavailable as exc:
        results.add("claims", case, target, None, skipped=str(exc))
        return
    winners: dict[int, list[int]] = defaultdict(list)
    for output in outputs:
        for ticket_id, staff_id in output["wins"]:
            winners[ticket_id].append(staff_id)
    errors: Counter[str] = Counter()
    for output in outputs:
        errors.update(output["errors"])
    double = sum(1 for w in winners.values() if len(w) > 1)
    unclaimed = sum(1 for t in ids if not winners.get(t))
    row_mismatch = sum(1 for t in ids if winners.get(t) and claimers.get(t) != winners[t][0])
    event_mismatch = sum(1 for t in ids if events.get(t, 0) != 1)
    attempts = sum(o["attempts"] for o in outputs)
    refused = sum(o["refused"] for o in outputs)
    seconds = max(o["finished"] for o in outputs) - min(o["started"] for o in outputs)
    clean = not (double or unclaimed or row_mismatch or event_mismatch or errors)
    results.add("claims", case, target, clean,
                attempts_s=attempts / seconds, claims_s=len(winners) / seconds,
                attempts=attempts, won=sum(len(w) for w in winners.values()), refused=refused,
                double_claims=double, unclaimed=unclaimed, row_mismatch=row_mismatch,
                event_log_mismatch=event_mismatch, errors=sum(errors.values()))


async def run(results: Results, *, quick: bool = False,
              databases: Sequence[str] = ("postgres", "sqlite")) -> None:
    tickets, staff = (20, 6) if quick else (200, 30)
    for kind in databases:
        await contention_case(results, kind, tickets, staff)
