"""Alert events: what a watch run found that someone should hear of, stored once and queued for delivery.

Why events are turned out of the run's summary after the run, and not sent from inside it: a capture
and its record must never wait on (or be lost to) a webhook receiver, a mail server or a feed. The
run commits its records first; :func:`emit_run` then writes the events (append-only) and, in the
*same* catalog transaction, one queued delivery per webhook that wants each event and one mail for
the run's events when SMTP is set up. Delivery happens afterwards (``archiver/alerts/delivery.py``),
so a dead receiver costs a logged, retried delivery — never a capture, never the run.

Outcomes that do not exist yet are read defensively: a ``RunResult`` outcome ``selector-missed`` (a
declared selector that matched nothing) and provision checks (``provisions.recheck``) are taken as
plain objects with the attributes named in :class:`ProvisionCheck`, so this module works before, and
after, the code that makes them.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from archiver.errors import UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.monitor import RunResult, RunSummary
    from archiver.ports import Store
    from store.catalog import _Db

#: Every event type, in the order a reader meets them (``--events`` accepts these and globs of them).
EVENT_TYPES = ("document.changed", "document.removed", "document.unreachable", "declaration.unmatched",
               "provision.changed", "provision.moved", "provision.removed")
#: An HTTP status that says the document is gone (rather than an error page that may pass).
GONE = frozenset({404, 410, 451})


class ProvisionCheck(Protocol):
    """What a provision re-check reports (``provisions.ProvisionCheck``: the provision, the record it
    was looked for in, the status); read by attribute only. An object that also carries ``url``,
    ``label`` and ``record_ids`` (older, newer) is taken as it is; else they come from the provision and
    the run's result for that record."""

    provision_id: str
    status: str  # unchanged | changed | moved | removed


@dataclass(frozen=True, slots=True)
class AlertLinks(Report):
    """Where a person reads more: the app's record pages and the diff (absolute when
    ``web.public_url`` is set, else paths on the server)."""

    record: str | None = None
    previous_record: str | None = None
    diff: str | None = None


@dataclass(frozen=True, slots=True)
class AlertEvent(Report):
    """One thing a watch run found: a document that changed, went away or could not be read, a declared
    selector that matched nothing, a tracked provision that changed, moved or was removed."""

    event_id: str
    seq: int
    type: str
    occurred_at: str
    url: str
    entity: str | None
    document: str | None
    record_id: str | None
    previous_record_id: str | None
    provision_id: str | None
    label: str | None
    http_status: int | None
    sections: tuple[str, ...]
    selector: str | None
    detail: str | None
    links: AlertLinks
    actor: str

    def title(self) -> str:
        """One line saying what happened to what (feeds, mail subjects, the log page)."""
        what = " — ".join(x for x in (self.entity, self.document) if x) or self.url
        if self.type.startswith("provision."):
            name = self.label or self.provision_id or "a provision"
            return f"{what}: provision {name!r} {self.type.split('.', 1)[1]}"
        verb = {"document.changed": "changed", "document.removed": "removed",
                "document.unreachable": "could not be reached",
                "declaration.unmatched": "declared selector matched nothing"}.get(self.type, self.type)
        return f"{what}: {verb}"

    def summary(self) -> str:
        """The structured change in a few lines of text (feeds, mail)."""
        lines = [self.title(), f"URL: {self.url}"]
        if self.sections:
            lines.append("Sections changed: " + "; ".join(self.sections))
        if self.selector:
            lines.append(f"Selector: {self.selector}")
        if self.http_status is not None and self.http_status != 200:
            lines.append(f"HTTP status: {self.http_status}")
        if self.detail:
            lines.append(f"Detail: {self.detail}")
        if self.record_id:
            lines.append(f"Record: {self.record_id}" + (f" (previous {self.previous_record_id})"
                                                         if self.previous_record_id else ""))
        for name, link in (("Diff", self.links.diff), ("Record page", self.links.record),
                           ("Previous record", self.links.previous_record)):
            if link:
                lines.append(f"{name}: {link}")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """The Standard Webhooks payload: ``type``, ``timestamp`` and the event as ``data``."""
        return {"type": self.type, "timestamp": self.occurred_at, "data": self.to_dict()}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier with a kind prefix (``evt_…``, ``msg_…``, ``wh_…``)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def check_filters(patterns: Iterable[str]) -> tuple[str, ...]:
    """Event-type filters as given to ``webhook add --events``: each an event type or a glob of them
    (``provision.*``); one that matches no type is refused (a typo would silence the webhook)."""
    out = []
    for p in patterns:
        for part in p.replace(",", " ").split():
            if not fnmatch.filter(EVENT_TYPES, part):
                raise UsageError(f"no event type matches {part!r}", hint="event types: " + ", ".join(EVENT_TYPES))
            out.append(part)
    return tuple(dict.fromkeys(out))


def wants(filters: Sequence[str], event_type: str) -> bool:
    """Whether a webhook with these filters (empty: every event) receives ``event_type``."""
    return not filters or any(fnmatch.fnmatchcase(event_type, f) for f in filters)


def links_for(core: Store, record_id: str | None, previous: str | None) -> AlertLinks:
    base = str(core.config.get("web.public_url") or "")
    return AlertLinks(record=f"{base}/records/{record_id}" if record_id else None,
                      previous_record=f"{base}/records/{previous}" if previous else None,
                      diff=f"{base}/diff/{previous}/{record_id}" if record_id and previous else None)


# ---- from a run to events --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Draft:
    type: str
    url: str
    record_id: str | None = None
    previous_record_id: str | None = None
    provision_id: str | None = None
    label: str | None = None
    http_status: int | None = None
    sections: tuple[str, ...] = ()
    selector: str | None = None
    detail: str | None = None


def _previous_outcome(d: _Db, url: str, started: str) -> str | None:
    """The outcome of the URL's last run before this one (to alert once when a state begins)."""
    row = d.one("SELECT outcome FROM watch_runs WHERE url=? AND time < ? ORDER BY time DESC, run_id DESC LIMIT 1",
                (url, started))
    return str(row[0]) if row else None


def _drafts_of_result(d: _Db, r: RunResult, started: str) -> list[_Draft]:
    outcome = str(getattr(r, "outcome", ""))
    status = getattr(r, "status", None)
    rid, prev = getattr(r, "record_id", None), getattr(r, "previous_record_id", None)
    sections = tuple(str(s) for s in (getattr(r, "sections", ()) or ()))
    if outcome == "changed":
        kind = "document.removed" if status in GONE else "document.changed"
        return [_Draft(kind, r.url, rid, prev, http_status=status, sections=sections)]
    if outcome == "failed":
        # a document that cannot be read is news once, when it starts; the run keeps reporting it
        if _previous_outcome(d, r.url, started) == "failed":
            return []
        return [_Draft("document.unreachable", r.url, rid, prev, detail=getattr(r, "error", None))]
    if outcome == "selector-missed":  # declarations: a declared selector matched nothing (no version)
        if _previous_outcome(d, r.url, started) == "selector-missed":
            return []
        selector = getattr(r, "missed_selector", None) or getattr(r, "selector", None) or getattr(r, "error", None)
        return [_Draft("declaration.unmatched", r.url, rid, prev, http_status=status,
                       selector=str(selector) if selector else None, detail=getattr(r, "error", None))]
    return []  # new, unchanged, and outcomes this release does not know


def _drafts_of_provision(core: Store, c: ProvisionCheck, previous_of: dict[str, str | None]) -> list[_Draft]:
    status = str(getattr(c, "status", ""))
    if status not in ("changed", "moved", "removed"):
        return []
    url, label = getattr(c, "url", None), getattr(c, "label", None)
    if url is None:  # a provisions.ProvisionCheck names its provision and record: the rest is looked up
        from archiver.provisions import get as get_provision

        p = get_provision(core, str(c.provision_id))
        url, label = p.url, label or p.label
    ids = [str(x) for x in (getattr(c, "record_ids", ()) or ())]
    if not ids and getattr(c, "record_id", None):
        rid = str(c.record_id)  # type: ignore[attr-defined]  # a provisions.ProvisionCheck
        ids = [x for x in (previous_of.get(rid), rid) if x]
    return [_Draft(f"provision.{status}", str(url), ids[-1] if ids else None,
                   ids[-2] if len(ids) > 1 else None, provision_id=str(c.provision_id), label=label)]


def emit_run(core: Store, summary: RunSummary, provision_checks: Iterable[ProvisionCheck] = (), *,
             actor: str) -> list[AlertEvent]:
    """Turn a watch run's summary (and its provision checks) into stored events, and queue their
    deliveries in the same transaction (see the module docstring). Returns the events, in order."""
    from archiver.alerts import delivery

    checks = list(provision_checks)
    now = _now()
    previous_of = {r.record_id: r.previous_record_id for r in summary.results if r.record_id}
    provision_drafts = [x for c in checks for x in _drafts_of_provision(core, c, previous_of)]  # reads: before the tx
    with core.catalog.db() as d, d.tx():
        drafts = [x for r in summary.results for x in _drafts_of_result(d, r, summary.started)]
        drafts += provision_drafts
        events, new = [], []
        for draft in drafts:
            key = _run_key(summary.started, draft)
            old = d.one(f"SELECT {_COLS} FROM alert_events WHERE run_key=?", (key,))  # noqa: S608
            if old is not None:  # this run's summary was emitted already: its events, not twice
                events.append(_event(core, old))
                continue
            ev = _insert(core, d, draft, key, now, actor)
            events.append(ev)
            new.append(ev)
        if new:
            delivery.queue(core, d, new, now)
    return events


def _run_key(started: str, x: _Draft) -> str:
    import hashlib

    return hashlib.sha256(json.dumps([started, x.type, x.url, x.record_id, x.provision_id]).encode()).hexdigest()


def _insert(core: Store, d: _Db, x: _Draft, key: str, now: str, actor: str) -> AlertEvent:
    row = d.one("SELECT entity, document FROM watches WHERE url=?", (x.url,)) or \
        d.one("SELECT entity, document FROM records WHERE url=? ORDER BY captured_at DESC LIMIT 1", (x.url,))
    entity, document = (row[0], row[1]) if row else (None, None)
    event_id = new_id("evt")
    data = {"label": x.label, "http_status": x.http_status, "sections": list(x.sections), "selector": x.selector,
            "detail": x.detail}
    d.run("INSERT INTO alert_events (event_id, run_key, type, occurred_at, url, entity, document, record_id, "
          "previous_record_id, provision_id, actor, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
          (event_id, key, x.type, now, x.url, entity, document, x.record_id, x.previous_record_id, x.provision_id,
           actor, json.dumps(data, sort_keys=True)))
    seq = d.one("SELECT seq FROM alert_events WHERE event_id=?", (event_id,))
    return AlertEvent(event_id=event_id, seq=int(seq[0]) if seq else 0, type=x.type, occurred_at=now, url=x.url,
                      entity=entity, document=document, record_id=x.record_id,
                      previous_record_id=x.previous_record_id, provision_id=x.provision_id, label=x.label,
                      http_status=x.http_status, sections=x.sections, selector=x.selector, detail=x.detail,
                      links=links_for(core, x.record_id, x.previous_record_id), actor=actor)


# ---- reading events back ---------------------------------------------------------------------------
_COLS = ("seq, event_id, type, occurred_at, url, entity, document, record_id, previous_record_id, provision_id, "
         "actor, data")


def _event(core: Store, row: tuple[Any, ...]) -> AlertEvent:
    data = json.loads(row[11])
    return AlertEvent(event_id=str(row[1]), seq=int(row[0]), type=str(row[2]), occurred_at=str(row[3]),
                      url=str(row[4]), entity=row[5], document=row[6], record_id=row[7], previous_record_id=row[8],
                      provision_id=row[9], label=data.get("label"), http_status=data.get("http_status"),
                      sections=tuple(data.get("sections") or ()), selector=data.get("selector"),
                      detail=data.get("detail"), links=links_for(core, row[7], row[8]), actor=str(row[10]))


def list_events(core: Store, *, entity: str | None = None, url: str | None = None, since: str | None = None,
                event_ids: Sequence[str] | None = None, limit: int = 100) -> list[AlertEvent]:
    """Events, newest first, optionally of one entity or URL, or after ``since`` (ISO time)."""
    where: list[str] = []
    args: list[Any] = []
    if entity is not None:
        where.append("entity=?")
        args.append(entity)
    if url is not None:
        where.append("url=?")
        args.append(url)
    if since is not None:
        where.append("occurred_at >= ?")
        args.append(since)
    if event_ids is not None:
        if not event_ids:
            return []
        where.append("event_id IN (" + ",".join("?" * len(event_ids)) + ")")
        args += list(event_ids)
    # the WHERE clause is made of the fixed conditions above, every value a placeholder
    sql = f"SELECT {_COLS} FROM alert_events" + (" WHERE " + " AND ".join(where) if where else "") + \
        " ORDER BY seq DESC LIMIT ?"  # noqa: S608
    with core.catalog.db() as d:
        rows = d.rows(sql, [*args, max(1, limit)])
    return [_event(core, r) for r in rows]


__all__ = ["EVENT_TYPES", "AlertEvent", "AlertLinks", "ProvisionCheck", "check_filters", "emit_run", "links_for",
           "list_events", "new_id", "wants"]
