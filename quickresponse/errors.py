"""One exception tree for the whole project.

Each error is named for the condition. ``message_key`` names the catalogue entry that tells the
user what happened in their language; the Telegram adapter and the console render it, never the
traceback.
"""

from __future__ import annotations

from typing import Any


class QuickResponseError(Exception):
    """Base class of every error this project raises on purpose."""

    message_key = "error.generic"

    def __init__(self, detail: str = "", **params: Any) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail
        self.params = params


class ConfigError(QuickResponseError):
    """A setting is missing or invalid; the process cannot start."""


class KnowledgeBaseInvalid(QuickResponseError):
    """The knowledge base failed validation; the bot refuses to start on it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the knowledge base")
        self.problems = problems


class UnknownEntry(QuickResponseError):
    """No knowledge-base entry has that id."""

    message_key = "error.unknown_entry"


class NotPermitted(QuickResponseError):
    """The user does not have the role this action needs."""

    message_key = "error.not_permitted"


class InvalidInput(QuickResponseError):
    """The user's input cannot be used (too long, empty, malformed)."""

    message_key = "error.invalid_input"


class StaleAction(QuickResponseError):
    """A button or callback refers to something that no longer exists or has changed."""

    message_key = "error.stale_action"


class StorageUnavailable(QuickResponseError):
    """The database could not be reached after retrying; the user is asked to resend."""

    message_key = "error.storage_unavailable"
