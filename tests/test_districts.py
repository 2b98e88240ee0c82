"""The city is configuration: districts, categories and time limits come from city.yaml."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from quickresponse.districts import CITIES_DIR, load_city, parse_duration, township_stem
from quickresponse.errors import ConfigError
from quickresponse.routing import Router
from quickresponse.tickets.errors import UnknownCategory, UnknownDistrict


@pytest.fixture(scope="module")
def beijing():
    return load_city("beijing")


def test_beijing_has_its_sixteen_districts_in_both_languages(beijing):
    assert len(beijing.districts) == 16
    chaoyang = beijing.district("110105")
    assert (chaoyang.name_zh, chaoyang.name_en) == ("朝阳区", "Chaoyang")
    assert chaoyang.name("en") == "Chaoyang" and chaoyang.name("zh") == "朝阳区"
    assert "望京街道" in chaoyang.townships
    assert chaoyang.townships_latin[chaoyang.townships.index("望京街道")] == "wangjing"


@pytest.mark.parametrize("name", ["朝阳", "朝阳区", "Chaoyang", "chaoyang district", "CHAOYANG QU",
                                  "110105"])
def test_admins_can_name_a_district_by_any_alias(beijing, name):
    assert beijing.find_district(name).id == "110105"


def test_an_unknown_district_or_category_is_refused(beijing):
    with pytest.raises(UnknownDistrict):
        beijing.find_district("Gotham")
    with pytest.raises(UnknownDistrict):
        beijing.district("999999")
    with pytest.raises(UnknownCategory):
        beijing.category("volcano")


def test_time_limits_follow_the_12345_defaults(beijing):
    assert beijing.limits("waterlogging", urgent=False).claim == timedelta(minutes=30)
    assert beijing.limits("waterlogging", urgent=False).resolve == timedelta(hours=2)
    assert beijing.limits("outage", urgent=False).resolve == timedelta(hours=24)
    assert beijing.limits("other", urgent=False).resolve == timedelta(days=7)
    # A call flagged urgent gets the urgent limits whatever its category.
    assert beijing.limits("other", urgent=True).resolve == timedelta(hours=2)


def test_every_category_has_names_in_both_languages(beijing):
    ids = {c.id for c in beijing.categories}
    assert {"waterlogging", "manhole", "fallen_tree", "damaged_building", "outage",
            "person_help", "other"} <= ids
    for category in beijing.categories:
        assert category.name_zh and category.name_en and category.name_zh != category.name_en
    assert beijing.category("outage").name_en == "Power, water, gas or heating outage"


def test_township_stems():
    assert township_stem("望京街道") == "望京"
    assert township_stem("杨镇地区") == "杨镇"
    assert township_stem("檀营满族蒙古族乡") == "檀营"
    assert township_stem("北京经济技术开发区") == "北京经济技术开发区"


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("7d", timedelta(days=7)),
    (45, timedelta(minutes=45)),
])
def test_durations(text, expected):
    assert parse_duration(text, "x") == expected


@pytest.mark.parametrize("bad", ["soon", "-2h", "0m", True])
def test_bad_durations_are_config_errors(bad):
    with pytest.raises(ConfigError):
        parse_duration(bad, "sla.urgent.claim")


def _copy_city(tmp_path: Path) -> Path:
    target = tmp_path / "othercity"
    shutil.copytree(CITIES_DIR / "beijing", target)
    return target


def test_another_city_is_a_directory_not_code(tmp_path):
    directory = _copy_city(tmp_path)
    config = yaml.safe_load((directory / "city.yaml").read_text(encoding="utf-8"))
    config["name"] = {"zh": "测试市", "en": "Testville"}
    config["districts"] = config["districts"][:2]
    config["districts"][0]["group_chat_id"] = -100123
    config["sla"]["general"]["resolve"] = "3d"
    (directory / "city.yaml").write_text(yaml.safe_dump(config, allow_unicode=True),
                                         encoding="utf-8")
    city = load_city(str(directory))
    assert city.name_en == "Testville"
    assert [d.id for d in city.districts] == ["110101", "110102"]
    assert city.district("110101").group_chat_id == -100123
    assert city.limits("other", urgent=False).resolve == timedelta(days=3)
    # The router only knows this city's districts: Tiananmen is still Dongcheng, Haidian is
    # no longer served (outside every configured district, far from them).
    router = Router(city)
    assert router.route_location(39.9087, 116.3975).district_id == "110101"
    assert router.route_location(40.0525, 116.6100).outside_city


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.pop("districts"), "'districts' is required"),
    (lambda c: c["sla"].pop("urgent"), "sla.urgent"),
    (lambda c: c["sla"]["urgent"].update(claim="5h"), "claim limit is longer"),
    (lambda c: c["categories"][0].update(sla_class="whenever"), "sla_class"),
    (lambda c: c["districts"][1].update(aliases=["朝阳"]), "also used by district"),
    (lambda c: c.update(boundaries_file="missing.geojson"), "missing"),
    (lambda c: c["districts"][0].update(group_chat_id="group"), "group_chat_id"),
    (lambda c: c["dispatch"].update(id="a desk"), "dispatch: id must be"),
    (lambda c: c["dispatch"].update(aliases=["东城"]), "also used by district"),
    (lambda c: c["dispatch"].update(id="110101"), "is a district's id"),
    (lambda c: c.update(urgent_call_category="fires"), "urgent_call_category"),
    # What an unquoted "{en: Power, water, gas}" in flow style reads as.
    (lambda c: c["categories"][0]["name"].update(water=None), "quote a name"),
])
def test_a_broken_city_file_is_refused_with_a_reason(tmp_path, change, message):
    directory = _copy_city(tmp_path)
    config = yaml.safe_load((directory / "city.yaml").read_text(encoding="utf-8"))
    change(config)
    (directory / "city.yaml").write_text(yaml.safe_dump(config, allow_unicode=True),
                                         encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_city(str(directory))


def test_the_dispatch_desk_holds_tickets_but_is_not_a_place(tmp_path):
    city = load_city("beijing")
    desk = city.district("dispatch")
    assert desk.name("en") == "City dispatch desk" and city.find_district("派单中心") is desk
    assert city.is_dispatch("dispatch") and city.knows("dispatch")
    # Not offered to pick, to subscribe to or to transfer to, and not routed to.
    assert not city.has_district("dispatch")
    assert "dispatch" not in [d.id for d in city.districts]
    assert city.urgent_call_category == "person_help"

    directory = _copy_city(tmp_path)
    config = yaml.safe_load((directory / "city.yaml").read_text(encoding="utf-8"))
    del config["dispatch"], config["urgent_call_category"]
    (directory / "city.yaml").write_text(yaml.safe_dump(config, allow_unicode=True),
                                         encoding="utf-8")
    other = load_city(str(directory))
    assert other.dispatch is None and not other.knows("dispatch")
    assert other.urgent_call_category == "other"


def test_an_unknown_city_is_a_config_error():
    with pytest.raises(ConfigError, match="QR_CITY"):
        load_city("atlantis")


def test_a_boundary_file_missing_a_district_is_refused(tmp_path):
    directory = _copy_city(tmp_path)
    config = yaml.safe_load((directory / "city.yaml").read_text(encoding="utf-8"))
    config["districts"].append({"id": "110199", "name": {"zh": "新区", "en": "New"}})
    (directory / "city.yaml").write_text(yaml.safe_dump(config, allow_unicode=True),
                                         encoding="utf-8")
    with pytest.raises(ConfigError, match="no boundary for district"):
        Router(load_city(str(directory)))
