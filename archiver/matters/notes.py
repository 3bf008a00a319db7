"""Notes and tags on records, within a matter or not: working data, never evidence.

Why they are kept apart from the record: a note ("the clause our client relies on") and a tag
("key", "privileged") are the team's work, not facts about what the server sent. They are rows of the
``matters`` subsystem, never an addendum, never signed, never in a bundle, so adding one changes no
record and no verification. Each change is still a custody entry (``matter-note``, ``matter-tag``)
naming who did it — a case file's history matters too — with the record in the entry's *detail*
(not as the entry's record: a record's custody travels in its bundles). A note's entry carries the
SHA-256 of its text, not the text: the custody log is append-only and may be shown to others, a
note may be privileged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import UsageError
from archiver.matters import HoldInfo, _matter, check_name, hold_info
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Store

MAX_NOTE = 5000
TAG = re.compile(r"[\w][\w.:/+-]{0,39}")
MAX_TAGS = 20


@dataclass(frozen=True, slots=True)
class Note(Report):
    """A note on a record (``matter`` empty when it belongs to no matter)."""

    note_id: str
    record_id: str
    matter: str
    text: str
    actor: str
    created_at: str


@dataclass(frozen=True, slots=True)
class TagChange(Report):
    """What ``tag`` did: the tags added, those already there, and the record's tags in that scope now."""

    record_id: str
    matter: str
    added: tuple[str, ...]
    already: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MatterItem(Report):
    """One exhibit of a matter as its page lists it."""

    position: int
    record_id: str
    title: str
    url: str
    entity: str | None
    document: str | None
    captured_at: str
    tags: tuple[str, ...]
    notes: tuple[Note, ...]


@dataclass(frozen=True, slots=True)
class MatterView(Report):
    """A matter's page: its fields and holds, its exhibits (narrowed by ``tag`` when asked), all its tags."""

    name: str
    title: str
    client: str
    number: str
    collection: str
    created_at: str
    held: bool
    holds: tuple[HoldInfo, ...]
    items: tuple[MatterItem, ...]
    tags: tuple[str, ...]
    tag_filter: str | None = None


@dataclass(frozen=True, slots=True)
class RecordWorking(Report):
    """The working data about one record: its matters, the active holds on it, its notes and tags."""

    record_id: str
    matters: tuple[str, ...]
    holds: tuple[HoldInfo, ...]
    notes: tuple[Note, ...]
    tags: tuple[tuple[str, str], ...]  # (matter or "", tag)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scope(d: Any, matter: str | None, record_id: str) -> str:
    """'' for no matter; else the matter, which must hold the record (a note about a case is on one of
    its exhibits: `matter add` first)."""
    if not matter:
        return ""
    m = _matter(d, check_name(matter))
    if record_id not in m.record_ids:
        raise UsageError(f"record {record_id} is not in matter {matter!r}",
                         hint=f"`archiver matter add {matter} {record_id}` first")
    return m.name


def _note(r: Any) -> Note:
    return Note(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]))




def add_note(core: Store, record_id: str, text: str, *, matter: str | None = None, actor: str) -> Note:
    """A note on a record (custody ``matter-note``); the record itself is not touched."""
    from store.custody import Event

    rid = core.resolve(record_id).record_id
    text = text.strip()
    if not text:
        raise UsageError("the note is empty")
    if len(text) > MAX_NOTE or any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise UsageError(f"a note is at most {MAX_NOTE} characters of text (line breaks and tabs allowed)")
    note_id, now = secrets.token_hex(8), _now()

    def prepare(d: Any) -> tuple[list[Event], None, Note]:
        scope = _scope(d, matter, rid)
        d.run("INSERT INTO matter_notes (note_id, record_id, matter, text, actor, created_at) VALUES (?,?,?,?,?,?)",
              (note_id, rid, scope, text, actor, now))
        detail = {"record_id": rid, "matter": scope, "note_id": note_id,
                  "text_sha256": hashlib.sha256(text.encode()).hexdigest()}
        return [Event("matter-note", detail=detail)], None, Note(note_id, rid, scope, text, actor, now)
    return core.ledger.run(prepare, actor=actor)[1]


def check_tags(tags: list[str]) -> list[str]:
    clean = list(dict.fromkeys(t.strip() for t in tags))
    if not clean or len(clean) > MAX_TAGS:
        raise UsageError(f"name 1-{MAX_TAGS} tags")
    for t in clean:
        if not TAG.fullmatch(t):
            raise UsageError(f"tag {t[:50]!r} must be 1-40 letters, digits or . : / + - _, starting with a letter "
                             "or digit")
    return clean


def add_tags(core: Store, record_id: str, tags: list[str], *, matter: str | None = None, actor: str) -> TagChange:
    """Tag a record (one custody ``matter-tag`` entry naming the tags added; none when all were there)."""
    from store.custody import Event

    rid = core.resolve(record_id).record_id
    wanted = check_tags(tags)
    now = _now()

    def prepare(d: Any) -> tuple[list[Event], None, TagChange]:
        scope = _scope(d, matter, rid)
        have = {str(r[0]) for r in d.rows("SELECT tag FROM matter_tags WHERE matter=? AND record_id=?", (scope, rid))}
        new = [t for t in wanted if t not in have]
        d.many("INSERT INTO matter_tags (matter, record_id, tag, actor, created_at) VALUES (?,?,?,?,?)",
               [(scope, rid, t, actor, now) for t in new])
        change = TagChange(rid, scope, tuple(new), tuple(t for t in wanted if t in have),
                           tuple(sorted(have | set(new))))
        if not new:
            return [], None, change
        return [Event("matter-tag", detail={"record_id": rid, "matter": scope, "tags": ",".join(new)})], None, change
    return core.ledger.run(prepare, actor=actor)[1]


def view(core: Store, name: str, *, tag: str | None = None) -> MatterView:
    """A matter's page as data: every exhibit in order with its tags and notes in this matter (and those
    on no matter), narrowed to the exhibits with ``tag`` when asked."""
    with core.catalog.db() as d:
        m = _matter(d, check_name(name))
        tags: dict[str, list[str]] = {}
        for r in d.rows("SELECT record_id, tag FROM matter_tags WHERE matter IN (?, '') ORDER BY tag", (m.name,)):
            tags.setdefault(str(r[0]), []).append(str(r[1]))
        notes: dict[str, list[Note]] = {}
        for r in d.rows("SELECT note_id, record_id, matter, text, actor, created_at FROM matter_notes "
                        "WHERE matter IN (?, '') ORDER BY created_at, note_id",
                        (m.name,)):
            notes.setdefault(str(r[1]), []).append(_note(r))
    summaries = core.catalog.get_many(list(m.record_ids))
    items = []
    for pos, rid in enumerate(m.record_ids, 1):
        s = summaries.get(rid)
        rtags = tuple(dict.fromkeys(tags.get(rid, [])))
        if tag and tag not in rtags:
            continue
        items.append(MatterItem(pos, rid, (s.title or s.document or s.url) if s else rid, s.url if s else "",
                                s.entity if s else None, s.document if s else None, s.captured_at if s else "",
                                rtags, tuple(n for n in notes.get(rid, []))))
    used = sorted({t for rid in m.record_ids for t in tags.get(rid, [])})
    return MatterView(m.name, m.title, m.client, m.number, m.collection, m.created_at, m.held, m.holds,
                      tuple(items), tuple(used), tag or None)


def working(core: Store, record_id: str) -> RecordWorking:
    """What the record page shows of the working data: matters, active holds, notes, tags."""
    from store.holds import held

    rid = core.resolve(record_id).record_id
    with core.catalog.db() as d:
        matters = tuple(str(r[0]) for r in d.rows(
            "SELECT m.name FROM matters m JOIN collection_items ci ON ci.name = m.collection WHERE ci.record_id=? "
            "ORDER BY m.name", (rid,)))
        active = {h.matter for h in held(d, [rid]).get(rid, [])}
        holds = tuple(hold_info(r) for r in d.rows(
            "SELECT hold_id, matter, reason, placed_by, placed_at, released_by, released_at FROM legal_holds "
            "WHERE released_at IS NULL ORDER BY matter") if str(r[1]) in active)
        notes = tuple(_note(r) for r in d.rows(
            "SELECT note_id, record_id, matter, text, actor, created_at FROM matter_notes WHERE record_id=? "
            "ORDER BY created_at, note_id", (rid,)))
        tags = tuple((str(r[0]), str(r[1])) for r in d.rows(
            "SELECT matter, tag FROM matter_tags WHERE record_id=? ORDER BY matter, tag", (rid,)))
    return RecordWorking(rid, matters, holds, notes, tags)


__all__ = ["MatterItem", "MatterView", "Note", "RecordWorking", "TagChange", "add_note", "add_tags", "check_tags",
           "view", "working"]
