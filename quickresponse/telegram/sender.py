"""The Telegram side of alert delivery: one ``sendMessage``, its errors in the core's terms.

The message goes out as a bare ``sendMessage`` call (``Bot._post``, as residents' replies do,
``telegram/common.py``), not through ``Bot.send_message``: nothing reads the ``Message``
Telegram answers with, and building it (``Message.de_json``) and checking the arguments cost
about as much CPU as the HTTP request itself at 1,000 messages/s (README, "Performance").
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import Any

from telegram import Bot
from telegram.constants import ParseMode
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

log = logging.getLogger(__name__)

# Bad requests that mean the chat is gone for good: treat like a block (stop sending there).
_GONE = ("chat not found", "user is deactivated", "bot was kicked", "not enough rights",
         "have no rights to send", "peer_id_invalid")


class TelegramSender:
    """Implements :class:`quickresponse.alerts.delivery.Sender` with a PTB ``Bot``."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, chat_id: int, html: str, *, paid: bool) -> SendOutcome:
        # What Bot.send_message would send for these arguments.
        data: dict[str, Any] = {
            "chat_id": chat_id, "text": html, "parse_mode": ParseMode.HTML.value,
            "link_preview_options": {"is_disabled": True},
        }
        if paid:
            data["allow_paid_broadcast"] = True
        try:
            # Bot._post: the path of every Bot.send_* (defaults, ExtBot's rate limiter, PTB's
            # errors), without building a Message from the answer.
            await self._bot._post("sendMessage", data)
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
