"""Core tables: residents, their questions, and conversation state.

Feature packages keep their own tables in their own modules; every table module is imported by
``migrations/env.py`` so that ``SQLModel.metadata`` knows all of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, String, Text
from sqlmodel import Field, SQLModel


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index))


# Stands in for a person who was forgotten (on request or after the retention period) where a
# column needs a user or chat id. Telegram ids fit in 52 bits, so this and anything below it
# (unique stand-ins are FORGOTTEN_ID - row id) can never reach anyone.
FORGOTTEN_ID = -(1 << 62)


def is_forgotten(chat_or_user_id: int) -> bool:
    return chat_or_user_id <= FORGOTTEN_ID


class User(SQLModel, table=True):
    """A Telegram user (or the console's local user) who has talked to the bot."""

    __tablename__ = "users"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    language: str | None = Field(default=None, max_length=2)
    created_at: datetime = utc_column()
    last_seen_at: datetime = utc_column()
    # False once Telegram says the user blocked the bot; broadcasts skip inactive users.
    active: bool = True


class QuestionLog(SQLModel, table=True):
    """One resident question and what the bot did with it; the text is purged after retention."""

    __tablename__ = "question_log"
    __table_args__ = (
        Index("ix_question_log_created_at", "created_at"),
        Index("ix_question_log_outcome", "outcome"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    text: str = Field(sa_column=Column(Text, nullable=False))
    lang: str = Field(max_length=2)
    entry_id: str | None = Field(default=None, max_length=64)
    score: float = 0.0
    urgent: bool = False
    # answered | suggested | no_answer
    outcome: str = Field(sa_column=Column(String(16), nullable=False))
    # helpful | not_helpful | None
    feedback: str | None = Field(default=None, max_length=16)
    # The first topic the resident opened from the answer's buttons: for "did you mean", their
    # choice among the suggestions (migration 0005).
    chosen_entry_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = utc_column()


class ConversationState(SQLModel, table=True):
    """A multi-step flow in progress (a report being filed, an alert being composed).

    Kept in the database so that it survives a restart and so that consecutive updates of one
    user may be handled by different bot processes.
    """

    __tablename__ = "conversation_state"

    key: str = Field(primary_key=True, max_length=64)
    flow: str = Field(max_length=32)
    step: str = Field(max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 0
    updated_at: datetime = utc_column()


class ProcessedUpdate(SQLModel, table=True):
    """Telegram update ids already taken, so an update delivered twice is handled once.

    With several bot processes behind a load balancer Telegram may deliver an update again
    (a webhook answer that timed out); the primary key makes exactly one process win.
    """

    __tablename__ = "processed_updates"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    received_at: datetime = utc_column(index=True)
