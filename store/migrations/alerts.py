"""Alerts (``archiver/alerts/``): what a watch run found (events), who wants to hear of it (webhooks),
and every attempt to tell them (deliveries and attempts).

``alert_events`` is append-only: an event is written once (``run_key`` names what it is about — the
run's start, type, URL, record and provision — so a run's summary emitted twice is stored once), in
the same transaction as the deliveries it queues, and never updated (feeds and digests read it; a
delivery names it). A delivery is the durable outbox of one channel (a webhook, the SMTP
recipients): its state, attempt count and the time of its next attempt persist, so a deliverer that
dies — or a receiver that is down for a day — loses nothing. An event names its record by ID without
a foreign key: ``store rebuild-index`` empties and refills ``records``, and the alert history must
survive that. A webhook's signing secret is not here: it is a 0600 file in the store, like the other
secrets (``archiver/alerts/webhooks.py``)."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("alerts", 1, "alert events, webhooks, deliveries and their attempts", """
CREATE TABLE alert_events (
    seq {autoid},
    event_id TEXT NOT NULL UNIQUE,
    run_key TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    url TEXT NOT NULL,
    entity TEXT,
    document TEXT,
    record_id TEXT,
    previous_record_id TEXT,
    provision_id TEXT,
    actor TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX alert_events_time ON alert_events(occurred_at);
CREATE INDEX alert_events_entity ON alert_events(entity, seq);
CREATE INDEX alert_events_url ON alert_events(url, seq);
CREATE TABLE alert_webhooks (
    webhook_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    allow_private INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    removed_at TEXT
);
CREATE TABLE alert_deliveries (
    delivery_id {autoid},
    message_id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX alert_deliveries_due ON alert_deliveries(status, next_attempt_at);
CREATE TABLE alert_attempts (
    delivery_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    http_status INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
)"""),
)
