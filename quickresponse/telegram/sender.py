"""The Telegram side of alert delivery: one ``sendMessage``, its errors in the core's terms.

The message goes out as residents' replies do (``send_html`` in ``telegram/common.py``), not
through ``Bot.send_message``: nothing reads the ``Message`` Telegram answers with, and building
it (``Message.de_json``) and checking the arguments cost about as much CPU as the HTTP request
itself at 1,000 messages/s (README, "Performance").
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from quickresponse.alerts.delivery import SendOutcome
from quickresponse.telegram.common import send_html

log = logging.getLogger(__name__)

# Bad requests that mean the chat is gone for good: treat like a block (stop sending there).
_GONE = ("chat not found", "user is deactivated", "bot was kicked", "not enough rights",
         "have no rights to send", "peer_id_invalid")


class TelegramSender:
    """Implements :class:`quickresponse.alerts.delivery.Sender` with a PTB ``Bot``."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, chat_id: int, html: str, *, paid: bool) -> SendOutcome:
        try:
            await send_html(self._bot, chat_id, html, paid=paid)
        except RetryAfter as exc:
            with warnings.catch_warnings():
                # PTB 22 warns that the type becomes timedelta; both are handled here.
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            return SendOutcome.retry(seconds, "RetryAfter")
        except Forbidden as exc:
            return SendOutcome.blocked(_short(exc))
        except ChatMigrated as exc:
            # A group became a supergroup; its subscriptions must be renewed from the new chat.
            return SendOutcome.blocked(f"migrated to {exc.new_chat_id}")
        except BadRequest as exc:
            if any(part in str(exc).lower() for part in _GONE):
                return SendOutcome.blocked(_short(exc))
            log.warning("alert message rejected by Telegram: %s", _short(exc))
            return SendOutcome.permanent(_short(exc))
        except (TimedOut, NetworkError) as exc:
            return SendOutcome.transient(_short(exc))
        except TelegramError as exc:
            return SendOutcome.transient(_short(exc))
        return SendOutcome.sent()


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
