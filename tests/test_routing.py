"""Routing a call to a district: shared locations, typed addresses, choices."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quickresponse.districts import load_city
from quickresponse.errors import InvalidInput
from quickresponse.routing import Router, haversine_m
from quickresponse.tickets.errors import UnknownDistrict

DONGCHENG, XICHENG, CHAOYANG, FENGTAI, HAIDIAN = "110101", "110102", "110105", "110106", "110108"
FANGSHAN, SHUNYI, DAXING, YANQING = "110111", "110113", "110115", "110119"


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_city("beijing"))


@pytest.mark.parametrize(("place", "lat", "lon", "district"), [
    ("Tiananmen", 39.9087, 116.3975, DONGCHENG),
    ("Zhongguancun", 39.9834, 116.3160, HAIDIAN),
    ("Capital Airport T3", 40.0525, 116.6100, SHUNYI),
    ("Badaling", 40.3590, 116.0200, YANQING),
    ("Sanlitun", 39.9365, 116.4551, CHAOYANG),
])
def test_a_shared_location_goes_to_the_district_it_is_in(router, place, lat, lon, district):
    routing = router.route_location(lat, lon)
    assert routing.district_id == district, place
    assert routing.method == "location"
    assert not routing.outside_city and not routing.near_boundary_outside


def test_a_point_well_inside_hebei_is_outside_the_city(router):
    routing = router.route_location(38.0, 114.5)
    assert routing.outside_city
    assert routing.district_id is None and routing.method is None
    assert not routing.needs_choice
    assert routing.distance_m is not None and routing.distance_m > 100_000


def test_a_point_just_outside_the_city_goes_to_the_nearest_district_flagged(router):
    # Daxing International Airport's terminal is about 430 m outside Beijing in this data.
    routing = router.route_location(39.5098, 116.4105)
    assert routing.district_id == DAXING
    assert routing.method == "location_nearest"
    assert routing.near_boundary_outside
    assert routing.distance_m is not None and 0 < routing.distance_m <= 2000


def test_a_point_near_a_district_border_asks_to_confirm(router):
    # On Chang'an Avenue at the Dongcheng / Xicheng border (Tiananmen's west side).
    routing = router.route_location(39.9075, 116.3930)
    assert routing.method == "location"
    assert routing.confirm
    assert set(routing.candidates) >= {DONGCHENG, XICHENG}
    assert routing.candidates[0] == routing.district_id
    assert routing.confidence < 1.0


def test_a_point_far_from_any_border_needs_no_confirmation(router):
    routing = router.route_location(39.9834, 116.3160)
    assert not routing.confirm
    assert routing.candidates == (HAIDIAN,)
    assert routing.distance_m is not None and routing.distance_m > 600


@pytest.mark.parametrize(("lat", "lon"), [
    (math.nan, 116.4), (39.9, math.inf), (91.0, 116.4), (39.9, -181.0), ("x", 1.0),
])
def test_impossible_coordinates_are_invalid_input(router, lat, lon):
    with pytest.raises(InvalidInput):
        router.route_location(lat, lon)


@pytest.mark.parametrize(("text", "district"), [
    ("朝阳区望京街道", CHAOYANG),
    ("Haidian Zhongguancun", HAIDIAN),
    ("三里屯", CHAOYANG),
    ("wangjing chaoyang", CHAOYANG),
    ("北京市海淀區中關村大街27號", HAIDIAN),  # traditional characters
    ("Chaoyang District, Sanlitun Road", CHAOYANG),
    ("Wang Jing, Beijing", CHAOYANG),
    ("朝阳门内大街 5 号", DONGCHENG),  # 朝阳门 is a street in 东城, not the district 朝阳
    ("丰台区 长辛店", FENGTAI),
    ("changxindian", FENGTAI),
    ("ＨＡＩＤＩＡＮ", HAIDIAN),  # full-width letters from a phone keyboard
])
def test_a_typed_address_goes_to_its_district(router, text, district):
    routing = router.route_address(text)
    assert routing.district_id == district, (text, routing)
    assert routing.method == "address"
    assert routing.confidence >= 0.6


def test_a_misspelt_english_name_is_matched_but_must_be_confirmed(router):
    routing = router.route_address("Haidain district")
    assert routing.district_id == HAIDIAN
    assert routing.confirm
    assert routing.confidence < 0.9


@pytest.mark.parametrize(("text", "candidates"), [
    ("八里庄", {CHAOYANG, HAIDIAN}),
    ("东风", {CHAOYANG, FANGSHAN}),
    ("balizhuang", {CHAOYANG, HAIDIAN}),
])
def test_a_name_shared_by_two_districts_asks_instead_of_guessing(router, text, candidates):
    routing = router.route_address(text)
    assert routing.district_id is None
    assert routing.needs_choice
    assert set(routing.candidates) == candidates


def test_the_district_named_settles_a_shared_street_name(router):
    assert router.route_address("海淀区八里庄").district_id == HAIDIAN
    assert router.route_address("朝阳 八里庄").district_id == CHAOYANG


def test_a_district_and_a_township_that_disagree_ask_to_confirm(router):
    routing = router.route_address("朝阳区 中关村")
    assert routing.confirm
    assert set(routing.candidates) == {CHAOYANG, HAIDIAN}


def test_two_district_names_ask_which(router):
    routing = router.route_address("海淀还是朝阳")
    assert routing.district_id is None
    assert set(routing.candidates) == {CHAOYANG, HAIDIAN}


def test_a_short_street_name_inside_other_words_is_only_a_guess(router):
    # 东四 is a street in 东城, but 东四环 (the East 4th Ring Road) is not.
    routing = router.route_address("东四环")
    assert routing.confirm


@pytest.mark.parametrize("text", ["", "   ", "北京", "my house", "🙂🙂", "x" * 5000])
def test_an_address_without_a_known_name_leaves_the_choice_to_the_resident(router, text):
    routing = router.route_address(text)
    assert routing.district_id is None
    assert routing.needs_choice
    assert routing.candidates == ()


def test_a_chosen_district(router):
    routing = router.chosen(YANQING)
    assert (routing.district_id, routing.method, routing.confidence) == (YANQING, "chosen", 1.0)
    with pytest.raises(UnknownDistrict):
        router.chosen("123")


def test_haversine_distance():
    # One thousandth of a degree of latitude is about 111 m.
    assert haversine_m(39.9, 116.4, 39.901, 116.4) == pytest.approx(111.2, abs=0.5)
    assert haversine_m(39.9, 116.4, 39.9, 116.4) == 0.0


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_typed_text_gives_a_routing_and_never_an_error(router, text):
    routing = router.route_address(text)
    ids = {d.id for d in router.city.districts}
    assert set(routing.candidates) <= ids
    assert routing.district_id is None or routing.district_id in ids
    assert 0.0 <= routing.confidence <= 1.0


@settings(max_examples=300, deadline=None)
@given(lat=st.floats(allow_nan=True, allow_infinity=True),
       lon=st.floats(allow_nan=True, allow_infinity=True))
def test_any_coordinates_are_routed_or_refused_as_invalid_input(router, lat, lon):
    try:
        routing = router.route_location(lat, lon)
    except InvalidInput:
        assert not (-90 <= lat <= 90 and -180 <= lon <= 180)
        return
    assert routing.outside_city or routing.district_id in {d.id for d in router.city.districts}
