"""The HTTP side: Telegram's webhook, ``/healthz`` and ``/metrics`` (tornado, from PTB's extras).

In webhook mode all three are served on one port; in polling mode ``/healthz`` and ``/metrics``
can be served on an optional port.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import tornado.httpserver
import tornado.web
from telegram import Update

from quickresponse import metrics
from quickresponse.services import Services
from quickresponse.telegram.common import QRApplication

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20  # Telegram updates are small; refuse anything absurd


class _Base(tornado.web.RequestHandler):
    def data_received(self, chunk: bytes) -> None:  # pragma: no cover - not streaming
        pass


class WebhookHandler(_Base):
    """Takes updates from Telegram; a request without the secret token is refused and logged."""

    def initialize(self, bot_app: QRApplication, secret: str) -> None:
        self.application_ = bot_app
        self.secret = secret

    async def post(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("webhook request refused: missing or wrong secret token (from %s)",
                        self.request.remote_ip)
            self.set_status(403)
            self.finish({"ok": False})
            return
        try:
            data = json.loads(self.request.body)
            update = Update.de_json(data, self.application_.bot)
        except (ValueError, TypeError, KeyError):
            log.warning("webhook request refused: body is not a Telegram update")
            self.set_status(400)
            self.finish({"ok": False})
            return
        await self.application_.update_queue.put(update)
        self.finish({"ok": True})


class HealthHandler(_Base):
    """200 when the database answers and the scheduler runs, else 503."""

    def initialize(self, services: Services) -> None:
        self.services = services

    async def get(self) -> None:
        database = await self.services.db.ping()
        scheduler = self.services.scheduler.running
        body: dict[str, Any] = {
            "database": "ok" if database else "unreachable",
            "scheduler": "running" if scheduler else "stopped",
        }
        self.set_status(200 if database and scheduler else 503)
        self.finish(body)


class MetricsHandler(_Base):
    async def get(self) -> None:
        payload, content_type = metrics.render()
        self.set_header("Content-Type", content_type)
        self.finish(payload)


def make_web_app(
    services: Services, application: QRApplication | None = None, *,
    webhook_path: str | None = None, secret: str | None = None,
) -> tornado.web.Application:
    routes: list[Any] = [
        (r"/healthz", HealthHandler, {"services": services}),
        (r"/metrics", MetricsHandler),
    ]
    if application is not None and webhook_path and secret:
        routes.append((rf"/{webhook_path.strip('/')}", WebhookHandler,
                       {"bot_app": application, "secret": secret}))
    return tornado.web.Application(routes)


def serve(app: tornado.web.Application, host: str, port: int) -> tornado.httpserver.HTTPServer:
    server = tornado.httpserver.HTTPServer(app, max_body_size=MAX_BODY, xheaders=True)
    server.listen(port, address=host)
    return server
