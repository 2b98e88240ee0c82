"""The Telegram application factory: the one place where handlers are wired together."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Iterable
from typing import Protocol

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest

from quickresponse.conversations import Conversation
from quickresponse.errors import ConfigError, StorageUnavailable
from quickresponse.services import Services
from quickresponse.telegram import commands
from quickresponse.telegram.codec import InvalidCallback
from quickresponse.telegram.common import (
    FLOWS,
    BotData,
    QRApplication,
    QRContext,
    handle_error,
    user_lang,
)
from quickresponse.telegram.processing import OrderedUpdateProcessor
from quickresponse.telegram.transport import AiohttpRequest

log = logging.getLogger(__name__)

# Each module has ``register(app)`` and ``COMMANDS``: (command, catalogue key of its description).
HANDLER_MODULES: tuple[str, ...] = (
    # Before qa: the tickets module's "talk to staff" handler wins over qa's 12345 fallback.
    "quickresponse.telegram.tickets",
    "quickresponse.telegram.staff",
    "quickresponse.telegram.qa",
    "quickresponse.telegram.privacy",
    "quickresponse.telegram.subscriptions",
    "quickresponse.telegram.alerts",
)
ROUTER_GROUP = 50
# What route_message takes: plain text, locations and photos.
ROUTED = (filters.TEXT & ~filters.COMMAND) | filters.LOCATION | filters.PHOTO


class HandlerModule(Protocol):
    COMMANDS: Iterable[tuple[str, str]]

    def register(self, app: QRApplication) -> None: ...


def handler_modules() -> list[HandlerModule]:
    return [importlib.import_module(name) for name in HANDLER_MODULES]  # type: ignore[misc]


def build_application(
    services: Services,
    *,
    request: BaseRequest | None = None,
    rate_limit: bool = True,
) -> QRApplication:
    """Build the bot exactly as production runs it; tests pass a fake ``request``."""
    settings = services.settings
    if not settings.telegram_token:
        raise ConfigError("QR_TELEGRAM_TOKEN is not set")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_token)
        .base_url(settings.bot_base_url)
        .base_file_url(settings.bot_file_url)
        .context_types(ContextTypes(context=QRContext, bot_data=BotData))
        .concurrent_updates(OrderedUpdateProcessor(64))
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    else:
        # aiohttp, not PTB's httpx: a quarter to an eighth of the CPU per API call (transport.py).
        builder = builder.request(AiohttpRequest()).get_updates_request(
            AiohttpRequest(connection_pool_size=1))
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=2))
    app: QRApplication = builder.build()  # type: ignore[assignment]
    app.bot_data.services = services
    app.bot_data.menus = commands.Menus(handler_modules())
    # Before every other handler: an update Telegram delivers twice is handled once.
    app.add_handler(TypeHandler(Update, skip_duplicate_update), group=-100)
    for module in handler_modules():
        module.register(app)
    app.add_handler(MessageHandler(ROUTED, route_message), group=ROUTER_GROUP)
    # Same group as the modules' button handlers, added last: only presses none of them took.
    app.add_handler(CallbackQueryHandler(reject_unknown_button))
    app.add_error_handler(handle_error)  # type: ignore[arg-type]
    return app


async def register_commands(app: QRApplication) -> None:
    """Set the command menus: residents', and each admin's, staff member's and staff group's."""
    await commands.register_commands(app.bot, app.bot_data.services, app.bot_data.menus)


async def skip_duplicate_update(update: Update, context: QRContext) -> None:
    """Stop here if this update id was already taken (by this or another process)."""
    services = context.services
    user, chat = update.effective_user, update.effective_chat
    try:
        if user is not None and chat is not None and ROUTED.check_update(update):
            # The message will be routed by its conversation: read it in the transaction that
            # takes the id (one round trip per message, not two).
            first, context.conversation_ahead = await asyncio.gather(
                services.updates.first_time(update.update_id),
                services.conversations.read_ahead(chat.id, user.id))
        else:
            first = await services.updates.first_time(update.update_id)
    except StorageUnavailable:
        # Without the database a redelivery can't be recognised; handling it beats losing it.
        log.warning("update log unavailable; handling the update without the duplicate check")
        return
    if not first:
        log.info("skipping redelivered update", extra={"update_id": update.update_id})
        raise ApplicationHandlerStop


async def route_message(update: Update, context: QRContext) -> None:
    """Send a message to the flow the user is in, or to the default handler for its kind."""
    message = update.effective_message
    user = update.effective_user
    chat = update.effective_chat
    if message is None or user is None or chat is None:
        return
    kind = "text" if message.text else "location" if message.location else "photo"
    try:
        conversation = await context.services.conversations.get(
            chat.id, user.id, ahead=context.conversation_ahead)
    except StorageUnavailable:
        if kind != "text" or chat.type != chat.PRIVATE:
            raise
        # The resident's flow can't be read: answer the text as a question from memory; the
        # answer says it was not saved and asks to resend if it belonged to a report.
        conversation = None
    flow = FLOWS.get(conversation.flow) if conversation else None
    if flow is not None and conversation is not None:
        handler = getattr(flow, f"on_{kind}")
        if handler is not None:
            await handler(update, context, conversation)
            return
    if chat.type != chat.PRIVATE:
        return  # in staff groups the bot only reacts to commands, buttons and its own flows
    default = FLOWS.get(f"default:{kind}")
    if default is not None:
        handler = getattr(default, f"on_{kind}")
        await handler(update, context, conversation or Conversation("", ""))


async def reject_unknown_button(update: Update, context: QRContext) -> None:
    """Answer a button press no handler claimed: forged or stale data."""
    raise InvalidCallback(update.callback_query.data if update.callback_query else "")


__all__ = ["build_application", "user_lang"]
