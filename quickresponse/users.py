"""Residents and staff as users: language preference, last seen, active."""

from __future__ import annotations

from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.i18n import Lang, normalise_lang
from quickresponse.models import User


class UserService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def touch(self, user_id: int) -> User:
        """Record that the user is here; create them on first contact."""
        now = self._clock.now()

        async def work(session):  # type: ignore[no-untyped-def]
            user = await session.get(User, user_id)
            if user is None:
                user = User(id=user_id, created_at=now, last_seen_at=now)
            user.last_seen_at = now
            user.active = True
            session.add(user)
            return user

        return await self._db.run(work)

    async def language(self, user_id: int) -> Lang | None:
        """The language the user chose, or None if they never chose one."""
        async def work(session):  # type: ignore[no-untyped-def]
            user = await session.get(User, user_id)
            return None if user is None or user.language is None else normalise_lang(user.language)

        return await self._db.run(work)

    async def set_language(self, user_id: int, lang: Lang) -> None:
        now = self._clock.now()

        async def work(session):  # type: ignore[no-untyped-def]
            user = await session.get(User, user_id)
            if user is None:
                user = User(id=user_id, created_at=now, last_seen_at=now)
            user.language = lang
            session.add(user)

        await self._db.run(work)

    async def mark_inactive(self, user_id: int) -> None:
        """Telegram said the user blocked the bot: stop sending to them."""
        async def work(session):  # type: ignore[no-untyped-def]
            user = await session.get(User, user_id)
            if user is not None:
                user.active = False
                session.add(user)

        await self._db.run(work)
