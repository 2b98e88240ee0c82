"""Which district a call belongs to: by shared location, by typed address, or by choice.

Built once per process (:class:`Router` loads the boundaries and prepares the geometries, and
indexes district and township names); each call is then a pure function of its input, cheap
enough to run on the event loop.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import shapely
from rapidfuzz import fuzz, process
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from quickresponse.districts import City, township_stem
from quickresponse.errors import ConfigError
from quickresponse.textnorm import normalise
from quickresponse.tickets.errors import InvalidLocation

Method = Literal["location", "location_nearest", "address", "chosen"]

# A point outside every district but this close to one goes to the nearest district, flagged.
NEAREST_WITHIN_M = 2000.0
# A point this close to a border may carry the GCJ-02 shift of a pin dragged on a Chinese map:
# ask the resident to confirm the district.
CONFIRM_WITHIN_M = 600.0
# Fuzzy matching of romanised names: below this rapidfuzz ratio a word is not taken as a name.
FUZZY_CUTOFF = 85.0
MAX_ADDRESS_SCAN = 500
_EARTH_RADIUS_M = 6_371_008.8
# Words in English addresses that say what kind of place follows, not which one.
_GENERIC_WORDS = frozenset({
    "beijing", "china", "city", "shi", "district", "qu", "subdistrict", "street", "jiedao",
    "town", "township", "zhen", "xiang", "diqu", "area", "county", "xian", "road", "lu", "jie",
    "avenue", "the", "in", "near", "of", "at", "and", "no", "building", "community", "village",
})
_LATIN_WORD = re.compile(r"[a-z]+")
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Routing:
    """Where a call goes.

    ``district_id`` is the best district, or None when the resident must pick one (then
    ``candidates`` lists the districts to offer first, possibly empty = offer all). With
    ``confirm`` the resident should confirm ``district_id`` among ``candidates``.
    """

    district_id: str | None
    method: Method | None
    confidence: float  # 0..1
    candidates: tuple[str, ...] = ()
    confirm: bool = False
    near_boundary_outside: bool = False  # outside the city, routed to the nearest district
    outside_city: bool = False  # too far outside: not ours
    distance_m: float | None = None  # to the district (outside) or to its border (inside)
    matched: str | None = None  # the name(s) an address matched

    @property
    def needs_choice(self) -> bool:
        return self.district_id is None and not self.outside_city


@dataclass(frozen=True)
class _Name:
    """A name that points at one or more districts."""

    districts: frozenset[str]
    is_district: bool  # a district's own name or alias (stronger than a township name)
    display: str


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    name: _Name
    fuzzy: bool = False
    # A two-character Chinese name (东四, 光明) found inside longer text may be part of another
    # word (东四环): the resident is asked to confirm.
    weak: bool = False


class Router:
    """Routes locations and addresses to the districts of one city."""

    def __init__(self, city: City) -> None:
        self.city = city
        self._order = {d.id: i for i, d in enumerate(city.districts)}
        self._load_boundaries()
        self._zh_names: dict[str, _Name] = {}
        self._latin_names: dict[str, _Name] = {}
        self._index_names()

    # -- location ------------------------------------------------------------------------------

    def _load_boundaries(self) -> None:
        try:
            data = json.loads(self.city.boundaries_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.city.boundaries_path}: cannot read: {exc}") from exc
        geometries: dict[str, BaseGeometry] = {}
        for feature in data.get("features", ()):
            props = feature.get("properties") or {}
            district_id = str(props.get("adcode", props.get("id", "")))
            if self.city.has_district(district_id):
                try:
                    geom = shape(feature["geometry"])
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise ConfigError(f"{self.city.boundaries_path}: district {district_id}: "
                                      f"not a GeoJSON geometry ({exc})") from exc
                west, south, east, north = geom.bounds
                if geom.is_empty or not (-180 <= west <= east <= 180 and -90 <= south <= north
                                         <= 90):
                    raise ConfigError(f"{self.city.boundaries_path}: district {district_id}: "
                                      "coordinates outside longitude -180..180, latitude -90..90")
                geometries[district_id] = (
                    geom if district_id not in geometries else geometries[district_id].union(geom))
        missing = [d.id for d in self.city.districts if d.id not in geometries]
        if missing:
            raise ConfigError(
                f"{self.city.boundaries_path}: no boundary for district(s) {', '.join(missing)}")
        bounds = shapely.union_all(list(geometries.values())).bounds
        # Distances in metres on a local equirectangular projection: at city scale (a few
        # hundred km) the error is about 1%, far below the 600 m / 2 km thresholds.
        self._lat0 = (bounds[1] + bounds[3]) / 2
        self._lon0 = (bounds[0] + bounds[2]) / 2
        self._kx = math.radians(1) * _EARTH_RADIUS_M * math.cos(math.radians(self._lat0))
        self._ky = math.radians(1) * _EARTH_RADIUS_M
        self._ids = [d.id for d in self.city.districts]
        self._geoms = [geometries[i] for i in self._ids]
        self._metric = [shapely.transform(g, self._to_metres) for g in self._geoms]
        for geom in (*self._geoms, *self._metric):
            shapely.prepare(geom)
        self._metric_borders = [g.boundary for g in self._metric]

    def _to_metres(self, coords):  # type: ignore[no-untyped-def]
        out = coords.copy()
        out[:, 0] = (coords[:, 0] - self._lon0) * self._kx
        out[:, 1] = (coords[:, 1] - self._lat0) * self._ky
        return out

    def _metric_point(self, latitude: float, longitude: float) -> Point:
        return Point((longitude - self._lon0) * self._kx, (latitude - self._lat0) * self._ky)

    def route_location(self, latitude: float, longitude: float) -> Routing:
        """Point-in-polygon on WGS-84 coordinates. Raises InvalidLocation (an InvalidInput) for
        NaN or out-of-range values."""
        check_coordinates(latitude, longitude)
        point = Point(longitude, latitude)
        metric = self._metric_point(latitude, longitude)
        inside = next((i for i, g in enumerate(self._geoms) if g.contains(point)), None)
        if inside is not None:
            district_id = self._ids[inside]
            to_border = self._metric_borders[inside].distance(metric)
            near = [
                self._ids[i] for i, g in enumerate(self._metric)
                if i != inside and g.distance(metric) <= CONFIRM_WITHIN_M
            ]
            if near:
                return Routing(
                    district_id, "location", 0.7, candidates=(district_id, *self._sorted(near)),
                    confirm=True, distance_m=to_border,
                )
            return Routing(district_id, "location", 1.0, candidates=(district_id,),
                           distance_m=to_border)
        distances = sorted(
            (g.distance(metric), self._ids[i]) for i, g in enumerate(self._metric))
        nearest_m, nearest = distances[0]
        if nearest_m > NEAREST_WITHIN_M:
            return Routing(None, None, 0.0, outside_city=True, distance_m=nearest_m)
        close = [d for m, d in distances if m <= NEAREST_WITHIN_M]
        return Routing(
            nearest, "location_nearest", 0.6, candidates=tuple(close), confirm=len(close) > 1,
            near_boundary_outside=True, distance_m=nearest_m,
        )

    # -- typed address -------------------------------------------------------------------------

    def _index_names(self) -> None:
        def add(table: dict[str, _Name], key: str, district_id: str, is_district: bool,
                display: str) -> None:
            if not key:
                return
            old = table.get(key)
            if old is None or (is_district and not old.is_district):
                table[key] = _Name(frozenset({district_id}), is_district, display)
            elif old.is_district == is_district:
                table[key] = _Name(old.districts | {district_id}, is_district, old.display)

        for d in self.city.districts:
            for name in (d.name_zh, d.name_en, *d.aliases):
                key = normalise(name)
                if _CJK.search(key):
                    add(self._zh_names, key.replace(" ", ""), d.id, True, name)
                else:
                    add(self._latin_names, key.replace(" ", ""), d.id, True, name)
            for name, latin in zip(d.townships, d.townships_latin, strict=False):
                for key in {normalise(name), normalise(township_stem(name))}:
                    add(self._zh_names, key.replace(" ", ""), d.id, False, name)
                if latin:
                    add(self._latin_names, latin.lower(), d.id, False, name)
        # Only longer romanised names are fuzzy-matched: short ones collide with plain words.
        self._fuzzy_keys = [k for k in self._latin_names if len(k) >= 6]

    def route_address(self, text: str) -> Routing:
        """District and township names, fuzzy, in Chinese or English; ambiguous names (八里庄,
        东风) come back with ``district_id=None`` and the candidates to choose from."""
        folded = normalise(text[:MAX_ADDRESS_SCAN])
        hits = self._zh_hits(folded.replace(" ", "")) + self._latin_hits(folded)
        if not hits:
            return Routing(None, None, 0.0)
        matched = "、".join(dict.fromkeys(h.name.display for h in hits))
        fuzzy = any(h.fuzzy for h in hits)
        named = {d for h in hits if h.name.is_district for d in h.name.districts}
        township_sets = [h.name.districts for h in hits if not h.name.is_district]
        townships = set().union(*township_sets) if township_sets else set()

        if len(named) == 1:
            (district_id,) = named
            agrees = all(district_id in s for s in township_sets)
            if agrees:
                confidence = 0.95 if township_sets else 0.9
                return Routing(district_id, "address", confidence * (0.85 if fuzzy else 1.0),
                               candidates=(district_id,), confirm=fuzzy, matched=matched)
            # "朝阳区 … 中关村": the district named and a township elsewhere: ask.
            return Routing(district_id, "address", 0.6,
                           candidates=(district_id, *self._sorted(townships - {district_id})),
                           confirm=True, matched=matched)
        if len(named) > 1:
            narrowed = [d for d in named if all(d in s for s in township_sets)]
            if township_sets and len(narrowed) == 1:
                return Routing(narrowed[0], "address", 0.7, candidates=self._sorted(named),
                               confirm=True, matched=matched)
            return Routing(None, "address", 0.0, candidates=self._sorted(named), matched=matched)

        common = set.intersection(*(set(s) for s in township_sets))
        if len(common) == 1:
            (district_id,) = common
            # A two-character name (东四, 光明) may be part of another word (东四环): confirm.
            weak = all(h.fuzzy or h.weak for h in hits)
            return Routing(district_id, "address", 0.6 if weak else 0.85,
                           candidates=(district_id,), confirm=weak, matched=matched)
        candidates = common or townships
        return Routing(None, "address", 0.0, candidates=self._sorted(candidates), matched=matched)

    def _zh_hits(self, text: str) -> list[_Hit]:
        """Every Chinese name found in ``text``; of overlapping ones the longest wins, so that
        朝阳门 (a street in 东城) is not read as the district 朝阳."""
        if not _CJK.search(text):
            return []
        found: list[_Hit] = []
        for key, name in self._zh_names.items():
            start = text.find(key)
            while start != -1:
                found.append(_Hit(start, start + len(key), name, weak=len(key) <= 2))
                start = text.find(key, start + 1)
        return _longest_first(found)

    def _latin_hits(self, text: str) -> list[_Hit]:
        """Romanised names among the words of ``text``: "Wang Jing", "wangjing", "Chaoyang
        District"; single long words also fuzzily ("Haidain")."""
        words = _LATIN_WORD.findall(text)
        if not words:
            return []
        found: list[_Hit] = []
        for size in (3, 2, 1):
            for i in range(len(words) - size + 1):
                key = "".join(words[i:i + size])
                name = self._latin_names.get(key)
                if name is not None:
                    found.append(_Hit(i, i + size, name))
        hits = _longest_first(found)
        taken = {i for h in hits for i in range(h.start, h.end)}
        for i, word in enumerate(words):
            if i in taken or word in _GENERIC_WORDS or len(word) < 6:
                continue
            best = process.extractOne(word, self._fuzzy_keys, scorer=fuzz.ratio,
                                      score_cutoff=FUZZY_CUTOFF)
            if best is not None:
                hits.append(_Hit(i, i + 1, self._latin_names[best[0]], fuzzy=True))
        return hits

    # -- choice --------------------------------------------------------------------------------

    def chosen(self, district_id: str) -> Routing:
        """The resident picked a district. Raises UnknownDistrict."""
        self.city.district(district_id)
        return Routing(district_id, "chosen", 1.0, candidates=(district_id,))

    def _sorted(self, district_ids: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(district_ids), key=self._order.__getitem__))


def _longest_first(hits: list[_Hit]) -> list[_Hit]:
    """Keep non-overlapping hits, preferring longer ones, then district names, then earlier."""
    chosen: list[_Hit] = []
    taken: set[int] = set()
    for hit in sorted(hits, key=lambda h: (-(h.end - h.start), not h.name.is_district, h.start)):
        span = set(range(hit.start, hit.end))
        if span & taken:
            continue
        chosen.append(hit)
        taken |= span
    return sorted(chosen, key=lambda h: h.start)


def check_coordinates(latitude: float, longitude: float) -> None:
    """Raise InvalidLocation unless both are finite numbers within the globe's range."""
    try:
        lat, lon = float(latitude), float(longitude)
    except (TypeError, ValueError):
        raise InvalidLocation(f"not numbers: {latitude!r}, {longitude!r}") from None
    if not (math.isfinite(lat) and math.isfinite(lon)) or not (
        -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0
    ):
        raise InvalidLocation(f"out of range: {latitude!r}, {longitude!r}")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))
