"""Residents' questions on Telegram: /start, /help, free text."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CommandHandler

from quickresponse.conversations import Conversation
from quickresponse.i18n import escape
from quickresponse.telegram.common import Flow, QRApplication, QRContext, register_flow, reply

COMMANDS: list[tuple[str, str]] = []


async def answer_question(update: Update, context: QRContext, _conv: Conversation) -> None:
    """Answer a free-text question from the knowledge base."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and message.text is not None
    result = await context.services.qa.ask(user.id if user else None, message.text)
    if result.entry is not None:
        await reply(update, escape(result.entry.answer[result.lang]))


async def start(update: Update, context: QRContext) -> None:
    """Greet the resident."""
    await reply(update, "QuickResponse")


def register(app: QRApplication) -> None:
    app.add_handler(CommandHandler("start", start))
    register_flow(Flow("default:text", on_text=answer_question))
