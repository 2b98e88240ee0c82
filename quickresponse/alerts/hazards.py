"""The hazards and warning levels an alert can carry, and how they map onto CAP 1.2."""

from __future__ import annotations

from enum import StrEnum

from quickresponse.i18n import t


class Hazard(StrEnum):
    RAINSTORM = "rainstorm"
    FLOOD = "flood"
    FLASH_FLOOD = "flash_flood"
    EARTHQUAKE = "earthquake"
    HEAT = "heat"
    COLD_WAVE = "cold_wave"
    SNOW = "snow"
    SANDSTORM = "sandstorm"
    STRONG_WIND = "strong_wind"
    THUNDERSTORM = "thunderstorm"
    HAIL = "hail"
    AIR_POLLUTION = "air_pollution"
    OTHER = "other"

    def label(self, lang: str) -> str:
        """The hazard's name in ``lang`` (e.g. 暴雨 / Rainstorm)."""
        return t(f"alerts.hazard.{self.value}", lang)

    @property
    def cap_category(self) -> str:
        return _CAP_CATEGORY[self]

    @property
    def related_topics(self) -> tuple[str, ...]:
        """Knowledge-base entries a resident most likely needs while this hazard is in force."""
        return RELATED_TOPICS[self]


class Level(StrEnum):
    """China's four warning colours, least to most severe (CMA Order No. 16)."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def rank(self) -> int:
        return _LEVEL_ORDER.index(self) + 1

    def label(self, lang: str) -> str:
        """The colour's name in ``lang`` (蓝色 / Blue)."""
        return t(f"alerts.level.{self.value}", lang)

    @property
    def emoji(self) -> str:
        return _LEVEL_EMOJI[self]

    @property
    def cap_severity(self) -> str:
        return _CAP_SEVERITY[self]

    @property
    def cap_urgency(self) -> str:
        return _CAP_URGENCY[self]


_LEVEL_ORDER = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
_LEVEL_EMOJI = {Level.BLUE: "🔵", Level.YELLOW: "🟡", Level.ORANGE: "🟠", Level.RED: "🔴"}
# Severity follows the level's own definition (IV 一般 .. I 特别严重). Urgency: blue and yellow
# signals announce conditions expected within 12 / 6 hours, orange and red within 3 hours or
# already happening, so residents must act now.
_CAP_SEVERITY = {Level.BLUE: "Minor", Level.YELLOW: "Moderate", Level.ORANGE: "Severe",
                 Level.RED: "Extreme"}
_CAP_URGENCY = {Level.BLUE: "Expected", Level.YELLOW: "Expected", Level.ORANGE: "Immediate",
                Level.RED: "Immediate"}
# CAP 1.2 <category>: floods are meteorological ("Met - Meteorological (inc. flood)").
_CAP_CATEGORY = {
    Hazard.RAINSTORM: "Met", Hazard.FLOOD: "Met", Hazard.FLASH_FLOOD: "Met",
    Hazard.EARTHQUAKE: "Geo", Hazard.HEAT: "Met", Hazard.COLD_WAVE: "Met", Hazard.SNOW: "Met",
    Hazard.SANDSTORM: "Met", Hazard.STRONG_WIND: "Met", Hazard.THUNDERSTORM: "Met",
    Hazard.HAIL: "Met", Hazard.AIR_POLLUTION: "Env", Hazard.OTHER: "Other",
}
RELATED_TOPICS: dict[Hazard, tuple[str, ...]] = {
    Hazard.RAINSTORM: ("rainstorm-home", "flood-walking", "flood-driving", "flood-trapped",
                       "flood-basement", "rainstorm-prepare"),
    Hazard.FLOOD: ("flood-walking", "flood-driving", "flood-trapped", "flood-basement",
                   "evacuation", "flood-after"),
    Hazard.FLASH_FLOOD: ("flash-flood-mudslide", "evacuation", "flood-trapped", "flood-walking"),
    Hazard.EARTHQUAKE: ("earthquake-during", "earthquake-after", "shelters", "go-bag"),
    Hazard.HEAT: ("heatwave", "vulnerable-people", "power-outage"),
    Hazard.COLD_WAVE: ("cold-wave", "co-poisoning", "vulnerable-people"),
    Hazard.SNOW: ("snow-ice", "cold-wave", "co-poisoning"),
    Hazard.SANDSTORM: ("sandstorm", "air-pollution"),
    Hazard.STRONG_WIND: ("strong-wind",),
    Hazard.THUNDERSTORM: ("thunderstorm-lightning", "rainstorm-home", "electric-shock"),
    Hazard.HAIL: ("hail", "thunderstorm-lightning"),
    Hazard.AIR_POLLUTION: ("air-pollution", "vulnerable-people"),
    Hazard.OTHER: ("emergency-numbers",),
}


def parse_hazard(value: str) -> Hazard:
    """``Hazard`` from its id, tolerating case, dashes and spaces ("flash-flood")."""
    from quickresponse.alerts.errors import UnknownHazard

    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return Hazard(key)
    except ValueError:
        raise UnknownHazard(value, hazard=value) from None


def parse_level(value: str) -> Level:
    from quickresponse.alerts.errors import UnknownLevel

    try:
        return Level(value.strip().lower())
    except ValueError:
        raise UnknownLevel(value, level=value) from None
