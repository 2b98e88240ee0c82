"""The HTTP side: Telegram's webhook, ``/healthz`` and ``/metrics`` (aiohttp's server).

In webhook mode all three are served on one port; in polling mode ``/healthz`` and ``/metrics``
can be served on an optional port.

aiohttp, not the tornado server PTB's webhook extra brings: aiohttp parses HTTP in C, and with
tornado's pure-Python server a webhook request cost the bot about a fifth of a resident's
question (py-spy, ``python -m bench bot``). aiohttp is already the bot's HTTP client.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from telegram import Update

from quickresponse import metrics
from quickresponse.services import Services
from quickresponse.telegram.common import QRApplication

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20  # Telegram updates are small; refuse anything absurd
_OK = json.dumps({"ok": True})
_REFUSED = json.dumps({"ok": False})


def webhook_handler(bot_app: Any, secret: str) -> Handler:
    """Take updates from Telegram; a request without the secret token is refused and logged.

    ``bot_app`` is any PTB ``Application`` (the benchmark's echo baseline uses this too)."""
    expected = secret.encode()

    async def take_update(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), expected):
            log.warning("webhook request refused: missing or wrong secret token (from %s)",
                        request.remote)
            return web.Response(status=403, text=_REFUSED, content_type="application/json")
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, bot_app.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("webhook request refused: body is not a Telegram update")
            return web.Response(status=400, text=_REFUSED, content_type="application/json")
        await bot_app.update_queue.put(update)
        return web.Response(text=_OK, content_type="application/json")

    return take_update


def _health(services: Services) -> Handler:
    async def report_health(_request: web.Request) -> web.Response:
        """200 when the database answers and the scheduler runs, else 503."""
        database = await services.db.ping()
        scheduler = services.scheduler.running
        body = {
            "database": "ok" if database else "unreachable",
            "scheduler": "running" if scheduler else "stopped",
        }
        return web.json_response(body, status=200 if database and scheduler else 503)

    return report_health


async def report_metrics(_request: web.Request) -> web.Response:
    payload, content_type = metrics.render()
    response = web.Response(body=payload)
    # Prometheus's content type carries parameters (version, charset) aiohttp's own argument
    # would not take.
    response.headers["Content-Type"] = content_type
    return response


def make_web_app(
    services: Services, application: QRApplication | None = None, *,
    webhook_path: str | None = None, secret: str | None = None,
) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/healthz", _health(services))
    app.router.add_get("/metrics", report_metrics)
    if application is not None and webhook_path and secret:
        app.router.add_post(f"/{webhook_path.strip('/')}", webhook_handler(application, secret))
    return app


class WebServer:
    """A started server; ``stop`` closes its port and finishes the requests in progress."""

    def __init__(self, runner: web.AppRunner) -> None:
        self._runner = runner

    async def stop(self) -> None:
        await self._runner.cleanup()


async def serve(app: web.Application, host: str, port: int) -> WebServer:
    # No access log: one INFO line per webhook request would be most of the bot's log, and
    # would carry residents' IP addresses (Telegram's, behind a proxy).
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return WebServer(runner)
