"""The city a deployment serves: districts, ticket categories and time limits, from configuration.

A city is a directory holding ``city.yaml`` (names, districts with aliases, categories, SLA limits,
the names of the boundary and township files) plus those data files. ``settings.city`` is either
the name of a directory shipped in ``quickresponse/data/cities/`` (``beijing``) or a path to
another one, so that serving another city is a new directory, not a code change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from quickresponse.errors import ConfigError
from quickresponse.i18n import LANGS
from quickresponse.textnorm import normalise
from quickresponse.tickets.errors import UnknownCategory, UnknownDistrict

CITIES_DIR = Path(__file__).parent / "data" / "cities"
SLA_CLASSES = ("urgent", "utility", "general")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*$")
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days"}
# Longest first: the generic word a township name ends with (望京街道 -> 望京).
_TOWNSHIP_SUFFIXES = ("满族蒙古族乡", "蒙古族乡", "满族乡", "回族乡", "民族乡", "地区办事处",
                      "街道办事处", "地区", "街道", "镇", "乡")


def township_stem(name: str) -> str:
    """The distinctive part of a township name: 望京街道 -> 望京, 杨镇地区 -> 杨镇 (>= 2 chars)."""
    stripped = True
    while stripped:
        stripped = False
        for suffix in _TOWNSHIP_SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                name = name[: -len(suffix)]
                stripped = True
                break
    return name


@dataclass(frozen=True)
class SlaLimits:
    """Time limits of one SLA class, counted from filing (or from a transfer or a reopening)."""

    claim: timedelta
    resolve: timedelta
    # After the first escalation (to the district group) this much more time passes before the
    # ticket goes to the admins.
    admins_after: timedelta


@dataclass(frozen=True)
class Category:
    id: str
    name_zh: str
    name_en: str
    sla_class: str
    emoji: str = ""

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True)
class District:
    id: str  # the administrative division code (adcode), e.g. "110105"
    name_zh: str
    name_en: str
    aliases: tuple[str, ...] = ()
    # The staff group configured in city.yaml; an admin may link another at run time (stored in
    # the database, which wins).
    group_chat_id: int | None = None
    # Township / street names in this district (for routing typed addresses).
    townships: tuple[str, ...] = ()
    # Romanised (pinyin) stems of ``townships``, index for index ("" where none is known).
    townships_latin: tuple[str, ...] = ()

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True)
class City:
    id: str
    name_zh: str
    name_en: str
    timezone: str
    districts: tuple[District, ...]
    categories: tuple[Category, ...]
    sla: dict[str, SlaLimits]
    directory: Path
    boundaries_file: str
    townships_file: str | None = None
    # How long a resolved ticket waits for the resident's verdict before it is closed anyway.
    auto_close_after: timedelta = timedelta(days=7)
    # The city's dispatch desk (like the 12345 centre): it takes calls whose district is not known
    # yet and transfers them. Not a place: no boundary, not offered to pick or to subscribe to.
    dispatch: District | None = None
    # The category of an emergency logged in one tap from an urgent answer.
    urgent_call_category: str = "other"
    _by_id: dict[str, District] = field(default_factory=dict, repr=False, compare=False)
    _categories: dict[str, Category] = field(default_factory=dict, repr=False, compare=False)
    _names: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({d.id: d for d in self.districts})
        self._categories.update({c.id: c for c in self.categories})
        desks = (self.dispatch,) if self.dispatch is not None else ()
        for d in (*self.districts, *desks):
            for name in (d.id, d.name_zh, d.name_en, *d.aliases):
                self._names[normalise(name)] = d.id

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def boundaries_path(self) -> Path:
        return self.directory / self.boundaries_file

    @property
    def townships_path(self) -> Path | None:
        return None if self.townships_file is None else self.directory / self.townships_file

    def district(self, district_id: str) -> District:
        """The district (or the dispatch desk) with that id; raises :class:`UnknownDistrict`."""
        if self.dispatch is not None and district_id == self.dispatch.id:
            return self.dispatch
        try:
            return self._by_id[district_id]
        except KeyError:
            raise UnknownDistrict(district_id) from None

    def has_district(self, district_id: str) -> bool:
        """True for a real district (a place residents pick, subscribe to, transfer to)."""
        return district_id in self._by_id

    def is_dispatch(self, district_id: str | None) -> bool:
        return self.dispatch is not None and district_id == self.dispatch.id

    @property
    def queues(self) -> tuple[District, ...]:
        """Everything a ticket can be with: the dispatch desk (when there is one) first, then
        the districts."""
        return (self.dispatch, *self.districts) if self.dispatch is not None else self.districts

    def knows(self, district_id: str) -> bool:
        """True for a district or the dispatch desk: anything a ticket can be with."""
        return self.has_district(district_id) or self.is_dispatch(district_id)

    def find_district(self, text: str) -> District:
        """The district whose id, name or alias is exactly ``text`` (any case, zh or en).

        For the CLI and admin commands (``staff add 123 朝阳``); residents' free text goes to
        :class:`quickresponse.routing.Router` instead. Raises :class:`UnknownDistrict`.
        """
        district_id = self._names.get(normalise(text))
        if district_id is None:
            raise UnknownDistrict(text)
        return self.district(district_id)

    def category(self, category_id: str) -> Category:
        """The category with that id; raises :class:`UnknownCategory`."""
        try:
            return self._categories[category_id]
        except KeyError:
            raise UnknownCategory(category_id) from None

    def limits(self, category_id: str, *, urgent: bool) -> SlaLimits:
        """The time limits for a ticket: urgent tickets always get the urgent class."""
        sla_class = "urgent" if urgent else self.category(category_id).sla_class
        return self.sla[sla_class]


def parse_duration(value: object, where: str) -> timedelta:
    """``30m``, ``2h``, ``7d`` (or a number of minutes) as a timedelta."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return timedelta(minutes=value)
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{where}: {value!r} is not a duration such as 30m, 2h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def city_directory(spec: str) -> Path:
    """``beijing`` -> the shipped directory; anything with a slash or an existing path as is."""
    try:
        path = Path(spec).expanduser()
        if path.is_dir():
            return path.resolve()
        shipped = CITIES_DIR / spec
        if shipped.is_dir():
            return shipped
    except (OSError, ValueError):  # a NUL byte, a name too long ...
        pass
    raise ConfigError(
        f"QR_CITY: {spec!r} is neither a city shipped in {CITIES_DIR} nor a directory")


def load_city(spec: str) -> City:
    """Read and check ``city.yaml`` of the city ``spec``; raise :class:`ConfigError` if invalid."""
    directory = city_directory(spec)
    path = directory / "city.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping")
    return _parse_city(raw, directory, str(path))


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    value = data.get(key)
    if value in (None, "", [], {}):
        raise ConfigError(f"{where}: '{key}' is required")
    return value


def _names(data: dict[str, Any], where: str) -> tuple[str, str]:
    name = _require(data, "name", where)
    if not isinstance(name, dict) or not all(isinstance(name.get(lang), str) for lang in LANGS):
        raise ConfigError(f"{where}: 'name' needs zh and en strings")
    if set(name) != set(LANGS):
        # e.g. {en: Power, water, gas} in flow style: YAML read the commas as more keys.
        extra = ", ".join(sorted(str(k) for k in set(name) - set(LANGS)))
        raise ConfigError(f"{where}: 'name' has keys other than zh and en ({extra}); "
                          "quote a name that contains commas")
    return name["zh"].strip(), name["en"].strip()


def _parse_city(raw: dict[str, Any], directory: Path, where: str) -> City:
    name_zh, name_en = _names(raw, where)
    timezone = str(raw.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: unknown timezone {timezone!r}") from exc

    townships_file = raw.get("townships_file")
    townships = _load_townships(directory, townships_file, where) if townships_file else {}
    latin = _load_latin_names(directory, raw.get("township_latin_file"), where)

    districts: list[District] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(_require(raw, "districts", where)):
        district = _parse_district(item, seen, f"{where}: districts[{i}]")
        names = tuple(townships.get(district.id, ()))
        districts.append(replace(
            district, townships=names, townships_latin=tuple(latin.get(n, "") for n in names)))
    if len({d.id for d in districts}) != len(districts):
        raise ConfigError(f"{where}: district ids must be unique")

    sla_raw = _require(raw, "sla", where)
    sla: dict[str, SlaLimits] = {}
    for cls in SLA_CLASSES:
        limits = sla_raw.get(cls)
        if not isinstance(limits, dict):
            raise ConfigError(f"{where}: sla.{cls} (claim, resolve, admins_after) is required")
        here = f"{where}: sla.{cls}"
        sla[cls] = SlaLimits(
            claim=parse_duration(_require(limits, "claim", here), f"{here}.claim"),
            resolve=parse_duration(_require(limits, "resolve", here), f"{here}.resolve"),
            admins_after=parse_duration(
                _require(limits, "admins_after", here), f"{here}.admins_after"),
        )
        if sla[cls].claim > sla[cls].resolve:
            raise ConfigError(f"{here}: claim limit is longer than the resolve limit")

    categories: list[Category] = []
    for i, item in enumerate(_require(raw, "categories", where)):
        here = f"{where}: categories[{i}]"
        category_id = str(_require(item, "id", here))
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,23}", category_id):
            raise ConfigError(f"{here}: id must be lower-case letters, digits, _ (max 24)")
        c_zh, c_en = _names(item, here)
        sla_class = str(item.get("sla_class", "general"))
        if sla_class not in SLA_CLASSES:
            raise ConfigError(f"{here}: sla_class must be one of {', '.join(SLA_CLASSES)}")
        categories.append(Category(category_id, c_zh, c_en, sla_class, str(item.get("emoji", ""))))
    if len({c.id for c in categories}) != len(categories):
        raise ConfigError(f"{where}: category ids must be unique")

    # The optional dispatch desk: read like a district, but not a place.
    dispatch = None
    if raw.get("dispatch") is not None:
        dispatch = _parse_district(raw["dispatch"], seen, f"{where}: dispatch")
        if any(d.id == dispatch.id for d in districts):
            raise ConfigError(f"{where}: dispatch: id {dispatch.id!r} is a district's id")
    urgent_category = str(raw.get("urgent_call_category", "other"))
    if urgent_category not in {c.id for c in categories}:
        raise ConfigError(f"{where}: urgent_call_category {urgent_category!r} is not a category")

    boundaries_file = str(_require(raw, "boundaries_file", where))
    if not (directory / boundaries_file).is_file():
        raise ConfigError(f"{where}: boundaries file {boundaries_file} is missing")
    auto_close = parse_duration(raw.get("auto_close_after", "7d"), f"{where}: auto_close_after")
    return City(
        id=str(raw.get("id", directory.name)), name_zh=name_zh, name_en=name_en,
        timezone=timezone, districts=tuple(districts), categories=tuple(categories), sla=sla,
        directory=directory, boundaries_file=boundaries_file, townships_file=townships_file,
        auto_close_after=auto_close, dispatch=dispatch, urgent_call_category=urgent_category,
    )


def _parse_district(item: object, seen: dict[str, str], here: str) -> District:
    """A district (or the dispatch desk): id, names, aliases, group chat; each name is recorded
    in ``seen`` and may stand for one district only."""
    if not isinstance(item, dict):
        raise ConfigError(f"{here}: must be a mapping")
    district_id = str(_require(item, "id", here))
    if not re.fullmatch(r"[A-Za-z0-9_]{1,12}", district_id):
        raise ConfigError(f"{here}: id must be 1-12 letters, digits or _")
    d_zh, d_en = _names(item, here)
    aliases = tuple(str(a).strip() for a in item.get("aliases") or () if str(a).strip())
    chat = item.get("group_chat_id")
    if chat is not None and not isinstance(chat, int):
        raise ConfigError(f"{here}: group_chat_id must be a number or null")
    for name in (district_id, d_zh, d_en, *aliases):
        key = normalise(name)
        if key in seen and seen[key] != district_id:
            raise ConfigError(f"{here}: name {name!r} is also used by district {seen[key]}")
        seen[key] = district_id
    return District(id=district_id, name_zh=d_zh, name_en=d_en, aliases=aliases,
                    group_chat_id=chat)




def _load_townships(directory: Path, filename: str, where: str) -> dict[str, list[str]]:
    """District id -> township names (official and statistical) from the townships file."""
    path = directory / filename
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: townships file {filename}: {exc}") from exc
    result: dict[str, list[str]] = {}
    for district_id, entry in (data.get("districts") or {}).items():
        names: list[str] = []
        for group in ("mca", "nbs_only"):
            for unit in entry.get(group) or ():
                name = unit["name"] if isinstance(unit, dict) else str(unit)
                if name and name not in names:
                    names.append(name)
        result[str(district_id)] = names
    return result


def _load_latin_names(directory: Path, filename: str | None, where: str) -> dict[str, str]:
    """Township name -> its romanised form (pinyin), used for English typed addresses."""
    if not filename:
        return {}
    try:
        data = json.loads((directory / filename).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: township_latin_file {filename}: {exc}") from exc
    return {str(k): str(v) for k, v in data.items()}
