"""The watch list: what is watched, with which declaration; adding, changing, removing, OTA import.

Each act is one unit of work through the ledger: the watch row, the declaration version
(``watch_declarations``) and the custody entry (``watch-add``, ``watch-update``, ``watch-remove``)
commit together, so a declaration in force always has its history and who made it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import NotFoundError, UsageError
from archiver.monitor.declarations import (
    PastRules,
    canonical_rules,
    close_current,
    ensure_text_under,
    insert_version,
    missed_records,
    ota_history,
    ota_rules,
    rules_json,
    text_name,
    update_row,
)
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Capturer
    from archiver.provenance.keys import PassphraseSource

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text.lower())
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"invalid interval {text!r}", hint="use a number and a unit: 90s, 30m, 12h, 1d, 1w")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(t: str) -> dt.datetime:
    return dt.datetime.fromisoformat(t.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Watch:
    url: str
    entity: str | None
    document: str | None
    interval_s: int
    allow_private: bool
    insecure: bool
    created_at: str
    last_run: str | None
    last_outcome: str | None
    last_record: str | None
    select: tuple[str, ...] = ()  # declared extraction rules (Open Terms Archive select/remove)
    remove: tuple[str, ...] = ()

    def due(self, now: dt.datetime) -> bool:
        return self.last_run is None or (now - _parse(self.last_run)).total_seconds() >= self.interval_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WatchUpdate(Report):
    """What ``watch update`` changed: the new declaration version, which fields changed, and the
    previous version's text made again under the new rules (so the next run compares like for like)."""

    url: str
    version: int
    changed: tuple[str, ...]
    select: tuple[str, ...]
    remove: tuple[str, ...]
    previous_record_id: str | None = None
    rederived: str | None = None  # artifact name of the previous version's text under the new rules
    rederived_sha256: str | None = None


def _options(allow_private: bool, insecure: bool, select: tuple[str, ...], remove: tuple[str, ...]) -> str:
    return json.dumps({"allow_private": allow_private, "insecure": insecure,
                       **({"select": list(select), "remove": list(remove)} if select else {})}, sort_keys=True)


def _checked_rules(select: tuple[str, ...], remove: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from archiver.capture.maintext import check_rules

    if remove and not select:
        raise UsageError("--remove needs --select: remove rules apply inside the selected part")
    check_rules(select, remove)
    return canonical_rules(select), canonical_rules(remove)


def add_watch(archive: Capturer, url: str, *, entity: str | None, document: str | None, every: str,
              actor: str, allow_private: bool = False, insecure: bool = False, select: tuple[str, ...] = (),
              remove: tuple[str, ...] = (), past: tuple[PastRules, ...] = (), source: str = "watch-add") -> Watch:
    """Start watching ``url``: the watch row, its declaration (and ``past`` versions from an OTA
    history) and the ``watch-add`` custody entry in one unit of work."""
    from archiver.capture.fetch import validate_url

    validate_url(url)
    interval = parse_interval(every)
    select, remove = _checked_rules(select, remove)
    opts = _options(allow_private, insecure, select, remove)
    from store.catalog import Catalog
    from store.custody import Event

    def prepare(d: Any) -> tuple[list[Event], Callable[[Any], None], None]:
        if Catalog.has_watch(d, url):
            raise UsageError(f"{url} is already watched", hint="archiver watch update URL changes it")

        def index(d: Any) -> None:
            now = _iso(_now())
            Catalog.insert_watch(d, url, entity, document, interval, opts, now)
            start: str | None = None
            for p in past:
                insert_version(d, url, select=p.select, remove=p.remove, entity=entity, document=document,
                               interval_s=interval, valid_from=start, valid_until=p.valid_until, actor=actor,
                               source="ota-history")
                start = p.valid_until
            insert_version(d, url, select=select, remove=remove, entity=entity, document=document,
                           interval_s=interval, valid_from=start or now, valid_until=None, actor=actor, source=source)
        detail = {"url": url, "every": every, **({"rules": rules_json(select, remove)} if select else {}),
                  **({"history": str(len(past))} if past else {})}
        return [Event("watch-add", detail=detail)], index, None
    archive.ledger.run(prepare, actor=actor)
    return get_watch(archive, url)


def update_watch(archive: Capturer, url: str, *, actor: str, passphrase: PassphraseSource | None = None,
                 select: tuple[str, ...] | None = None, remove: tuple[str, ...] | None = None,
                 every: str | None = None, entity: str | None = None, document: str | None = None) -> WatchUpdate:
    """Change a watch's declaration: a new version in its history and a ``watch-update`` custody entry,
    in one unit of work. ``None`` keeps a field; an empty tuple of rules clears them (automatic text).

    When the rules change, the previous version's text (the last capture that was a version) is made
    again from its content under the new rules, as a signed ``derived`` addendum named
    ``main-text.<rules id>``: the next run compares the document with itself, so the change of rules
    alone is never a new version. A capture whose selector matched nothing is not that version."""
    old = get_watch(archive, url)
    new_select = old.select if select is None else tuple(s for s in select if s.strip())
    new_remove = old.remove if remove is None else tuple(s for s in remove if s.strip())
    if select is not None and not new_select and remove is None:
        new_remove = ()  # back to automatic text: remove rules apply only inside a selection
    new_select, new_remove = _checked_rules(new_select, new_remove)
    interval = old.interval_s if every is None else parse_interval(every)
    new_entity = old.entity if entity is None else (entity or None)
    new_document = old.document if document is None else (document or None)
    changed = tuple(name for name, a, b in (("select", old.select, new_select), ("remove", old.remove, new_remove),
                                            ("every", old.interval_s, interval), ("entity", old.entity, new_entity),
                                            ("document", old.document, new_document)) if a != b)
    if select is None and remove is None and every is None and entity is None and document is None:
        raise UsageError("nothing to change", hint="give --select, --remove, --every, --entity or --document")
    opts = _options(old.allow_private, old.insecure, new_select, new_remove)
    from store.catalog import Catalog
    from store.custody import Event

    def prepare(d: Any) -> tuple[list[Event], Callable[[Any], None] | None, int]:
        if not Catalog.has_watch(d, url):
            raise NotFoundError(f"{url} is not watched", hint="`archiver watch list` shows the watches")
        row = d.one("SELECT MAX(version) FROM watch_declarations WHERE url=?", (url,))
        current = int(row[0]) if row and row[0] is not None else 0
        if not changed:
            return [], None, current
        version = current + 1

        def index(d: Any) -> None:
            update_row(d, url, entity=new_entity, document=new_document, interval_s=interval, options=opts)
            insert_version(d, url, select=new_select, remove=new_remove, entity=new_entity, document=new_document,
                           interval_s=interval, valid_from=_iso(_now()), valid_until=None, actor=actor,
                           source="watch-update")
        detail = {"url": url, "version": str(version), "changed": ",".join(changed),
                  "rules": rules_json(new_select, new_remove), "every": f"{interval}s"}
        return [Event("watch-update", detail=detail)], index, version
    _, version = archive.ledger.run(prepare, actor=actor)
    out = WatchUpdate(url=url, version=version, changed=changed, select=new_select, remove=new_remove)
    if "select" not in changed and "remove" not in changed:
        return out
    missed = missed_records(archive, url)
    good = [r for r in archive.catalog.records_for_url(url) if r[0] not in missed]
    if not good:
        return out
    prev = good[-1][0]
    from archiver.provenance.keys import ask_once

    once = ask_once(passphrase or (lambda: None))
    sha = ensure_text_under(archive, prev, (new_select, new_remove), lambda: archive.keys.load_private(once),
                            actor=actor)
    name = text_name(new_select, new_remove) if sha is not None else None
    return WatchUpdate(url=url, version=version, changed=changed, select=new_select, remove=new_remove,
                       previous_record_id=prev, rederived=name, rederived_sha256=sha)


def remove_watch(archive: Capturer, url: str, *, actor: str) -> None:
    """Stop watching ``url`` (its records, run log and declaration history stay): ``watch-remove``."""
    from store.catalog import Catalog
    from store.custody import Event

    def prepare(d: Any) -> tuple[list[Event], Callable[[Any], None], None]:
        if not Catalog.has_watch(d, url):
            raise NotFoundError(f"{url} is not watched", hint="`archiver watch list` shows the watches")

        def index(d: Any) -> None:
            Catalog.delete_watch(d, url)
            close_current(d, url, _iso(_now()))
        return [Event("watch-remove", detail={"url": url})], index, None
    archive.ledger.run(prepare, actor=actor)


def import_ota(archive: Capturer, declaration: Any, *, actor: str, every: str = "1d",
               history: Any = None) -> list[Watch]:
    """Watches from an Open Terms Archive service declaration: ``{"name": …, "terms": {"Privacy Policy":
    {"fetch": URL, "select": rule(s), "remove": rule(s)}}}``. A range rule is kept as its JSON. With
    the service's ``*.history.json`` (``{"Privacy Policy": [{…rules…, "validUntil": T}, …]}``) each
    watch's declaration history starts with the rules that applied before; the current declaration
    is the one in force. A document with no select rule (a PDF) gets its text automatically."""
    if not isinstance(declaration, dict) or not isinstance(declaration.get("terms"), dict):
        raise UsageError("not an Open Terms Archive declaration: no \"terms\" object")
    name = str(declaration.get("name") or "") or None
    specs = []
    for doc, spec in declaration["terms"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("fetch"), str):
            raise UsageError(f"declaration of {doc!r} has no fetch URL")
        specs.append((str(doc), spec, ota_history(history, str(doc), spec["fetch"])))
    return [add_watch(archive, spec["fetch"], entity=name, document=doc, every=every, actor=actor,
                      select=ota_rules(spec.get("select")), remove=ota_rules(spec.get("remove")), past=past,
                      source="ota") for doc, spec, past in specs]


def _row_to_watch(row: Any) -> Watch:
    opts = json.loads(row["options"])
    return Watch(url=row["url"], entity=row["entity"], document=row["document"], interval_s=int(row["interval_s"]),
                 allow_private=bool(opts.get("allow_private")), insecure=bool(opts.get("insecure")),
                 created_at=row["created_at"], last_run=row["last_run"], last_outcome=row["last_outcome"],
                 last_record=row["last_record"], select=tuple(opts.get("select", ())),
                 remove=tuple(opts.get("remove", ())))


def list_watches(archive: Capturer) -> list[Watch]:
    return [_row_to_watch(r) for r in archive.catalog.watches()]


def get_watch(archive: Capturer, url: str) -> Watch:
    for w in list_watches(archive):
        if w.url == url:
            return w
    raise NotFoundError(f"{url} is not watched", hint="`archiver watch list` shows the watches")


__all__ = ["Watch", "WatchUpdate", "add_watch", "get_watch", "import_ota", "list_watches", "parse_interval",
           "remove_watch", "update_watch"]
