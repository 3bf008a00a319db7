"""Versions, sections, diffs and clause history of a watched document, derived from its records.

Change detection compares the *document's own text* (``main-text``: by the watch's Open Terms Archive
rules, else found automatically, without navigation, cookie banners or footers) with the previous
record of the same URL; a record from before main-text gets its own derived first (a signed
addendum, ``archiver.derive``). Two records are compared under the newer one's rules (the older one's
text made again under them when the declaration changed: ``archiver.monitor.declarations``), and a
capture whose declared selector matched nothing is evidence but never a version. Versions are
derived from the records, so they survive ``rebuild-index``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from archiver.derive import main_text_sha256
from archiver.errors import NotFoundError
from archiver.monitor.declarations import MISSED, comparable_pair, missed_records
from archiver.monitor.watches import _parse
from archiver.schema import Report
from archiver.textdiff import Section, SectionChange, diff_sections, html_headings, split_sections, word_ops

if TYPE_CHECKING:
    from archiver.ports import Store as Capturer

Row = tuple[str, str, str | None, str, int]


@dataclass(frozen=True, slots=True)
class Version:
    number: int
    record_ids: tuple[str, ...]
    first_seen: str
    last_seen: str
    text_sha256: str
    status: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["record_ids"] = list(self.record_ids)
        return d


@dataclass(frozen=True, slots=True)
class ClauseHistory:
    key: str
    heading: str
    sha256: str
    first_seen: str
    last_seen: str
    changes: int
    versions_seen: int
    months_monitored: float
    history: tuple[tuple[str, str, str], ...] = field(default=())  # (record_id, captured_at, sha256)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["history"] = [list(h) for h in self.history]
        return d


# ---- history, sections, clauses -----------------------------------------------------------------------
def versions(archive: Capturer, url: str) -> list[Version]:
    """The URL's versions: consecutive captures whose document text (read under the newer one's
    rules) and status are the same make one version; captures whose selector missed are left out."""
    rows = archive.catalog.records_for_url(url)
    if not rows:
        raise NotFoundError(f"no records of {url}", hint="archiver list shows what the store holds")
    missed = missed_records(archive, url)
    rows = [r for r in rows if r[0] not in missed]
    if not rows:
        raise NotFoundError(f"no version of {url}: every capture's declared selector matched nothing",
                            hint="fix the declaration with `archiver watch update URL --select …`")
    out: list[Version] = []
    current: list[Row] = []
    for row in rows:
        if current and _differs(archive, current[-1], row):
            out.append(_version(len(out) + 1, current))
            current = []
        current.append(row)
    out.append(_version(len(out) + 1, current))
    return out


def _key(text_sha: str | None, content_sha: str, status: int) -> str:
    return f"{status}:{text_sha or content_sha}"


def _differs(archive: Capturer, a: Row, b: Row) -> bool:
    """Whether ``b`` starts a new version after ``a``: only a pair whose own texts differ is read
    again under ``b``'s rules (a text made again when the declaration changed)."""
    if _key(a[2], a[3], a[4]) == _key(b[2], b[3], b[4]):
        return False
    if a[4] != b[4]:
        return True
    pair = comparable_pair(archive, a[0], b[0])
    return pair is None or pair[0] != pair[1]


def _version(n: int, rows: list[Row]) -> Version:
    return Version(n, tuple(r[0] for r in rows), rows[0][1], rows[-1][1], rows[0][2] or rows[0][3], rows[0][4])


def compared_texts(archive: Capturer, a: str, b: str) -> tuple[str, str]:
    """The two records' document text (main-text, ``a``'s read under ``b``'s rules) when both have it,
    else both full-page texts: a diff never compares a page with a document."""
    ra, rb = archive.resolve(a).record_id, archive.resolve(b).record_id
    pair = comparable_pair(archive, ra, rb)
    if pair is not None:
        return archive.blobs.read_bytes(pair[0]).decode("utf-8"), archive.blobs.read_bytes(pair[1]).decode("utf-8")
    ta, tb = (archive.blobs.read_bytes(archive.artifact_sha256(r, "text")).decode("utf-8") for r in (ra, rb))
    return ta, tb


def record_sections(archive: Capturer, record_id: str, *, main: bool = True,
                    main_sha: str | None = None) -> list[Section]:
    """Sections of the document's own text (``main-text``, headings marked ``#``; ``main_sha``: that
    text under other rules) when the record has it, else of the whole page's text (headings from the
    HTML)."""
    summary = archive.resolve(record_id)
    m = archive.manifest(summary.record_id)
    if main_sha is None and main:
        main_sha = main_text_sha256(archive, summary.record_id)  # captured or derived later
    if main_sha is not None:
        md = archive.blobs.read_bytes(main_sha).decode("utf-8")
        marked = {line.strip() for line in md.split("\n") if line.startswith("# ")}
        return [dataclasses.replace(s, heading=s.heading[2:] if s.heading.startswith("# ") else s.heading)
                for s in split_sections(md, marked)]
    text_art = m.artifact("text")
    if text_art is None:
        raise NotFoundError(f"record {summary.record_id} has no extracted text")
    text = archive.blobs.read_bytes(text_art.sha256).decode("utf-8")
    headings = None
    content = m.artifact("content")
    if content is not None and "html" in content.media_type:
        found = html_headings(archive.blobs.read_bytes(content.sha256))
        headings = found or None
    return split_sections(text, headings)


def paired_sections(archive: Capturer, a: str, b: str) -> tuple[list[Section], list[Section]]:
    """Both records' sections from the same kind of text (see ``compared_texts``)."""
    ra, rb = archive.resolve(a).record_id, archive.resolve(b).record_id
    pair = comparable_pair(archive, ra, rb)
    if pair is None:
        return record_sections(archive, ra, main=False), record_sections(archive, rb, main=False)
    return record_sections(archive, ra, main_sha=pair[0]), record_sections(archive, rb, main_sha=pair[1])


def diff_records(archive: Capturer, a: str, b: str) -> list[SectionChange]:
    return diff_sections(*paired_sections(archive, a, b))


def clauses(archive: Capturer, record_id: str) -> list[ClauseHistory]:
    """Each section of a record with its hash and how stable it has been across the URL's records."""
    summary = archive.resolve(record_id)
    rows = [r for r in archive.catalog.records_for_url(summary.url) if r[1] <= summary.captured_at]
    first_url, last_url = rows[0][1], rows[-1][1]
    months = max(0.0, (_parse(last_url) - _parse(first_url)).total_seconds() / (30.44 * 86400))
    timeline: dict[str, list[tuple[str, str, str]]] = {}
    headings: dict[str, str] = {}
    seen_text: dict[str, list[Section]] = {}
    for rid, captured, text_sha, content_sha, _status in rows:
        key = text_sha or content_sha
        if key not in seen_text:
            try:
                seen_text[key] = record_sections(archive, rid)
            except NotFoundError:
                seen_text[key] = []
        for s in seen_text[key]:
            timeline.setdefault(s.key, []).append((rid, captured, s.sha256))
            headings[s.key] = s.heading
    out = []
    for s in record_sections(archive, summary.record_id):
        hist = timeline.get(s.key, [])
        changes = sum(1 for i in range(1, len(hist)) if hist[i][2] != hist[i - 1][2])
        # a clause that vanished and came back counts as changed too
        present = {h[0] for h in hist}
        gaps = sum(1 for i in range(1, len(rows)) if (rows[i][0] in present) != (rows[i - 1][0] in present))
        out.append(ClauseHistory(key=s.key, heading=s.heading or "(preamble)", sha256=s.sha256,
                                 first_seen=hist[0][1] if hist else summary.captured_at,
                                 last_seen=hist[-1][1] if hist else summary.captured_at,
                                 changes=changes + gaps, versions_seen=len({h[2] for h in hist}),
                                 months_monitored=round(months, 1), history=tuple(hist)))
    return out


def clause_history(archive: Capturer, url: str, clause: str) -> ClauseHistory:
    from archiver.textdiff import heading_key

    rows = archive.catalog.records_for_url(url)
    if not rows:
        raise NotFoundError(f"no records of {url}")
    key = heading_key(clause)
    for c in clauses(archive, rows[-1][0]):
        if c.key == key or c.heading.lower() == clause.strip().lower():
            return c
    raise NotFoundError(f"no clause {clause!r} in the latest record of {url}",
                        hint=f"archiver clauses {rows[-1][0]} lists them")



# ---- reports -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FailedRun(Report):
    """A watch run that could not capture its URL (``failed``), or whose capture the declaration no
    longer matched (``selector-missed``: kept as evidence, not a version; ``detail`` names the selector)."""

    run_id: int
    time: str
    url: str
    outcome: str
    record_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class HistoryReport(Report):
    """The versions of one watched document, and the runs that failed."""

    url: str
    versions: tuple[Version, ...]
    changes: int
    failed_runs: tuple[FailedRun, ...] = ()


def history(archive: Capturer, url: str) -> HistoryReport:
    vs = versions(archive, url)
    failed = tuple(FailedRun(run_id=int(r["run_id"]), time=r["time"], url=r["url"], outcome=r["outcome"],
                             record_id=r["record_id"], detail=r["detail"])
                   for r in archive.catalog.watch_runs(url) if r["outcome"] in ("failed", MISSED))
    return HistoryReport(url=url, versions=tuple(vs), changes=max(0, len(vs) - 1), failed_runs=failed)


@dataclass(frozen=True, slots=True)
class DiffReport(Report):
    """Two records compared: identical or not, section by section, word by word."""

    a: str
    b: str
    identical: bool
    sections: tuple[SectionChange, ...]
    words: tuple[WordOp, ...]


@dataclass(frozen=True, slots=True)
class WordOp(Report):
    """One word-level edit: what was removed and added, at which word of each text."""

    op: str
    removed: str
    added: str
    at_word_a: int
    at_word_b: int


def diff_report(archive: Capturer, a: str, b: str, text_a: str, text_b: str) -> DiffReport:
    return DiffReport(a=a, b=b, identical=text_a == text_b, sections=tuple(diff_records(archive, a, b)),
                      words=tuple(WordOp(**op) for op in word_ops(text_a, text_b)))
