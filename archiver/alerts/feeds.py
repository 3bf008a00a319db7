"""Atom feeds (RFC 4287) of alert events: everything, one entity, one watch.

A feed is a pure function of the stored events (append-only), so a reader polling it sees each
change once, as one entry, with a stable ``atom:id`` (a ``tag:`` URI of RFC 4151 over the event's ID),
``updated`` = when the event was recorded, a link to the diff (else the record page), ``related``
links to the records, the event type as a category, and the structured change summary as text.
A watch is named in its feed's URL by :func:`watch_key` (the first 16 hex digits of the SHA-256 of
its URL): a URL cannot sit in a path segment, and the key does not spell the URL out to a log.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from archiver.alerts.events import AlertEvent, list_events
from archiver.errors import NotFoundError

if TYPE_CHECKING:
    from archiver.ports import Store

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
ENTRIES = 100
#: what XML 1.0 cannot carry at all (a captured heading may hold any of them): dropped from a feed's text
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def watch_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def watch_url_of(core: Store, key: str) -> str:
    """The watched (or once watched, with events) URL whose key this is."""
    with core.catalog.db() as d:
        urls = [str(r[0]) for r in d.rows("SELECT url FROM watches")]
        urls += [str(r[0]) for r in d.rows("SELECT DISTINCT url FROM alert_events")]
    for u in urls:
        if watch_key(u) == key:
            return u
    raise NotFoundError(f"no watch with feed key {key!r}")


def entity_known(core: Store, name: str) -> bool:
    with core.catalog.db() as d:
        return any(d.one(f"SELECT 1 FROM {table} WHERE entity=? LIMIT 1", (name,)) is not None  # noqa: S608
                   for table in ("watches", "alert_events", "records"))


def _tag(base: str, event: AlertEvent) -> str:
    host = urllib.parse.urlsplit(base).hostname or "archiver.invalid"
    return f"tag:{host},{event.occurred_at[:10]}:alerts/{event.event_id}"


def _abs(base: str, link: str | None) -> str | None:
    if not link:
        return None
    return link if "://" in link else base.rstrip("/") + link


def atom(events: list[AlertEvent], *, title: str, feed_url: str, base: str, author: str = "archiver",
         updated_when_empty: str = "1970-01-01T00:00:00Z") -> bytes:
    """The feed document: ``events`` newest first, one entry each."""
    ET.register_namespace("", ATOM)

    def el(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
        e = ET.SubElement(parent, f"{{{ATOM}}}{name}", {k: _NOT_XML.sub("", v) for k, v in attrs.items()})
        if text is not None:
            e.text = _NOT_XML.sub("", text)  # ElementTree escapes markup, not characters XML forbids
        return e

    feed = ET.Element(f"{{{ATOM}}}feed")
    el(feed, "id", feed_url)
    el(feed, "title", title)
    el(feed, "updated", events[0].occurred_at if events else updated_when_empty)
    el(el(feed, "author"), "name", author)
    el(feed, "link", rel="self", href=feed_url, type="application/atom+xml")
    el(feed, "generator", "archiver")
    for ev in events:
        entry = el(feed, "entry")
        el(entry, "id", _tag(base, ev))
        el(entry, "title", ev.title())
        el(entry, "updated", ev.occurred_at)
        main = _abs(base, ev.links.diff) or _abs(base, ev.links.record)
        el(entry, "link", rel="alternate", href=main or ev.url, type="text/html")
        for rel_link in (ev.links.record, ev.links.previous_record):
            href = _abs(base, rel_link)
            if href and href != main:
                el(entry, "link", rel="related", href=href, type="text/html")
        el(entry, "link", rel="via", href=ev.url)
        el(entry, "category", term=ev.type)
        el(entry, "summary", ev.summary(), type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def feed_all(core: Store, *, feed_url: str, base: str) -> bytes:
    return atom(list_events(core, limit=ENTRIES), title="archiver: all alerts", feed_url=feed_url, base=base,
                author=_author(core))


def feed_entity(core: Store, name: str, *, feed_url: str, base: str) -> bytes:
    if not entity_known(core, name):
        raise NotFoundError(f"no watched entity {name!r}")
    return atom(list_events(core, entity=name, limit=ENTRIES), title=f"archiver: alerts for {name}",
                feed_url=feed_url, base=base, author=_author(core))


def feed_watch(core: Store, key: str, *, feed_url: str, base: str) -> bytes:
    url = watch_url_of(core, key)
    return atom(list_events(core, url=url, limit=ENTRIES), title=f"archiver: alerts for {url}", feed_url=feed_url,
                base=base, author=_author(core))


def _author(core: Store) -> str:
    return core.config.str_("operator.organization") or core.config.str_("operator.name") or "archiver"


__all__ = ["ATOM", "MEDIA_TYPE", "atom", "entity_known", "feed_all", "feed_entity", "feed_watch", "watch_key",
           "watch_url_of"]
