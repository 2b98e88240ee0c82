"""Conversation state for multi-step flows, stored in the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.models import ConversationState


@dataclass
class Conversation:
    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)


def conversation_key(chat_id: int, user_id: int) -> str:
    return f"{chat_id}:{user_id}"


class ConversationStore:
    """Read, write and end the flow a user is in within one chat."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, chat_id: int, user_id: int) -> Conversation | None:
        async def work(session):  # type: ignore[no-untyped-def]
            row = await session.get(ConversationState, conversation_key(chat_id, user_id))
            return None if row is None else Conversation(row.flow, row.step, dict(row.data))

        return await self._db.run(work)

    async def set(self, chat_id: int, user_id: int, conversation: Conversation) -> None:
        key = conversation_key(chat_id, user_id)

        async def work(session):  # type: ignore[no-untyped-def]
            row = await session.get(ConversationState, key)
            if row is None:
                row = ConversationState(key=key, flow="", step="", updated_at=self._clock.now())
            row.flow = conversation.flow
            row.step = conversation.step
            row.data = dict(conversation.data)
            row.version += 1
            row.updated_at = self._clock.now()
            session.add(row)

        await self._db.run(work)

    async def clear(self, chat_id: int, user_id: int) -> bool:
        """End the flow; return whether there was one."""
        key = conversation_key(chat_id, user_id)

        async def work(session):  # type: ignore[no-untyped-def]
            row = await session.get(ConversationState, key)
            if row is None:
                return False
            await session.delete(row)
            return True

        return await self._db.run(work)

    async def all_in_flow(self, flow: str) -> list[tuple[str, Conversation]]:
        async def work(session):  # type: ignore[no-untyped-def]
            rows = (await session.exec(select(ConversationState).where(
                ConversationState.flow == flow))).all()
            return [(r.key, Conversation(r.flow, r.step, dict(r.data))) for r in rows]

        return await self._db.run(work)
