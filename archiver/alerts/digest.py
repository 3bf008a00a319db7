"""The digest: every alert of a period (``alerts digest --since 7d``) in one structured summary, sent
by mail when SMTP is configured (else handed back to be printed) — for people who want one message a
day or a week instead of one per run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archiver.alerts.events import AlertEvent, list_events
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Store

#: the most events one digest lists (a week of a few hundred watches fits; more says so)
MAX_EVENTS = 5000


@dataclass(frozen=True, slots=True)
class Digest(Report):
    """The alerts since a time, oldest first, with counts by type, and whether it was mailed."""

    since: str
    until: str
    counts: dict[str, int]
    events: tuple[AlertEvent, ...]
    subject: str
    text: str
    mailed_to: tuple[str, ...]


def build(core: Store, since_s: int, *, now: dt.datetime | None = None) -> Digest:
    from archiver.alerts.mail import compose

    until = now or dt.datetime.now(dt.UTC)
    since = until - dt.timedelta(seconds=since_s)
    iso = since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = sorted(list_events(core, since=iso, limit=MAX_EVENTS), key=lambda e: e.seq)
    counts: dict[str, int] = {}
    for e in events:
        counts[e.type] = counts.get(e.type, 0) + 1
    until_iso = until.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    period = f"{iso[:16].replace('T', ' ')} to {until_iso[:16].replace('T', ' ')} UTC"
    if events:
        _, body = compose(events)
        text = f"Alerts digest, {period}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + "\n\n" + body
    else:
        text = f"Alerts digest, {period}: no alerts.\n"
    subject = f"[archiver] digest: {len(events)} alert(s) since {iso[:10]}"
    return Digest(since=iso, until=until_iso, counts=counts, events=tuple(events), subject=subject, text=text,
                  mailed_to=())


def run(core: Store, since_s: int, *, mail: bool | None = None) -> Digest:
    """Build the digest and mail it when SMTP is configured (``mail`` None) or asked (True); a refusal
    by the server raises ``RemoteServiceError`` (exit 3) saying what it refused."""
    import dataclasses

    from archiver.alerts import delivery
    from archiver.alerts import mail as mail_mod

    digest = build(core, since_s)
    if mail is None:
        mail = delivery.smtp_configured(core)
    if not mail:
        return digest
    mail_mod.send(core, digest.subject, digest.text)
    return dataclasses.replace(digest, mailed_to=tuple(str(x) for x in core.config.get("alerts.smtp.to") or []))  # type: ignore[union-attr]


__all__ = ["Digest", "build", "run"]
