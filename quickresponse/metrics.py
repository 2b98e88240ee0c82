"""Prometheus metrics: one registry per process, served at ``/metrics``.

Core services count what they do here (match outcomes, tickets, deliveries); the Telegram
adapter times updates. Names follow Prometheus conventions (``_total`` counters, seconds).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

UPDATES = Counter(
    "qr_updates_total", "Telegram updates handled, by kind and result",
    ["kind", "result"], registry=REGISTRY,
)
UPDATE_LATENCY = Histogram(
    "qr_update_latency_seconds", "Time from taking an update to finishing its handling",
    ["kind"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DUPLICATE_UPDATES = Counter(
    "qr_duplicate_updates_total", "Updates delivered more than once and skipped",
    registry=REGISTRY,
)
MATCH_OUTCOMES = Counter(
    "qr_match_outcomes_total", "Resident questions by outcome (answered, suggested, no_answer)",
    ["outcome", "urgent"], registry=REGISTRY,
)
TICKETS = Gauge(
    "qr_tickets", "Tickets by state and district (refreshed periodically)",
    ["state", "district"], registry=REGISTRY,
)
DELIVERIES = Counter(
    "qr_deliveries_total", "Alert deliveries by result (sent, failed, blocked, throttled)",
    ["result"], registry=REGISTRY,
)
DB_RETRIES = Counter(
    "qr_db_retries_total", "Database operations retried because the database was unavailable",
    registry=REGISTRY,
)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
