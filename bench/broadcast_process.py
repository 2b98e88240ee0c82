"""One broadcast, in a process of its own, as the bot would run it (for ``broadcast_bench``).

    python -m bench.broadcast_process enqueue|deliver ADMIN_ID
    python -m bench.broadcast_process raw COUNT FIRST_CHAT [aiohttp|httpx]

Settings come from ``QR_*`` environment variables (database, fake Bot API URL, broadcast rate).
The process builds the services and the Telegram application exactly as production does (the
application attaches the alert sender: PTB's bot with its rate limiter, behind the core's
token bucket), composes a warning for every district as ``ADMIN_ID`` and confirms it for now.

* ``enqueue``: times the admin's confirmation and the due run that queues one delivery row per
  recipient, then stops before sending.
* ``deliver``: also sends every message and waits for the end of the broadcast.

* ``raw``: the baseline. PTB's bot alone (no rate limiter, no database) sends COUNT messages
  to chats FIRST_CHAT... with as many at once as the broadcaster uses, over the bot's HTTP
  client (aiohttp, ``quickresponse/telegram/transport.py``) or PTB's default (httpx).

Memory: the resident set size just before the confirmation, and the process's peak resident
set size (as the kernel keeps it) before and after. Prints one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import psutil
from telegram import Bot
from telegram.request import BaseRequest, HTTPXRequest

from quickresponse.alerts.delivery import Broadcaster
from quickresponse.alerts.service import AlertDraft, Hazard, Level
from quickresponse.clock import SystemClock
from quickresponse.logs import configure_logging
from quickresponse.services import build_services
from quickresponse.settings import load_settings
from quickresponse.telegram.app import build_application
from quickresponse.telegram.transport import AiohttpRequest

HAZARD = Hazard.RAINSTORM
LEVEL = Level.ORANGE


def peak_rss() -> float:
    """The highest resident set size this process has had so far, in MB, as the kernel keeps it
    (exact, and free to ask, unlike sampling). Linux's VmHWM starts afresh at exec;
    ``ru_maxrss`` does not: it would include the benchmark runner that forked us."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss() -> float:
    return psutil.Process().memory_info().rss / 2**20


async def run(mode: str, admin_id: int) -> dict[str, Any]:
    settings = load_settings()
    configure_logging("WARNING", settings.log_format)
    services = await build_services(settings, migrate=False)
    application = build_application(services)
    figures: dict[str, Any] = {}
    try:
        async with application:
            view = await services.alerts.compose(
                admin_id, AlertDraft(hazard=HAZARD, level=LEVEL, district_ids=None))
            rss_before, peak_before = current_rss(), peak_rss()
            started = time.perf_counter()
            await services.alerts.submit(admin_id, view.id)
            report = await services.alerts.run_due(wait=False)
            figures["enqueue_s"] = time.perf_counter() - started
            if mode == "deliver":
                begun, cpu = time.perf_counter(), time.process_time()
                done = await services.alerts.run_due(wait=True)
                figures["deliver_s"] = time.perf_counter() - begun
                figures["deliver_cpu_s"] = time.process_time() - cpu
                figures["reports"] = len(done.reports)
            stats = await services.alerts.stats(view.id)
            figures.update(
                alert_id=view.id, started=list(report.started), total=stats.total,
                sent=stats.sent, failed=stats.failed, blocked=stats.blocked,
                pending=stats.pending, sending=stats.sending,
                rss_before_mb=rss_before, peak_before_mb=peak_before, peak_mb=peak_rss(),
            )
    finally:
        # Stops a broadcast still running (enqueue mode), as a shutdown would.
        await services.close()
    return figures


async def send_raw(count: int, first_chat: int, transport: str) -> dict[str, Any]:
    """The floor: the bare PTB bot sending ``count`` messages, as many at once as a broadcast."""
    settings = load_settings()
    configure_logging("WARNING", settings.log_format)
    assert settings.telegram_token
    # The bot's own request (build_application), or ApplicationBuilder's default one.
    request: BaseRequest = AiohttpRequest() if transport == "aiohttp" \
        else HTTPXRequest(connection_pool_size=256)
    bot = Bot(settings.telegram_token, base_url=settings.bot_base_url, request=request)
    parallel = Broadcaster(None, SystemClock(), rate=settings.broadcast_rate,  # type: ignore[arg-type]
                           paid=settings.allow_paid_broadcast).concurrency
    chats = list(range(first_chat, first_chat + count))
    html = "<b>暴雨橙色预警</b> Rainstorm orange warning. " * 8

    async def worker() -> None:
        while chats:
            await bot.send_message(chats.pop(), html, parse_mode="HTML")

    async with bot:
        started, cpu = time.perf_counter(), time.process_time()
        async with asyncio.TaskGroup() as group:
            for _ in range(parallel):
                group.create_task(worker())
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
    return {"msg_s": count / seconds, "cpu_ms": cpu_s * 1000 / count, "parallel": parallel,
            "transport": transport}


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "raw":
        transport = argv[3] if len(argv) > 3 else "aiohttp"
        print(json.dumps(asyncio.run(send_raw(int(argv[1]), int(argv[2]), transport))),
              flush=True)
        return 0
    if mode not in ("enqueue", "deliver"):
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(run(mode, int(argv[1])))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
