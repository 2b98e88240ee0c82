"""Message templates that pre-fill an alert, and the message a recipient reads.

Templates live in ``quickresponse/data/alert_templates.yaml`` (editable). They are checked when
loaded: every hazard needs a body for each level it is issued at, in zh and en, and an all-clear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.errors import ConfigError
from quickresponse.i18n import LANGS, Html, escape, t

DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "data" / "alert_templates.yaml"
ALL_CLEAR = "all_clear"


@dataclass(frozen=True)
class Templates:
    """Bodies by hazard, level and language; all-clear bodies by hazard and language."""

    bodies: Mapping[Hazard, Mapping[Level, Mapping[str, str]]]
    all_clear: Mapping[Hazard, Mapping[str, str]]

    def levels(self, hazard: Hazard) -> tuple[Level, ...]:
        """The levels this hazard is issued at, least severe first."""
        return tuple(sorted(self.bodies[hazard], key=lambda level: level.rank))

    def body(self, hazard: Hazard, level: Level, lang: str) -> str:
        return self.bodies[hazard][level][lang]

    def all_clear_body(self, hazard: Hazard, lang: str) -> str:
        return self.all_clear[hazard][lang]


def load_templates(path: Path = DEFAULT_TEMPLATES) -> Templates:
    """Read and check the templates file; raise ConfigError naming every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read alert templates: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must map hazard ids to templates")
    problems: list[str] = []
    bodies: dict[Hazard, dict[Level, dict[str, str]]] = {}
    all_clear: dict[Hazard, dict[str, str]] = {}
    for key in raw:
        if key not in set(Hazard):
            problems.append(f"unknown hazard {key!r}")
    for hazard in Hazard:
        entry = raw.get(hazard.value)
        if not isinstance(entry, dict):
            problems.append(f"{hazard.value}: missing")
            continue
        bodies[hazard] = {}
        for key, texts in entry.items():
            where = f"{hazard.value}.{key}"
            if key != ALL_CLEAR and key not in set(Level):
                problems.append(f"{where}: not a level (blue, yellow, orange, red) or all_clear")
                continue
            checked = _texts(texts, where, problems)
            if key == ALL_CLEAR:
                all_clear[hazard] = checked
            else:
                bodies[hazard][Level(key)] = checked
        if not bodies[hazard]:
            problems.append(f"{hazard.value}: needs at least one level")
        if hazard not in all_clear:
            problems.append(f"{hazard.value}: all_clear is missing")
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return Templates(bodies, all_clear)


def _texts(value: object, where: str, problems: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    if not isinstance(value, dict):
        problems.append(f"{where}: needs zh and en texts")
        return result
    for lang in LANGS:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}.{lang}: missing or empty")
            continue
        result[lang] = text.strip()
    return result


@dataclass(frozen=True)
class MessageParts:
    """Plain values a message is rendered from (so that rendering needs no database)."""

    msg_type: str
    hazard: Hazard
    level: Level
    district_names: Sequence[str]
    all_districts: bool
    city_name: str
    expires_at: datetime
    body: str


def render_message(parts: MessageParts, lang: str, tz: ZoneInfo) -> str:
    """The Telegram-HTML alert a recipient reads: headline, area, validity, body."""
    title = t("alerts.msg.title", lang, hazard=parts.hazard.label(lang),
              level=parts.level.label(lang))
    if parts.msg_type == "Update":
        headline = t("alerts.msg.headline_update", lang, emoji=parts.level.emoji, title=title)
    elif parts.msg_type == "Cancel":
        headline = t("alerts.msg.headline_cancel", lang, title=title)
    else:
        headline = t("alerts.msg.headline_alert", lang, emoji=parts.level.emoji, title=title)
    area = parts.city_name if parts.all_districts else t("alerts.msg.list_sep", lang).join(
        parts.district_names)
    lines = [headline, t("alerts.msg.area", lang, area=area)]
    if parts.msg_type != "Cancel":
        until = parts.expires_at.astimezone(tz)
        lines.append(t("alerts.msg.until", lang, until=format_local(until, lang)))
    lines.append("")
    lines.append(escape(parts.body))
    return Html("\n".join(lines))


def format_local(when: datetime, lang: str) -> str:
    """``7月20日 18:00`` / ``20 Jul 18:00`` (already in local time)."""
    if lang == "en":
        return when.strftime("%d %b %H:%M").lstrip("0")
    return f"{when.month}月{when.day}日 {when:%H:%M}"
