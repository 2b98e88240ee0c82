"""Residents and staff as users: language preference, last seen, active."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import Insert, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.i18n import Lang, normalise_lang
from quickresponse.models import User


def _touch_statement(insert: Callable[[Table], Insert]) -> Insert:
    table = User.__table__  # type: ignore[attr-defined]
    new = insert(table)
    return new.on_conflict_do_update(  # type: ignore[attr-defined,no-any-return]
        index_elements=["id"],
        set_={"last_seen_at": new.excluded.last_seen_at, "active": True},  # type: ignore[attr-defined]
    ).returning(table.c.id, table.c.language)


# Built once per dialect: a statement built per call is compiled per call.
_TOUCH = {"postgresql": _touch_statement(pg_insert), "sqlite": _touch_statement(sqlite_insert)}


async def touch_in(session: AsyncSession, user_ids: Iterable[int],
                   now: datetime) -> dict[int, Lang | None]:
    """In ``session``: record that these users are here (created on first contact); return the
    language each chose, or None. One statement, whatever the number of users."""
    ids = sorted(set(user_ids))  # in order: two processes touching the same users can't deadlock
    if not ids:
        return {}
    stmt = _TOUCH[session.get_bind().dialect.name]
    rows = (await session.exec(stmt, params=[
        {"id": i, "created_at": now, "last_seen_at": now, "active": True} for i in ids])).all()
    return {user_id: None if language is None else normalise_lang(language)
            for user_id, language in rows}


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
