"""Which district a call belongs to: by shared location, by typed address, or by choice.

Built once per process (:class:`Router` loads the boundaries and prepares the geometries); each
call is a pure function of its input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quickresponse.districts import City

Method = Literal["location", "location_nearest", "address", "chosen"]

# A point outside every district but this close to one goes to the nearest district, flagged.
NEAREST_WITHIN_M = 2000.0
# A point this close to a border may carry the GCJ-02 shift of a pin dragged on a Chinese map:
# ask the resident to confirm the district.
CONFIRM_WITHIN_M = 600.0


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
    matched: str | None = None  # the name an address matched

    @property
    def needs_choice(self) -> bool:
        return self.district_id is None and not self.outside_city


class Router:
    """Routes locations and addresses to districts of one city."""

    def __init__(self, city: City) -> None:
        self.city = city
        raise NotImplementedError

    def route_location(self, latitude: float, longitude: float) -> Routing:
        """Point-in-polygon on WGS-84 coordinates. Raises InvalidLocation (an InvalidInput) for
        NaN or out-of-range values."""
        raise NotImplementedError

    def route_address(self, text: str) -> Routing:
        """District and township names, fuzzy, in Chinese or English; ambiguous names (八里庄,
        东风) come back with ``district_id=None`` and the candidates to choose from."""
        raise NotImplementedError

    def chosen(self, district_id: str) -> Routing:
        """The resident picked a district. Raises UnknownDistrict."""
        raise NotImplementedError
