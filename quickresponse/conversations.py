"""Conversation state for multi-step flows, stored in the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.models import ConversationState


@dataclass
class Conversation:
    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadAhead:
    """A conversation read before it is needed (with the update's id, in one transaction)."""

    key: str
    conversation: Conversation | None
    # The store's count of writes when it was read: any write since makes it stale.
    writes: int


def conversation_key(chat_id: int, user_id: int) -> str:
    return f"{chat_id}:{user_id}"


# Plain rows by key (no ORM objects: this runs for every message).
_READ = select(ConversationState.key, ConversationState.flow, ConversationState.step,
               ConversationState.data).where(
    col(ConversationState.key).in_(bindparam("keys", expanding=True)))


class ConversationStore:
    """Read, write and end the flow a user is in within one chat."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        # Every message is routed by its conversation: the reads of messages handled together
        # share one query. A read starts after the same user's previous update was handled
        # (updates of one user in one chat are handled in order), so it sees what that one set.
        self._reading = db.batcher(self._read, order=2)
        # Writes this process made (set and clear, done or failed), to tell a stale read-ahead.
        self._writes = 0

    async def get(self, chat_id: int, user_id: int, *,
                  ahead: ReadAhead | None = None) -> Conversation | None:
        """The user's flow in this chat; ``ahead``, if this process wrote no conversation since
        it was read (else it is read again)."""
        key = conversation_key(chat_id, user_id)
        if ahead is not None and ahead.key == key and ahead.writes == self._writes:
            return ahead.conversation
        return await self._reading.submit(key)

    async def read_ahead(self, chat_id: int, user_id: int) -> ReadAhead:
        """Read now what a later :meth:`get` in the same update will want."""
        writes = self._writes
        key = conversation_key(chat_id, user_id)
        return ReadAhead(key, await self._reading.submit(key), writes)

    async def _read(self, session: AsyncSession, keys: list[str]) -> list[Conversation | None]:
        rows = (await session.exec(_READ, params={"keys": sorted(set(keys))})).all()
        found = {key: (flow, step, data) for key, flow, step, data in rows}
        return [None if (row := found.get(key)) is None
                else Conversation(row[0], row[1], dict(row[2])) for key in keys]

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

        try:
            await self._db.run(work)
        finally:
            self._writes += 1

    async def clear(self, chat_id: int, user_id: int) -> bool:
        """End the flow; return whether there was one."""
        key = conversation_key(chat_id, user_id)

        async def work(session):  # type: ignore[no-untyped-def]
            row = await session.get(ConversationState, key)
            if row is None:
                return False
            await session.delete(row)
            return True

        try:
            return await self._db.run(work)
        finally:
            self._writes += 1

    async def all_in_flow(self, flow: str) -> list[tuple[str, Conversation]]:
        async def work(session):  # type: ignore[no-untyped-def]
            rows = (await session.exec(select(ConversationState).where(
                ConversationState.flow == flow))).all()
            return [(r.key, Conversation(r.flow, r.step, dict(r.data))) for r in rows]

        return await self._db.run(work)
