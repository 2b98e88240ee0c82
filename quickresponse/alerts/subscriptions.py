"""Residents choose which districts (and which hazards, from which level) they are warned about.

A subscriber is a chat: a resident's private chat (chat id = user id) or a group. District ids
are the city's adcodes from :mod:`quickresponse.districts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, delete, distinct, exists, false, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.alerts.errors import UnknownDistrict
from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.alerts.models import AlertHazardFilter, AlertPreference, AlertSubscription
from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.models import User

if TYPE_CHECKING:
    from quickresponse.districts import City, District


@dataclass(frozen=True)
class SubscriptionView:
    """What one chat receives. Empty ``hazards`` means every hazard."""

    chat_id: int
    district_ids: tuple[str, ...] = ()
    hazards: tuple[Hazard, ...] = ()
    min_level: Level = Level.BLUE

    @property
    def subscribed(self) -> bool:
        return bool(self.district_ids)

    def wants(self, hazard: Hazard, level: Level) -> bool:
        """Whether an alert of this hazard and level reaches this chat (districts aside)."""
        return (not self.hazards or hazard in self.hazards) and level.rank >= self.min_level.rank


class SubscriptionService:
    def __init__(self, db: Database, clock: Clock, city: City) -> None:
        self._db = db
        self._clock = clock
        self.city = city

    def districts(self) -> list[District]:
        """Every district of the city, in the city file's order (for buttons)."""
        return list(self.city.districts)

    def district(self, district_id: str) -> District:
        """The district with that id; raises ``UnknownDistrict``."""
        if not self.city.has_district(district_id):
            raise UnknownDistrict(f"no district {district_id!r}", district=district_id)
        return self.city.district(district_id)

    def check_districts(self, district_ids: Iterable[str]) -> tuple[str, ...]:
        """The ids, deduplicated in city order; raises ``UnknownDistrict`` on the first unknown."""
        wanted = set()
        for district_id in district_ids:
            self.district(district_id)
            wanted.add(district_id)
        return tuple(d.id for d in self.city.districts if d.id in wanted)

    async def get(self, chat_id: int) -> SubscriptionView:
        """What ``chat_id`` is subscribed to (an empty view if nothing)."""
        return await self._db.run(lambda session: self._view(session, chat_id))

    async def subscribe(self, chat_id: int, district_ids: Iterable[str]) -> SubscriptionView:
        """Add districts (idempotent); raises ``UnknownDistrict`` before changing anything."""
        ids = self.check_districts(district_ids)
        now = self._clock.now()

        async def work(session: AsyncSession) -> SubscriptionView:
            have = set((await session.exec(
                select(AlertSubscription.district_id)
                .where(AlertSubscription.chat_id == chat_id))).all())
            for district_id in ids:
                if district_id not in have:
                    session.add(AlertSubscription(
                        chat_id=chat_id, district_id=district_id, created_at=now))
            await session.flush()
            return await self._view(session, chat_id)

        return await self._db.run(work)

    async def unsubscribe(
        self, chat_id: int, district_ids: Iterable[str] | None = None
    ) -> SubscriptionView:
        """Remove the given districts, or every subscription and preference when ``None``."""
        ids = None if district_ids is None else self.check_districts(district_ids)

        async def work(session: AsyncSession) -> SubscriptionView:
            stmt = delete(AlertSubscription).where(col(AlertSubscription.chat_id) == chat_id)
            if ids is not None:
                stmt = stmt.where(col(AlertSubscription.district_id).in_(ids))
            else:
                await session.exec(delete(AlertHazardFilter).where(
                    col(AlertHazardFilter.chat_id) == chat_id))
                await session.exec(delete(AlertPreference).where(
                    col(AlertPreference.chat_id) == chat_id))
            await session.exec(stmt)
            return await self._view(session, chat_id)

        return await self._db.run(work)

    async def set_preferences(
        self, chat_id: int, *, hazards: Iterable[Hazard] | None = None,
        min_level: Level = Level.BLUE,
    ) -> SubscriptionView:
        """Choose which hazards (None or empty = all) and from which level to be warned."""
        chosen = sorted({Hazard(h) for h in hazards or ()})
        level = Level(min_level)
        now = self._clock.now()

        async def work(session: AsyncSession) -> SubscriptionView:
            await session.exec(delete(AlertHazardFilter).where(
                col(AlertHazardFilter.chat_id) == chat_id))
            for hazard in chosen:
                session.add(AlertHazardFilter(chat_id=chat_id, hazard=hazard.value))
            pref = await session.get(AlertPreference, chat_id)
            if pref is None:
                pref = AlertPreference(chat_id=chat_id, updated_at=now)
            pref.min_level_rank = level.rank
            pref.updated_at = now
            session.add(pref)
            await session.flush()
            return await self._view(session, chat_id)

        return await self._db.run(work)

    async def count_recipients(
        self, district_ids: Iterable[str], hazard: Hazard, level: Level
    ) -> int:
        """How many active chats an alert with these targets would reach (deduplicated)."""
        ids = self.check_districts(district_ids)
        if not ids:
            return 0

        async def work(session: AsyncSession) -> int:
            stmt = (
                select(func.count(distinct(AlertSubscription.chat_id)))
                .where(col(AlertSubscription.district_id).in_(ids))
                .where(wants_alert(hazard, level))
            )
            return int((await session.exec(stmt)).one())

        return await self._db.run(work)

    async def chat_ids_for(self, district_id: str) -> list[int]:
        """Active chats subscribed to one district (small lists; broadcasts use SQL)."""
        self.district(district_id)

        async def work(session: AsyncSession) -> list[int]:
            stmt = (select(AlertSubscription.chat_id)
                    .where(AlertSubscription.district_id == district_id)
                    .order_by(col(AlertSubscription.chat_id)))
            return list((await session.exec(stmt)).all())

        return await self._db.run(work)

    async def _view(self, session: AsyncSession, chat_id: int) -> SubscriptionView:
        have = set((await session.exec(
            select(AlertSubscription.district_id)
            .where(AlertSubscription.chat_id == chat_id))).all())
        hazards = (await session.exec(
            select(AlertHazardFilter.hazard).where(AlertHazardFilter.chat_id == chat_id))).all()
        pref = await session.get(AlertPreference, chat_id)
        order = [d.id for d in self.city.districts]
        # A district dropped from the city file keeps its rows but is not shown or sent to.
        ids = tuple(d for d in order if d in have)
        return SubscriptionView(
            chat_id=chat_id, district_ids=ids,
            hazards=tuple(sorted(Hazard(h) for h in hazards if h in set(Hazard))),
            min_level=_LEVEL_BY_RANK.get(pref.min_level_rank, Level.BLUE) if pref else Level.BLUE,
        )


_LEVEL_BY_RANK = {level.rank: level for level in Level}


def wants_alert(hazard: Hazard, level: Level) -> ColumnElement[bool]:
    """SQL condition on ``alert_subscriptions.chat_id``: the chat is active and its preferences
    let an alert of this hazard and level through."""
    chat = AlertSubscription.chat_id
    # An alias, so that a query joining ``users`` itself does not swallow this subquery.
    user = aliased(User)
    inactive = exists().where(user.id == chat, user.active == false())
    any_filter = exists().where(AlertHazardFilter.chat_id == chat)
    this_hazard = exists().where(AlertHazardFilter.chat_id == chat,
                                 AlertHazardFilter.hazard == hazard.value)
    too_low = exists().where(AlertPreference.chat_id == chat,
                             AlertPreference.min_level_rank > level.rank)
    return and_(~inactive, or_(~any_filter, this_hazard), ~too_low)
