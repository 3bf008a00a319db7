"""Search across documents: which tracked services word a clause how, ranked, with the section.

The index (``store/fulltext.py``) holds every record's sections — of its ``main-text`` when it has
one (the document's own text: navigation and footers would otherwise answer every query), else of its
whole text — and is kept by :func:`sync`, which reads the write path's outbox after its position the
way the transparency log does: a capture or an import indexes its record, a ``derived`` addendum (the
main-text made again with new rules) replaces the record's sections. So the index is a pure function
of the outbox and can be dropped and rebuilt.

Why not at every commit: indexing reads the main-text and writes a transaction of its own, which a
batch would pay per page. Sync runs where a fresh index is wanted and a write is allowed: before a
CLI ``search``, at the end of a batch or a watch run, and on ``archiver serve``'s job pool every few
seconds (a web search is a GET: it only reads).

A hit is one section; the same unchanged section in several versions of one URL is shown once, as
its newest record, with how many versions hold it (``versions``): a search answers "who says this",
and three copies of one clause would push the other services off the page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import NotFoundError, UsageError
from archiver.schema import Report
from store import fulltext as ft

if TYPE_CHECKING:
    from archiver.ports import Store

#: outbox events whose record gets (re)indexed
INDEXED_EVENTS = frozenset({"capture", "import", "import-forced", "derived"})
#: outbox rows read per transaction of a sync, and the most rows one sync reads (bounded work)
SYNC_BATCH = 200
SYNC_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class SearchHit(Report):
    """One section that answers the query: where it is and the words around the match."""

    record_id: str
    url: str
    entity: str | None
    document: str | None
    captured_at: str
    section: str  # the section's heading ("" for text before the first heading)
    section_index: int
    snippet: str  # plain text around the match
    highlights: tuple[tuple[int, int], ...]  # [start, end) character ranges of ``snippet`` that matched
    score: float  # higher is better; comparable within one search only
    versions: int  # how many of this URL's records hold this exact section text

    def parts(self) -> list[tuple[str, bool]]:
        """The snippet as (text, matched) runs, for a page to mark up."""
        out: list[tuple[str, bool]] = []
        at = 0
        for start, end in self.highlights:
            if start > at:
                out.append((self.snippet[at:start], False))
            out.append((self.snippet[start:end], True))
            at = end
        if at < len(self.snippet):
            out.append((self.snippet[at:], False))
        return out


@dataclass(frozen=True, slots=True)
class SearchReport(Report):
    """What ``archiver search`` and ``GET /api/v1/search`` answer."""

    query: str
    entity: str | None
    latest: bool
    hits: tuple[SearchHit, ...]
    indexed_sections: int
    indexed_records: int
    pending_events: int  # outbox events the index has not read yet (0 right after a sync)
    took_ms: float


@dataclass(frozen=True, slots=True)
class SyncResult(Report):
    position: int
    records: int  # records (re)indexed by this sync
    sections: int


def _split_marks(snippet: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The snippet as plain one-line text (runs of white space made one space) and its marked ranges."""
    plain: list[str] = []
    marks: list[tuple[int, int]] = []
    start = -1
    for ch in snippet.strip():
        if ch == ft.HIT_START:
            start = len(plain)
        elif ch == ft.HIT_END:
            if start >= 0 and len(plain) > start:
                marks.append((start, len(plain)))
            start = -1
        elif ch.isspace():
            if plain and plain[-1] != " ":
                plain.append(" ")
        else:
            plain.append(ch)
    return "".join(plain), tuple(marks)


def _body(text: str, heading: str) -> str:
    """A section's text without its heading line (the heading is a column of its own, weighted more)."""
    first, _, rest = text.partition("\n")
    return rest.strip() if heading and first.lstrip("#").strip() == heading.strip() else text.strip()


def _sections_of(core: Store, record_id: str) -> list[ft.SectionRow]:
    from archiver.monitor import record_sections
    from archiver.monitor.declarations import missed_records

    summary = core.resolve(record_id)
    if summary.record_id in missed_records(core, summary.url):
        # its watch's declared selector matched nothing: it has no main-text, and its whole page (menus,
        # footers) is not the document; it is evidence, never a version, so never an answer either
        return []
    try:
        sections = record_sections(core, summary.record_id)
    except NotFoundError:  # a record with no text (an image, a failed decode): nothing to search
        return []
    return [ft.SectionRow(summary.record_id, s.index, summary.url, summary.entity, summary.document,
                          summary.captured_at, s.heading, _body(s.text, s.heading),
                          hashlib.sha256(s.text.encode()).hexdigest())
            for s in sections if s.text.strip()]


def sync(core: Store, *, seconds: float | None = None) -> SyncResult:
    """Read the outbox after the index's position and index what it names, a batch per transaction.

    Sections are read outside the transaction; the position is checked again inside it, so two
    processes syncing at once never index a batch twice (the second finds the position moved and
    reads on from there). ``seconds`` bounds the work (at least one batch is done): a store upgraded
    with a million records to index must not make a CLI search or a watch run wait for all of them —
    what is left is said (``SearchReport.pending_events``) and done by the next sync."""
    postgres = core.catalog.backend == "postgresql"
    records = sections = read = 0
    started = time.monotonic()
    with core.catalog.db() as d:
        pos = ft.position(d)
    while read < SYNC_MAX and (seconds is None or read == 0 or time.monotonic() - started < seconds):
        rows = core.ledger.outbox(after=pos, limit=SYNC_BATCH)
        if not rows:
            break
        read += len(rows)
        wanted = list(dict.fromkeys(r["record_id"] for r in rows if r["event"] in INDEXED_EVENTS and r["record_id"]))
        made: dict[str, list[ft.SectionRow]] = {}
        for rid in wanted:
            try:
                made[rid] = _sections_of(core, rid)
            except NotFoundError:  # an outbox row for a record the catalog lost: nothing to show
                made[rid] = []
        end = int(rows[-1]["seq"])
        with core.catalog.db() as d, d.tx():
            ft.lock(d, postgres)
            now = ft.position(d)
            if now != pos:  # another process indexed this batch meanwhile
                pos = now
                continue
            n_sections = n_records = 0
            for rid, got in made.items():
                ds, dr = ft.replace_record(d, rid, got, postgres)
                n_sections += ds
                n_records += dr
            ft.set_position(d, end, n_sections, n_records)
        records += len(made)
        sections += sum(len(v) for v in made.values())
        pos = end
    return SyncResult(pos, records, sections)


def forget(core: Store, record_ids: list[str]) -> int:
    """Drop these records' sections (a watch run's selector-missed captures, which a sync running
    between their commit and the run's log of them may have indexed: no later outbox event would);
    returns how many sections went."""
    if not record_ids:
        return 0
    postgres = core.catalog.backend == "postgresql"
    gone = 0
    with core.catalog.db() as d, d.tx():
        ft.lock(d, postgres)
        for rid in record_ids:
            ds, dr = ft.replace_record(d, rid, [], postgres)
            if ds or dr:
                ft.set_position(d, ft.position(d), ds, dr)
            gone -= ds
    return gone


def pending(core: Store, position: int) -> int:
    """Outbox rows after ``position`` (an index probe on the outbox's primary key)."""
    with core.catalog.reader() as d:
        row = d.one("SELECT COUNT(*) FROM outbox WHERE seq > ?", (position,))
    return int(row[0]) if row else 0


def check_query(text: str) -> list[list[str]]:
    """The query's terms, or a UsageError saying what is wrong with it."""
    if len(text) > ft.MAX_QUERY:
        raise UsageError(f"the query is {len(text)} characters; at most {ft.MAX_QUERY}")
    parsed = ft.terms(text)
    if not parsed:
        raise UsageError("the query has no words to search for")
    if len(parsed) > ft.MAX_TERMS:
        raise UsageError(f"the query has {len(parsed)} terms; at most {ft.MAX_TERMS}")
    return parsed


def search(core: Store, text: str, *, entity: str | None = None, latest: bool = False,
           limit: int = 10) -> SearchReport:
    """Ranked sections holding every word (a "quoted phrase" as a phrase). A pure read."""
    if not 1 <= limit <= 200:
        raise UsageError(f"limit must be 1-200, not {limit}")
    parsed = check_query(text)
    started = time.perf_counter()
    raw = ft.query(core.catalog, parsed, entity=entity or None, latest=latest, limit=min(4 * limit, 400))
    chosen: list[ft.Hit] = []
    place: dict[tuple[str, str], int] = {}
    versions: dict[tuple[str, str], int] = {}
    for h in raw:  # one URL's identical section once, as its newest record; best-ranked first
        key = (h.url, h.body_sha256)
        versions[key] = versions.get(key, 0) + 1
        if key in place:
            kept = chosen[place[key]]
            if h.captured_at > kept.captured_at:
                chosen[place[key]] = dataclasses.replace(h, score=kept.score)
        elif len(chosen) < limit:
            place[key] = len(chosen)
            chosen.append(h)
    texts = ft.snippets(core.catalog, parsed, [h.id for h in chosen])
    hits = [_hit(h, texts.get(h.id, ""), versions[(h.url, h.body_sha256)]) for h in chosen]
    took = (time.perf_counter() - started) * 1000
    n_sections, n_records, position = ft.counts(core.catalog)
    return SearchReport(text, entity or None, latest, tuple(hits), n_sections, n_records, pending(core, position),
                        round(took, 2))


def _hit(h: ft.Hit, snippet_marked: str, versions: int) -> SearchHit:
    snippet, marks = _split_marks(snippet_marked)
    return SearchHit(h.record_id, h.url, h.entity, h.document, h.captured_at, h.heading, h.section, snippet, marks,
                     round(h.score, 4), versions)


class FullText:
    """``archive.fulltext``: the search front-ends use (``cli/search.py``, the web's search page)."""

    def __init__(self, core: Store) -> None:
        self._core = core

    def sync(self, *, seconds: float | None = None) -> SyncResult:
        return sync(self._core, seconds=seconds)

    def search(self, text: str, **kw: Any) -> SearchReport:
        return search(self._core, text, **kw)

    def entities(self) -> list[str]:
        return ft.entities(self._core.catalog)


__all__ = ["FullText", "SearchHit", "SearchReport", "SyncResult", "check_query", "forget", "pending", "search",
           "sync"]
