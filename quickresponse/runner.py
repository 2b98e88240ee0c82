"""Run the bot on Telegram (long polling) until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from telegram import Update

from quickresponse.services import build_services
from quickresponse.settings import Settings
from quickresponse.telegram.app import _register_commands, build_application

log = logging.getLogger(__name__)


async def run_polling(settings: Settings) -> None:
    services = await build_services(settings)
    application = build_application(services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with application:
            await _register_commands(application)
            await application.start()
            await services.start_background()
            assert application.updater is not None
            await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
            log.info("QuickResponse is running (long polling, %d knowledge-base entries)",
                     len(services.kb))
            await stop.wait()
            log.info("stopping: no new updates are taken")
            await application.updater.stop()
            await application.stop()
    finally:
        await services.close()
