"""The bot as the whole-bot benchmark runs it: one process, started like production.

    python -m bench.bot_process polling|webhook [--rate-limit] [--echo]

Settings come from ``QR_*`` environment variables, as in production; the benchmark points
``QR_TELEGRAM_API_URL`` at its fake Bot API. This is ``quickresponse.telegram.runner.run_bot``
with one difference: the rate limiter can be left off, because with it on every reply waits for
Telegram's 30 messages per second and the benchmark would measure the limiter, not the bot.

``--echo`` runs the baseline instead: PTB alone, with the same updater, update processor and
HTTP client, answering every text with "ok" (no knowledge base, no database). What it manages
on this machine at this moment is the ceiling the bot is compared with.

Prints ``ready`` once it takes updates; SIGTERM stops it the way production stops.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiohttp import web
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from quickresponse.logs import configure_logging
from quickresponse.services import build_services
from quickresponse.settings import Settings, load_settings
from quickresponse.telegram.app import build_application, register_commands
from quickresponse.telegram.processing import OrderedUpdateProcessor
from quickresponse.telegram.runner import shutdown
from quickresponse.telegram.transport import AiohttpRequest
from quickresponse.telegram.web import make_web_app, serve, webhook_handler


async def run(mode: str, *, rate_limit: bool) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    services = await build_services(settings)
    application = build_application(services, rate_limit=rate_limit)
    stop = _stop_on_signal()
    server = None
    try:
        async with application:
            await register_commands(application)
            await application.start()
            await services.start_background()
            if mode == "webhook":
                await application.bot.set_webhook(
                    url=settings.webhook_url or "", secret_token=settings.webhook_secret,
                    allowed_updates=Update.ALL_TYPES)
                server = await serve(
                    make_web_app(services, application, webhook_path=settings.webhook_path,
                                 secret=settings.webhook_secret),
                    settings.webhook_listen, settings.webhook_port)
            else:
                assert application.updater is not None
                await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
            print("ready", flush=True)
            await stop.wait()
            await shutdown(application, services, server)
    finally:
        await services.close()


async def say_ok(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer any text with "ok" (the baseline's only handler)."""
    if update.effective_chat is not None:
        await update.effective_chat.send_message("ok")


def echo_application(settings: Settings) -> Application:  # type: ignore[type-arg]
    assert settings.telegram_token
    application = (
        ApplicationBuilder()
        .token(settings.telegram_token)
        .base_url(settings.bot_base_url)
        .base_file_url(settings.bot_file_url)
        .concurrent_updates(OrderedUpdateProcessor(64))
        # The bot's own HTTP client (build_application), so that only the handlers differ.
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, say_ok))
    return application


async def run_echo(mode: str) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    application = echo_application(settings)
    stop = _stop_on_signal()
    server = None
    async with application:
        await application.start()
        if mode == "webhook":
            app = web.Application()
            app.router.add_post(rf"/{settings.webhook_path.strip('/')}",
                                webhook_handler(application, settings.webhook_secret or ""))
            server = await serve(app, settings.webhook_listen, settings.webhook_port)
        else:
            assert application.updater is not None
            await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
        print("ready", flush=True)
        await stop.wait()
        if server is not None:
            await server.stop()
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        await application.stop()


def _stop_on_signal() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bot_process")
    parser.add_argument("mode", choices=("polling", "webhook"))
    parser.add_argument("--rate-limit", action="store_true",
                        help="PTB's AIORateLimiter as production has it (30 messages/s)")
    parser.add_argument("--echo", action="store_true", help="the PTB-only baseline")
    args = parser.parse_args(argv)
    if args.echo:
        asyncio.run(run_echo(args.mode))
    else:
        asyncio.run(run(args.mode, rate_limit=args.rate_limit))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
