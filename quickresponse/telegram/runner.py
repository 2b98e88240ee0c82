"""Run the bot on Telegram until SIGINT or SIGTERM: long polling or webhook."""

from __future__ import annotations

import asyncio
import logging
import signal

from telegram import Update

from quickresponse.errors import ConfigError
from quickresponse.services import Services, build_services
from quickresponse.settings import Settings
from quickresponse.telegram.app import build_application, register_commands
from quickresponse.telegram.web import make_web_app, serve

log = logging.getLogger(__name__)


def check_webhook_settings(settings: Settings) -> None:
    if not settings.webhook_url:
        raise ConfigError("webhook mode needs QR_WEBHOOK_URL (the public https URL Telegram calls)")
    if not settings.webhook_secret:
        raise ConfigError("webhook mode needs QR_WEBHOOK_SECRET (16-256 of A-Z a-z 0-9 _ -)")


async def run_bot(settings: Settings, *, webhook: bool = False) -> None:
    """Start everything, wait for a stop signal, then shut down in order."""
    if webhook:
        check_webhook_settings(settings)
    services = await build_services(settings)
    application = build_application(services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = None
    try:
        async with application:
            await register_commands(application)
            await application.start()
            await services.start_background()
            if webhook:
                await application.bot.set_webhook(
                    url=settings.webhook_url or "", secret_token=settings.webhook_secret,
                    allowed_updates=Update.ALL_TYPES,
                )
                server = await serve(
                    make_web_app(services, application, webhook_path=settings.webhook_path,
                                 secret=settings.webhook_secret),
                    settings.webhook_listen, settings.webhook_port,
                )
                log.info("QuickResponse is running (webhook on %s:%d/%s)",
                         settings.webhook_listen, settings.webhook_port, settings.webhook_path)
            else:
                assert application.updater is not None
                await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
                if settings.metrics_port:
                    server = await serve(make_web_app(services), settings.webhook_listen,
                                   settings.metrics_port)
                log.info("QuickResponse is running (long polling, %d knowledge-base entries)",
                         len(services.kb))
            await stop.wait()
            await shutdown(application, services, server)
    finally:
        await services.close()


async def shutdown(application, services: Services, server) -> None:  # type: ignore[no-untyped-def]
    """Stop taking updates, let in-flight handlers and deliveries finish, then stop."""
    log.info("stopping: no new updates are taken")
    if server is not None:
        await server.stop()
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    services.scheduler.shutdown()
    # Application.stop waits for the update queue to drain and running handlers to finish.
    await application.stop()
    log.info("stopped cleanly")
