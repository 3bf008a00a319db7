"""Alerts: a change to a watched document or a provision, a removal, and a declaration that matches
nothing, reach people and programs — Standard Webhooks, Atom feeds, SMTP mail and digests.

The model (``events.py``): a watch run's summary (and its provision checks) becomes **events**
(``document.changed``, ``document.removed``, ``document.unreachable``, ``declaration.unmatched``,
``provision.changed``, ``provision.moved``, ``provision.removed``), stored append-only with the
**deliveries** they need, in one catalog transaction, *after* the run committed its records.
Deliveries (``delivery.py``) are a durable outbox: each attempt logged, retried with exponential
backoff, given up after ``alerts.max_attempts``; nothing a receiver does can cost a capture or a run.
Channels: ``webhooks.py`` (signed per standardwebhooks.com, SSRF-guarded like captures), ``mail.py``
(SMTP with STARTTLS), ``feeds.py`` (Atom, read by ``archiver serve``), ``digest.py``.

Entry points for the watch runner (wired by ``watch run``): :func:`after_run` once the run's records
are committed (:func:`emit_run`, then one :func:`deliver_quietly` round; never raises), and
:func:`notify_run` for ``--notify-url``.
"""

from __future__ import annotations

from archiver.alerts.delivery import after_run, deliver_due, deliver_quietly, deliveries, notify_run
from archiver.alerts.events import EVENT_TYPES, AlertEvent, ProvisionCheck, emit_run, list_events

__all__ = ["EVENT_TYPES", "AlertEvent", "ProvisionCheck", "after_run", "deliver_due", "deliver_quietly", "deliveries",
           "emit_run", "list_events", "notify_run"]
