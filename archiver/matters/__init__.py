"""Matters: a case or investigation that groups records, with working notes, tags and legal holds.

Why a matter is built on a collection: the people who file evidence work by matter, and what they hand
over is an ordered exhibit list. Collections (``archiver/collections.py``) already are ordered lists of
records with custody entries, so a matter *owns* one (``matter-<name>``, private unless someone
publishes it) and its exhibit list is that collection's items: ``matter add`` is ``collection add``,
and the two concepts stay one. The exhibits engineer's API is :func:`get` and :func:`record_ids`.

Notes and tags (``notes.py``) are working data: they never change a record (no addendum, nothing
signed, nothing in a bundle), and each change is a custody entry naming the record in its detail only —
a record's own custody travels in every bundle of it and must not reveal a case file. Holds
(``holds.py``) are enforced below the use cases, in ``store/holds.py``.

Custody events: ``matter-create`` (with ``collection-create`` for its list, one unit of work),
``collection-add`` (``matter add``), ``matter-note``, ``matter-tag``, ``matter-hold``,
``matter-release``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import NotFoundError, StoreConflictError, UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.collections import CollectionChange
    from archiver.ports import Store

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,55}")
#: a matter's exhibit list is the collection of this name
COLLECTION_PREFIX = "matter-"
MAX_FIELD = 300


@dataclass(frozen=True, slots=True)
class HoldInfo(Report):
    """One legal hold of a matter, active (``released_at`` None) or lifted."""

    hold_id: str
    matter: str
    reason: str
    placed_by: str
    placed_at: str
    active: bool
    released_by: str | None = None
    released_at: str | None = None


@dataclass(frozen=True, slots=True)
class Matter(Report):
    """A matter: its case fields, its exhibit list (record IDs in order) and its holds (newest first)."""

    name: str
    title: str
    client: str
    number: str
    collection: str
    created_at: str
    record_ids: tuple[str, ...]
    held: bool
    holds: tuple[HoldInfo, ...] = ()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_name(name: str) -> str:
    """A matter's name goes into a collection name (``matter-<name>``), a URL and file names: 1-56 of
    a-z 0-9 . _ - starting with a letter or digit, no ``..``."""
    if not isinstance(name, str) or ".." in name or not NAME.fullmatch(name):
        shown = json.dumps(str(name)[:70])
        raise UsageError(f"matter name {shown} must be 1-56 of a-z 0-9 . _ - starting with a letter or digit, "
                         "without '..'", hint="e.g. `archiver matter create acme-v-doe --title \"Acme v. Doe\"`")
    return name


def check_text(value: str, what: str, limit: int = MAX_FIELD) -> str:
    """One line of at most ``limit`` characters (a title, a client, a case number, a hold's reason)."""
    value = value.strip()
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise UsageError(f"the {what} must be one line of at most {limit} characters")
    return value


def _holds(d: Any, name: str) -> tuple[HoldInfo, ...]:
    rows = d.rows("SELECT hold_id, matter, reason, placed_by, placed_at, released_by, released_at FROM legal_holds "
                  "WHERE matter=? ORDER BY placed_at DESC, hold_id", (name,))
    return tuple(hold_info(r) for r in rows)


def hold_info(r: Any) -> HoldInfo:
    """A ``legal_holds`` row (hold_id, matter, reason, placed_by, placed_at, released_by, released_at)."""
    return HoldInfo(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), r[6] is None,
                    None if r[5] is None else str(r[5]), None if r[6] is None else str(r[6]))


def _matter(d: Any, name: str) -> Matter:
    row = d.one("SELECT name, title, client, number, collection, created_at FROM matters WHERE name=?", (name,))
    if row is None:
        raise NotFoundError(f"no matter named {name!r}", hint="see `archiver matter list`")
    ids = tuple(str(r[0]) for r in d.rows("SELECT record_id FROM collection_items WHERE name=? ORDER BY position",
                                          (str(row[4]),)))
    holds = _holds(d, name)
    return Matter(name=str(row[0]), title=str(row[1]), client=str(row[2]), number=str(row[3]),
                  collection=str(row[4]), created_at=str(row[5]), record_ids=ids,
                  held=any(h.active for h in holds), holds=holds)


def create(core: Store, name: str, *, title: str = "", client: str = "", number: str = "", actor: str) -> Matter:
    """A new matter with an empty exhibit list (a private collection ``matter-<name>``), in one unit of
    work: ``collection-create`` and ``matter-create`` custody entries."""
    from archiver.collections import insert
    from store.custody import Event

    name = check_name(name)
    title = check_text(title, "title") or name
    client, number = check_text(client, "client"), check_text(number, "case number")
    collection, now = COLLECTION_PREFIX + name, _now()

    def index(d: Any) -> None:
        insert(d, collection, title, now)
        d.run("INSERT INTO matters (name, title, client, number, collection, created_at) VALUES (?,?,?,?,?,?)",
              (name, title, client, number, collection, now))
    events = [Event("collection-create", detail={"name": collection, "title": title}),
              Event("matter-create", detail={"name": name, "title": title, "client": client, "number": number,
                                             "collection": collection})]
    try:
        core.ledger.commit(events, actor=actor, index=index)
    except StoreConflictError as exc:
        raise UsageError(f"a matter named {name!r} (or a collection named {collection!r}) exists already",
                         hint=f"`archiver matter add {name} ID…` adds records to it") from exc
    return get(core, name)


def get(core: Store, name: str) -> Matter:
    """The matter called ``name``; ``NotFoundError`` (exit 2) when there is none (a name no matter
    could have is simply not found: callers such as exhibits pass what a user typed)."""
    if not isinstance(name, str) or ".." in name or not NAME.fullmatch(name):
        raise NotFoundError(f"no matter named {str(name)[:70]!r}", hint="see `archiver matter list`")
    with core.catalog.db() as d:
        return _matter(d, name)


def record_ids(core: Store, name: str) -> list[str]:
    """The matter's exhibit list: record IDs in their order (``NotFoundError`` for an unknown matter)."""
    return list(get(core, name).record_ids)


def add(core: Store, name: str, ids: list[str], *, actor: str) -> CollectionChange:
    """Append records to the matter's exhibit list (``collection-add`` per new record; one already in it
    keeps its place; every ID is resolved first)."""
    from archiver.collections import add as collection_add

    matter = get(core, name)
    return collection_add(core, matter.collection, ids, actor=actor)  # it applies S3 legal holds when held


def list_all(core: Store, *, client: str | None = None, held: bool | None = None,
             tag: str | None = None, q: str | None = None) -> list[Matter]:
    """Every matter, by name, narrowed by client (exact), hold state, a tag used in it, or text in its
    name, title or number."""
    with core.catalog.db() as d:
        names = [str(r[0]) for r in d.rows("SELECT name FROM matters ORDER BY name")]
        found = [_matter(d, n) for n in names]
        tagged = None
        if tag:
            tagged = {str(r[0]) for r in d.rows("SELECT DISTINCT matter FROM matter_tags WHERE tag=?", (tag,))}
    out = []
    for m in found:
        if client and m.client != client:
            continue
        if held is not None and m.held != held:
            continue
        if tagged is not None and m.name not in tagged:
            continue
        if q and q.lower() not in f"{m.name} {m.title} {m.number} {m.client}".lower():
            continue
        out.append(m)
    return out


def matters_of(core: Store, record_id: str) -> list[str]:
    """The matters whose exhibit list holds the record."""
    with core.catalog.db() as d:
        return [str(r[0]) for r in d.rows("SELECT m.name FROM matters m JOIN collection_items ci ON "
                                          "ci.name = m.collection WHERE ci.record_id=? ORDER BY m.name",
                                          (record_id,))]


__all__ = ["COLLECTION_PREFIX", "HoldInfo", "Matter", "add", "check_name", "check_text", "create", "get",
           "hold_info", "list_all", "matters_of", "record_ids"]
