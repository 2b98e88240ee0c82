import json
import logging

from quickresponse.logs import JsonFormatter, RedactTokens, TextFormatter
from tests.fakebot import TOKEN


def record(msg: str, *args, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("qr.test", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_token_never_reaches_the_log_line():
    rec = record("POST https://api.telegram.org/bot%s/sendMessage", TOKEN)
    RedactTokens().filter(rec)
    for formatter in (TextFormatter(), JsonFormatter()):
        line = formatter.format(rec)
        assert TOKEN not in line and TOKEN.split(":")[1] not in line
        assert "<token>" in line


def test_json_lines_carry_ticket_and_alert_ids():
    line = JsonFormatter().format(record("ticket escalated", ticket_id=12, alert_id=3))
    data = json.loads(line)
    assert data["message"] == "ticket escalated"
    assert (data["ticket_id"], data["alert_id"]) == (12, 3)


def test_text_lines_show_ids_in_brackets():
    assert TextFormatter().format(record("claimed", ticket_id=7)).endswith("[ticket_id=7]")
