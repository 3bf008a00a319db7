"""Delivering alerts: a durable outbox with retries, exponential backoff and a log of every attempt.

A delivery row is written with its events (``events.emit_run``), in the same transaction, status
``pending`` and due at once. :func:`deliver_due` — run at the end of a watch run, by ``archiver alerts
deliver``, and every minute on ``archiver serve``'s job pool — claims the due rows (a lease, so two
deliverers never send one message at the same moment), sends each, and records the attempt. A failed
attempt sets the next one ``alerts.retry_base`` × 2^(attempts-1) seconds later (at most
``alerts.retry_max``); after ``alerts.max_attempts`` the delivery is ``failed`` — given up, and shown
as such in the log. Nothing here raises to its caller: a deliverer is never why a run fails.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.alerts.events import AlertEvent, list_events, new_id, wants
from archiver.errors import ArchiverError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.monitor import RunSummary
    from archiver.ports import Store
    from store.catalog import _Db

log = logging.getLogger(__name__)
#: how long a deliverer holds the rows it claimed: longer than one round can take
LEASE_S = 300.0


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(t: str) -> dt.datetime:
    return dt.datetime.fromisoformat(t.replace("Z", "+00:00"))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Attempt(Report):
    """One try to deliver: when, whether it worked, what the receiver or server said."""

    attempt: int
    at: str
    ok: bool
    http_status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery(Report):
    """One message to one channel (a webhook, or the SMTP recipients) and every attempt to send it."""

    delivery_id: int
    message_id: str
    channel: str  # webhook | email
    target: str  # the webhook's ID, or "smtp"
    event_ids: tuple[str, ...]
    status: str  # pending | delivered | failed (given up) | cancelled (webhook removed)
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    history: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class DeliveryRound(Report):
    """What one pass of the deliverer did."""

    delivered: int
    retrying: int
    gave_up: int
    deliveries: tuple[Delivery, ...]


def smtp_configured(core: Store) -> bool:
    return bool(core.config.str_("alerts.smtp.host")) and bool(core.config.get("alerts.smtp.to"))


def queue(core: Store, d: _Db, events: list[AlertEvent], now: str) -> None:
    """Inside ``emit_run``'s transaction: one webhook message per (event, webhook that wants it), one mail
    for all the events when SMTP is configured."""
    hooks = d.rows("SELECT webhook_id, events FROM alert_webhooks WHERE removed_at IS NULL ORDER BY webhook_id")
    rows: list[tuple[Any, ...]] = []
    for ev in events:
        for hook_id, filters in hooks:
            if wants(tuple(json.loads(filters)), ev.type):
                rows.append((new_id("msg"), "webhook", str(hook_id), json.dumps([ev.event_id]), now, now))
    if smtp_configured(core):
        rows.append((new_id("msg"), "email", "smtp", json.dumps([e.event_id for e in events]), now, now))
    if rows:
        d.many("INSERT INTO alert_deliveries (message_id, channel, target, event_ids, status, attempts, "
               "next_attempt_at, created_at) VALUES (?,?,?,?,'pending',0,?,?)", rows)


def backoff(core: Store, attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: base × 2^(attempts-1), capped."""
    base, cap = core.config.float_("alerts.retry_base"), core.config.float_("alerts.retry_max")
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def _claim(core: Store, now: dt.datetime, limit: int) -> list[tuple[Any, ...]]:
    cols = "delivery_id, message_id, channel, target, event_ids, attempts"
    with core.catalog.db() as d, d.tx():
        rows = d.rows(f"SELECT {cols} FROM alert_deliveries WHERE status='pending' AND next_attempt_at <= ? "  # noqa: S608
                      "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_attempt_at, delivery_id LIMIT ?",
                      (_iso(now), _iso(now), limit))
        until = _iso(now + dt.timedelta(seconds=LEASE_S))
        for r in rows:
            d.run("UPDATE alert_deliveries SET claimed_until=? WHERE delivery_id=?", (until, r[0]))
    return rows


def _send(core: Store, channel: str, target: str, message_id: str, events: list[AlertEvent]) -> tuple[bool, int | None,
                                                                                                       str | None, int]:
    if channel == "webhook":
        from archiver.alerts import webhooks

        hook = webhooks.get(core, target)
        if len(events) != 1:
            return False, None, "the event of this message is not in the store", 0
        body = json.dumps(events[0].payload(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        secret = webhooks.secret_of(core, target)
        r = webhooks.post(core, hook.url, body, webhooks.headers(secret, message_id, body),
                          allow_private=hook.allow_private)
        return r.ok, r.http_status, r.error, r.duration_ms
    if channel == "email":
        from archiver.alerts import mail

        return mail.send_events(core, message_id, events)
    return False, None, f"unknown channel {channel!r}", 0


def deliver_due(core: Store, *, now: dt.datetime | None = None, limit: int = 50,
                budget_s: float | None = None) -> DeliveryRound:
    """Send every delivery that is due (see the module docstring). Never raises for a failed send.
    With ``budget_s``, the rows not reached in that many seconds are let go untried (receivers that
    time out one after another must not hold the end of a watch run for minutes)."""
    import time

    now = now or _utcnow()
    rows = _claim(core, now, limit)
    max_attempts = core.config.int_("alerts.max_attempts")
    done: list[int] = []
    counts = {"delivered": 0, "retrying": 0, "gave_up": 0}
    stop = time.monotonic() + budget_s if budget_s is not None else None
    for i, (delivery_id, message_id, channel, target, event_ids, attempts) in enumerate(rows):
        if i and stop is not None and time.monotonic() > stop:  # a round always tries one
            with core.catalog.db() as d, d.tx():  # the rest stay due, for the next deliverer
                for r in rows[i:]:
                    d.run("UPDATE alert_deliveries SET claimed_until=NULL WHERE delivery_id=?", (r[0],))
            break
        ids = json.loads(event_ids)
        try:
            events = sorted(list_events(core, event_ids=ids, limit=len(ids) or 1), key=lambda e: e.seq)
            ok, status, error, ms = _send(core, str(channel), str(target), str(message_id), events)
        except ArchiverError as exc:
            ok, status, error, ms = False, None, exc.message, 0
        except Exception as exc:  # a bug in one channel must not stop the others, nor the run
            log.exception("alert delivery %s crashed", delivery_id)
            ok, status, error, ms = False, None, f"internal error: {type(exc).__name__}", 0
        n = int(attempts) + 1
        at = _utcnow()
        if ok:
            state, nxt = "delivered", None
            counts["delivered"] += 1
        elif n >= max_attempts:
            state, nxt = "failed", None
            counts["gave_up"] += 1
        else:
            state, nxt = "pending", _iso(at + dt.timedelta(seconds=backoff(core, n)))
            counts["retrying"] += 1
        with core.catalog.db() as d, d.tx():
            d.run("INSERT INTO alert_attempts (delivery_id, attempt, at, ok, http_status, error, duration_ms) "
                  "VALUES (?,?,?,?,?,?,?)", (delivery_id, n, _iso(at), int(ok), status, error, ms))
            d.run("UPDATE alert_deliveries SET status=?, attempts=?, next_attempt_at=COALESCE(?, next_attempt_at), "
                  "claimed_until=NULL, last_error=?, delivered_at=? WHERE delivery_id=?",
                  (state, n, nxt, error, _iso(at) if ok else None, delivery_id))
        if not ok:
            log.warning("alert %s to %s %s: attempt %d failed: %s", message_id, channel, target, n, error)
        done.append(int(delivery_id))
    return DeliveryRound(delivered=counts["delivered"], retrying=counts["retrying"], gave_up=counts["gave_up"],
                         deliveries=tuple(deliveries(core, ids=done)))


#: seconds the deliverer may spend at the end of a watch run (the rest is sent by the next round)
RUN_BUDGET_S = 30.0


def deliver_quietly(core: Store, *, budget_s: float | None = RUN_BUDGET_S) -> DeliveryRound | None:
    """For the end of a watch run and the server's schedule: a round of at most ``budget_s`` seconds
    whose own failure (the catalog is gone) is logged, never raised — the run's records are committed
    whatever happens here."""
    try:
        return deliver_due(core, budget_s=budget_s)
    except Exception:
        log.exception("alert delivery round failed; the deliveries stay queued")
        return None


_DCOLS = ("delivery_id, message_id, channel, target, event_ids, status, attempts, next_attempt_at, last_error, "
          "created_at, delivered_at")


def deliveries(core: Store, *, ids: list[int] | None = None, status: str | None = None,
               limit: int = 100) -> list[Delivery]:
    """The delivery log, newest first, each with its attempts."""
    where: list[str] = []
    args: list[Any] = []
    if ids is not None:
        if not ids:
            return []
        where.append("delivery_id IN (" + ",".join("?" * len(ids)) + ")")
        args += ids
    if status is not None:
        where.append("status=?")
        args.append(status)
    # the WHERE clause is made of the fixed conditions above, every value a placeholder
    sql = f"SELECT {_DCOLS} FROM alert_deliveries" + (" WHERE " + " AND ".join(where) if where else "") + \
        " ORDER BY delivery_id DESC LIMIT ?"  # noqa: S608
    with core.catalog.db() as d:
        rows = d.rows(sql, [*args, max(1, limit)])
        found = [int(r[0]) for r in rows]
        tries: dict[int, list[Attempt]] = {}
        if found:
            marks = ",".join("?" * len(found))
            sql = ("SELECT delivery_id, attempt, at, ok, http_status, error, duration_ms FROM alert_attempts "  # noqa: S608
                   f"WHERE delivery_id IN ({marks}) ORDER BY delivery_id, attempt")
            for a in d.rows(sql, found):
                tries.setdefault(int(a[0]), []).append(Attempt(attempt=int(a[1]), at=str(a[2]), ok=bool(a[3]),
                                                               http_status=a[4], error=a[5], duration_ms=int(a[6])))
    return [Delivery(delivery_id=int(r[0]), message_id=str(r[1]), channel=str(r[2]), target=str(r[3]),
                     event_ids=tuple(json.loads(r[4])), status=str(r[5]), attempts=int(r[6]),
                     next_attempt_at=str(r[7]) if r[5] == "pending" else None, last_error=r[8],
                     created_at=str(r[9]), delivered_at=r[10], history=tuple(tries.get(int(r[0]), [])))
            for r in rows]


def after_run(core: Store, summary: RunSummary, provision_checks: Iterable[Any] = (), *,
              actor: str) -> list[AlertEvent]:
    """What ``watch run`` calls once its records are committed (and its provisions re-checked): the
    run's events stored with their deliveries, then one delivery round. Never raises — the run's
    outcome and exit code are the run's own: a failure here is logged, and what was queued stays
    queued for ``archiver alerts deliver`` or the server's deliverer."""
    from archiver.alerts.events import emit_run

    try:
        events = emit_run(core, summary, provision_checks, actor=actor)
    except Exception:
        log.exception("alert events of the watch run could not be stored")
        return []
    if events:
        deliver_quietly(core)
    return events


# ---- watch run --notify-url ----------------------------------------------------------------------
def notify_run(core: Store, url: str, summary: RunSummary) -> str:
    """``watch run --notify-url URL``: the run's summary POSTed once, as a Standard Webhooks message
    (``webhook-id``, ``webhook-timestamp``; signed with the secret of a registered webhook of the same
    URL, when there is one). The body keeps the summary's own keys (``counts``, ``results``…) and adds
    ``type`` ``watch.run`` and ``timestamp``. Through the same SSRF guard as every webhook. Returns what
    happened ("sent (HTTP 204)", "failed: …"); never raises: a capture is never lost to a receiver."""
    from archiver.alerts import webhooks

    try:
        webhooks.check_target(core, url)
        secret = None
        for hook in webhooks.list_all(core):
            if hook.url == url:
                secret = webhooks.secret_of(core, hook.id)
                break
    except ArchiverError as exc:
        return f"failed: {exc.message}"
    body = json.dumps({**summary.to_dict(), "type": "watch.run", "timestamp": _iso(_utcnow())},
                      ensure_ascii=False).encode("utf-8")
    message_id = new_id("msg")
    last = ""
    for attempt in range(3):
        if attempt:
            import time

            time.sleep(0.5 * 2 ** (attempt - 1))
        r = webhooks.post(core, url, body, webhooks.headers(secret, message_id, body))
        if r.ok:
            return f"sent (HTTP {r.http_status})"
        last = f"failed: {r.error}"
        if r.http_status is not None and r.http_status < 500:
            break
    return last


__all__ = ["Attempt", "Delivery", "DeliveryRound", "after_run", "backoff", "deliver_due", "deliver_quietly",
           "deliveries", "notify_run", "queue", "smtp_configured"]
