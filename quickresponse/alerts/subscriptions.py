"""Residents choose which districts (and which hazards, from which level) they are warned about.

A subscriber is a chat: a resident's private chat (chat id = user id) or a group. District ids
are the city's adcodes from :mod:`quickresponse.districts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.clock import Clock
from quickresponse.db import Database

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
        raise NotImplementedError

    def district(self, district_id: str) -> District:
        """The district with that id; raises ``UnknownDistrict``."""
        raise NotImplementedError

    async def get(self, chat_id: int) -> SubscriptionView:
        """What ``chat_id`` is subscribed to (an empty view if nothing)."""
        raise NotImplementedError

    async def subscribe(self, chat_id: int, district_ids: Iterable[str]) -> SubscriptionView:
        """Add districts (idempotent); raises ``UnknownDistrict`` before changing anything."""
        raise NotImplementedError

    async def unsubscribe(
        self, chat_id: int, district_ids: Iterable[str] | None = None
    ) -> SubscriptionView:
        """Remove the given districts, or every subscription and preference when ``None``."""
        raise NotImplementedError

    async def set_preferences(
        self, chat_id: int, *, hazards: Iterable[Hazard] | None = None,
        min_level: Level = Level.BLUE,
    ) -> SubscriptionView:
        """Choose which hazards (None or empty = all) and from which level to be warned."""
        raise NotImplementedError

    async def count_recipients(
        self, district_ids: Iterable[str], hazard: Hazard, level: Level
    ) -> int:
        """How many active chats an alert with these targets would reach (deduplicated)."""
        raise NotImplementedError
