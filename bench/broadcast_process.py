"""One broadcast, in a process of its own, as the bot would run it (for ``broadcast_bench``).

    python -m bench.broadcast_process enqueue|deliver ADMIN_ID

Settings come from ``QR_*`` environment variables (database, fake Bot API URL, broadcast rate).
The process builds the services and the Telegram application exactly as production does (the
application attaches the alert sender: PTB's bot with its rate limiter, behind the core's
token bucket), composes a warning for every district as ``ADMIN_ID`` and confirms it for now.

* ``enqueue``: times the admin's confirmation and the due run that queues one delivery row per
  recipient, then stops before sending.
* ``deliver``: also sends every message and waits for the end of the broadcast.

Its own resident set size is sampled every 20 ms while it works (often enough for a
build-up that lasts seconds, rarely enough not to slow the sending), so the peak is this
process's alone. Prints one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import threading
import time
from typing import Any

import psutil

from quickresponse.alerts.service import AlertDraft, Hazard, Level
from quickresponse.logs import configure_logging
from quickresponse.services import build_services
from quickresponse.settings import load_settings
from quickresponse.telegram.app import build_application

HAZARD = Hazard.RAINSTORM
LEVEL = Level.ORANGE


class PeakMemory:
    """Samples this process's resident set size in a thread until stopped."""

    def __init__(self, every: float = 0.02) -> None:
        self._process = psutil.Process()
        self._every = every
        self._stop = threading.Event()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


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
            with PeakMemory() as memory:
                started = time.perf_counter()
                await services.alerts.submit(admin_id, view.id)
                report = await services.alerts.run_due(wait=False)
                figures["enqueue_s"] = time.perf_counter() - started
                if mode == "deliver":
                    begun = time.perf_counter()
                    done = await services.alerts.run_due(wait=True)
                    figures["deliver_s"] = time.perf_counter() - begun
                    figures["reports"] = len(done.reports)
            stats = await services.alerts.stats(view.id)
            figures.update(
                alert_id=view.id, started=list(report.started), total=stats.total,
                sent=stats.sent, failed=stats.failed, blocked=stats.blocked,
                pending=stats.pending, sending=stats.sending,
                rss_baseline_mb=memory.baseline / 2**20, rss_peak_mb=memory.peak / 2**20,
                maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            )
    finally:
        # Stops a broadcast still running (enqueue mode), as a shutdown would.
        await services.close()
    return figures


def main(argv: list[str]) -> int:
    mode, admin_id = argv[0], int(argv[1])
    if mode not in ("enqueue", "deliver"):
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(run(mode, admin_id))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
