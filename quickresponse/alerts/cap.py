"""OASIS Common Alerting Protocol 1.2 documents for alerts, updates and all-clears.

One ``info`` block per language (zh-CN, en-US) and one ``area`` per info naming the targeted
districts with their administrative division codes (``geocode`` valueName ``adcode``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree as etree
from zoneinfo import ZoneInfo

from quickresponse.alerts.hazards import Hazard, Level

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_LANGUAGES = {"zh": "zh-CN", "en": "en-US"}


@dataclass(frozen=True)
class CapReference:
    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class CapInfo:
    """The language-specific part of a message."""

    lang: str
    event: str
    sender_name: str
    headline: str
    description: str
    instruction: str | None
    area_desc: str


@dataclass(frozen=True)
class CapMessage:
    identifier: str
    sender: str
    sent: datetime
    msg_type: str  # Alert | Update | Cancel
    hazard: Hazard
    level: Level
    effective: datetime
    expires: datetime
    geocodes: Sequence[str]
    infos: Sequence[CapInfo]
    references: Sequence[CapReference] = ()


def cap_time(when: datetime, tz: ZoneInfo) -> str:
    """CAP dateTime: local time with its offset, whole seconds (``2026-07-20T10:00:00+08:00``)."""
    return when.astimezone(tz).replace(microsecond=0).isoformat()


def split_body(body: str) -> tuple[str, str | None]:
    """The text before the first action line (``•``) describes; the rest instructs."""
    lines = body.strip().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("•"):
            description = "\n".join(lines[:i]).strip()
            instruction = "\n".join(lines[i:]).strip()
            if description:
                return description, instruction
            break
    return body.strip(), None


def build_cap(message: CapMessage, tz: ZoneInfo) -> bytes:
    """The UTF-8 XML of ``message``."""
    alert = etree.Element(f"{{{CAP_NS}}}alert")

    def sub(parent: etree.Element, tag: str, text: str) -> etree.Element:
        element = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        element.text = text
        return element

    sub(alert, "identifier", message.identifier)
    sub(alert, "sender", message.sender)
    sub(alert, "sent", cap_time(message.sent, tz))
    sub(alert, "status", "Actual")
    sub(alert, "msgType", message.msg_type)
    sub(alert, "scope", "Public")
    if message.references:
        sub(alert, "references", " ".join(
            f"{r.sender},{r.identifier},{cap_time(r.sent, tz)}" for r in message.references))
    cancel = message.msg_type == "Cancel"
    for info in message.infos:
        block = etree.SubElement(alert, f"{{{CAP_NS}}}info")
        sub(block, "language", CAP_LANGUAGES[info.lang])
        sub(block, "category", message.hazard.cap_category)
        sub(block, "event", info.event)
        if cancel:
            sub(block, "responseType", "AllClear")
        # An all-clear: the threat is over (CAP: urgency Past, certainty Observed).
        sub(block, "urgency", "Past" if cancel else message.level.cap_urgency)
        sub(block, "severity", "Minor" if cancel else message.level.cap_severity)
        sub(block, "certainty", "Observed" if cancel else "Likely")
        sub(block, "effective", cap_time(message.effective, tz))
        sub(block, "expires", cap_time(message.expires, tz))
        sub(block, "senderName", info.sender_name)
        sub(block, "headline", info.headline)
        sub(block, "description", info.description)
        if info.instruction:
            sub(block, "instruction", info.instruction)
        parameter = etree.SubElement(block, f"{{{CAP_NS}}}parameter")
        sub(parameter, "valueName", "warningLevel")
        sub(parameter, "value", message.level.value)
        area = etree.SubElement(block, f"{{{CAP_NS}}}area")
        sub(area, "areaDesc", info.area_desc)
        for code in message.geocodes:
            geocode = etree.SubElement(area, f"{{{CAP_NS}}}geocode")
            sub(geocode, "valueName", "adcode")
            sub(geocode, "value", code)
    etree.indent(alert)
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8",
                          default_namespace=CAP_NS)
