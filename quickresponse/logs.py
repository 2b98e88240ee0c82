"""Logging set-up: readable or JSON lines, no bot token, quiet HTTP client.

Pass ids as ``extra={"ticket_id": 12}`` / ``{"alert_id": 3}``; the JSON format puts them in
fields so that a log collector can follow one ticket or alert. Resident messages and personal
data are never logged at INFO.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
CONTEXT_FIELDS = ("ticket_id", "alert_id", "update_id", "district", "job_id")


class RedactTokens(logging.Filter):
    """Replace anything shaped like a bot token, wherever it appears in a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _TOKEN.search(message):
            record.msg = _TOKEN.sub("<token>", message)
            record.args = None
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k))
        line = f"{line} [{ids}]" if ids else line
        return _TOKEN.sub("<token>", line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return _TOKEN.sub("<token>", json.dumps(data, ensure_ascii=False, default=str))


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL (which contains the token) at INFO.
    for noisy in ("httpx", "httpcore", "apscheduler.executors", "telegram.ext.Updater"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Alembic announces each of its plugins at INFO on every start; that buries CLI output.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
