"""Watch documents over time: re-capture, change detection, versions, clause history, diffs.

Change detection compares the *document's own text* (``main-text``: by the watch's Open Terms Archive
rules, else found automatically, without navigation, cookie banners or footers) with the previous
record of the same URL; a record from before main-text gets its own derived first (a signed
addendum, ``archiver.derive``). Markup, scripts, nonces and CSRF tokens never reach the text.
Every capture is kept as evidence and chains to the previous record through its manifest's
``previous``; an unchanged one is a *verification event* (the version is still there: "last
verified" moves), a changed one starts a new version. Versions are derived from the records, so
they survive ``rebuild-index``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from archiver.derive import derive_for_url, main_text_sha256
from archiver.errors import ArchiverError, NotFoundError, UsageError
from archiver.options import CaptureOptions
from archiver.schema import Report
from archiver.textdiff import Section, SectionChange, diff_sections, html_headings, split_sections, word_ops

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
class RunResult:
    url: str
    outcome: str  # "changed" | "new" | "unchanged" | "failed"
    record_id: str | None = None
    previous_record_id: str | None = None
    status: int | None = None
    error: str | None = None
    sections: tuple[str, ...] = ()  # headings of changed sections, when changed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sections"] = list(self.sections)
        return d


@dataclass(frozen=True, slots=True)
class RunSummary:
    started: str
    results: tuple[RunResult, ...]
    skipped: str | None = None
    notified: str | None = None
    JSON_EXTRA: ClassVar[dict[str, Any]] = {"counts": {"type": "object", "additionalProperties": {"type": "integer"}}}

    @property
    def changed(self) -> list[RunResult]:
        return [r for r in self.results if r.outcome in ("changed", "new")]

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        return {"started": self.started, "counts": counts, "skipped": self.skipped, "notified": self.notified,
                "results": [r.to_dict() for r in self.results]}


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


# ---- watch list ----------------------------------------------------------------------------------
def add_watch(archive: Capturer, url: str, *, entity: str | None, document: str | None, every: str,
              actor: str, allow_private: bool = False, insecure: bool = False, select: tuple[str, ...] = (),
              remove: tuple[str, ...] = ()) -> Watch:
    """Start watching ``url``: the watch row and the ``watch-add`` custody entry in one unit of work."""
    from archiver.capture.fetch import validate_url

    validate_url(url)
    interval = parse_interval(every)
    if remove and not select:
        raise UsageError("--remove needs --select: remove rules apply inside the selected part")
    opts = json.dumps({"allow_private": allow_private, "insecure": insecure,
                       **({"select": list(select), "remove": list(remove)} if select else {})}, sort_keys=True)
    from store.catalog import Catalog
    from store.custody import Event

    def prepare(d: Any) -> tuple[list[Event], Callable[[Any], None], None]:
        if Catalog.has_watch(d, url):
            raise UsageError(f"{url} is already watched", hint="archiver watch remove URL first to change it")
        def index(d: Any) -> None:
            Catalog.insert_watch(d, url, entity, document, interval, opts, _iso(_now()))
        return [Event("watch-add", detail={"url": url, "every": every})], index, None
    archive.ledger.run(prepare, actor=actor)
    return get_watch(archive, url)


def remove_watch(archive: Capturer, url: str, *, actor: str) -> None:
    """Stop watching ``url`` (its records and run history stay): ``watch-remove`` in custody."""
    from store.catalog import Catalog
    from store.custody import Event

    def prepare(d: Any) -> tuple[list[Event], Callable[[Any], None], None]:
        if not Catalog.has_watch(d, url):
            raise NotFoundError(f"{url} is not watched", hint="`archiver watch list` shows the watches")
        def index(d: Any) -> None:
            Catalog.delete_watch(d, url)
        return [Event("watch-remove", detail={"url": url})], index, None
    archive.ledger.run(prepare, actor=actor)


def import_ota(archive: Capturer, declaration: Any, *, actor: str, every: str = "1d") -> list[Watch]:
    """Watches from an Open Terms Archive service declaration: ``{"name": …, "terms": {"Privacy Policy":
    {"fetch": URL, "select": rule(s), "remove": rule(s)}}}``. A range rule is kept as its JSON."""
    if not isinstance(declaration, dict) or not isinstance(declaration.get("terms"), dict):
        raise UsageError("not an Open Terms Archive declaration: no \"terms\" object")
    name = str(declaration.get("name") or "") or None

    def rules(value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else ([value] if value else [])
        return tuple(r if isinstance(r, str) else json.dumps(r, sort_keys=True) for r in items)

    out = []
    for doc, spec in declaration["terms"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("fetch"), str):
            raise UsageError(f"declaration of {doc!r} has no fetch URL")
        select = rules(spec.get("select"))
        if not select:
            raise UsageError(f"declaration of {doc!r} has no select rule", hint="PDF documents are not supported yet")
        out.append(add_watch(archive, spec["fetch"], entity=name, document=str(doc), every=every, actor=actor,
                             select=select,
                             remove=rules(spec.get("remove"))))
    return out


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
    raise NotFoundError(f"{url} is not watched")


_WATCH_LOCK = 7234


@contextmanager
def run_lock(archive: Capturer) -> Iterator[bool]:
    """One ``watch run`` per store at a time: a second one skips instead of capturing twice.

    On a PostgreSQL catalog the lock is a session advisory lock there, so it holds across machines."""
    from store.catalog import PostgresCatalog

    if isinstance(archive.catalog, PostgresCatalog):
        with archive.catalog.db() as d:
            row = d.one("SELECT pg_try_advisory_lock(?)", (_WATCH_LOCK,))
        if not (row and row[0]):
            yield False
            return
        try:
            yield True
        finally:
            with archive.catalog.db() as d:
                d.one("SELECT pg_advisory_unlock(?)", (_WATCH_LOCK,))
        return
    fd = os.open(archive.root / "watch.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _change_key(text_sha: str | None, content_sha: str, status: int) -> str:
    return f"{status}:{text_sha or content_sha}"


def run_watches(archive: Capturer, *, due_only: bool = False, jobs: int = 4, passphrase: PassphraseSource,
                on_result: Callable[[RunResult], None] | None = None, urls: list[str] | None = None,
                actor: str) -> RunSummary:
    """Re-capture watched URLs (all, or only those due) with bounded concurrency."""
    started = _now()
    with run_lock(archive) as held:
        if not held:
            return RunSummary(_iso(started), (), skipped="another `archiver watch run` holds the lock")
        watches = [w for w in list_watches(archive) if (not due_only or w.due(started))
                   and (urls is None or w.url in urls)]
        before: dict[str, tuple[str, str, str | None, str, int] | None] = {}
        for w in watches:
            rows = archive.catalog.records_for_url(w.url)
            before[w.url] = rows[-1] if rows else None
        results: list[RunResult] = []
        groups: dict[tuple[bool, bool, tuple[str, ...], tuple[str, ...]], list[Watch]] = {}
        for w in watches:
            groups.setdefault((w.allow_private, w.insecure, w.select, w.remove), []).append(w)
        from archiver.provenance.keys import ask_once

        once = ask_once(passphrase)  # however many records need a derived text

        for (allow_private, insecure, select, remove), group in sorted(groups.items()):
            items = [(w.url, w.entity, w.document) for w in group]

            def done(item: Any, select: tuple[str, ...] = select, remove: tuple[str, ...] = remove) -> None:
                prev = before.get(item.url)
                if item.ok and prev is not None and main_text_sha256(archive, prev[0]) is None \
                        and main_text_sha256(archive, item.record_id) is not None:
                    # records from before main-text (or before this declaration): derive theirs, so the
                    # comparison is document to document, never page to document
                    derive_for_url(archive, item.url, archive.keys.load_private(once), actor=actor, select=select,
                                   remove=remove)
                    prev = _row_of(archive, item.url, prev[0])
                res = _classify(archive, item, prev)
                archive.catalog.record_watch_run(item.url, _iso(_now()), res.outcome, res.record_id,
                                                 res.error or ",".join(res.sections))
                results.append(res)
                if on_result:
                    on_result(res)

            opts = CaptureOptions(allow_private=allow_private or None, insecure=insecure, allow_status=True,
                                  select=select, remove=remove, main_content=True)
            archive.capture_batch(items, opts, jobs=jobs, passphrase=once, on_result=done, actor=actor)
    order = {w.url: i for i, w in enumerate(watches)}
    return RunSummary(_iso(started), tuple(sorted(results, key=lambda r: order.get(r.url, 0))))


def _row_of(archive: Capturer, url: str, record_id: str) -> tuple[str, str, str | None, str, int] | None:
    return next((r for r in archive.catalog.records_for_url(url) if r[0] == record_id), None)


def _classify(archive: Capturer, item: Any, prev: tuple[str, str, str | None, str, int] | None) -> RunResult:
    if not item.ok:
        return RunResult(item.url, "failed", error=item.error)
    summary = archive.resolve(item.record_id)
    m = archive.manifest(summary.record_id)
    main = main_text_sha256(archive, summary.record_id)  # the document's own text decides, when there is one
    key = _change_key(main or m.digests.text_sha256, m.digests.content_sha256, m.http.status)
    if prev is None:
        return RunResult(item.url, "new", summary.record_id, None, m.http.status)
    if _change_key(prev[2], prev[3], prev[4]) == key:
        return RunResult(item.url, "unchanged", summary.record_id, prev[0], m.http.status)
    changed: tuple[str, ...] = ()
    try:
        changes = diff_records(archive, prev[0], summary.record_id)
        changed = tuple(c.heading_b or c.heading_a or c.key for c in changes if c.status != "unchanged")
    except ArchiverError:
        changed = ()
    return RunResult(item.url, "changed", summary.record_id, prev[0], m.http.status, sections=changed)


# ---- notifications --------------------------------------------------------------------------------
def notify(url: str, summary: RunSummary, *, timeout: float = 10.0, retries: int = 2) -> str:
    """POST the run summary as JSON; returns what happened. Never raises: a capture is never lost
    because a webhook is down."""
    import requests

    body = summary.to_dict()
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(0.5 * 2 ** (attempt - 1))
        try:
            resp = requests.post(url, json=body, timeout=timeout)
        except requests.RequestException as exc:
            last = f"failed: {type(exc).__name__}"
            continue
        if resp.status_code < 300:
            return f"sent (HTTP {resp.status_code})"
        last = f"failed: HTTP {resp.status_code}"
        if resp.status_code < 500:
            break
    return last


# ---- history, sections, clauses -----------------------------------------------------------------------
def versions(archive: Capturer, url: str) -> list[Version]:
    rows = archive.catalog.records_for_url(url)
    if not rows:
        raise NotFoundError(f"no records of {url}", hint="archiver list shows what the store holds")
    out: list[Version] = []
    current: list[tuple[str, str, str | None, str, int]] = []
    for row in rows:
        if current and _change_key(current[-1][2], current[-1][3], current[-1][4]) != _change_key(row[2], row[3],
                                                                                                   row[4]):
            out.append(_version(len(out) + 1, current))
            current = []
        current.append(row)
    out.append(_version(len(out) + 1, current))
    return out


def _version(n: int, rows: list[tuple[str, str, str | None, str, int]]) -> Version:
    return Version(n, tuple(r[0] for r in rows), rows[0][1], rows[-1][1], rows[0][2] or rows[0][3], rows[0][4])


def compared_texts(archive: Capturer, a: str, b: str) -> tuple[str, str]:
    """The two records' document text (main-text) when both have it, else both full-page texts:
    a diff never compares a page with a document."""
    name = "main-text" if all(main_text_sha256(archive, archive.resolve(r).record_id) for r in (a, b)) else "text"
    ta, tb = (archive.blobs.read_bytes(archive.artifact_sha256(r, name)).decode("utf-8") for r in (a, b))
    return ta, tb


def record_sections(archive: Capturer, record_id: str, *, main: bool = True) -> list[Section]:
    """Sections of the document's own text (``main-text``, headings marked ``#``) when the record has
    it, else of the whole page's text (headings from the HTML)."""
    summary = archive.resolve(record_id)
    m = archive.manifest(summary.record_id)
    main_sha = main_text_sha256(archive, summary.record_id) if main else None  # captured or derived later
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
    both = all(main_text_sha256(archive, archive.resolve(r).record_id) for r in (a, b))
    return record_sections(archive, a, main=both), record_sections(archive, b, main=both)


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


class Watches:
    """The watch list of one store (``archive.watches``): what is watched, runs, versions and history.
    Adding and removing are custody events naming ``actor``."""

    def __init__(self, core: Capturer) -> None:
        self.core = core

    def add(self, url: str, *, entity: str | None, document: str | None, every: str, actor: str,
            allow_private: bool = False, insecure: bool = False, select: tuple[str, ...] = (),
            remove: tuple[str, ...] = ()) -> Watch:
        return add_watch(self.core, url, entity=entity, document=document, every=every, actor=actor,
                         allow_private=allow_private, insecure=insecure, select=select, remove=remove)

    def remove(self, url: str, *, actor: str) -> None:
        remove_watch(self.core, url, actor=actor)

    def import_ota(self, declaration: Any, *, actor: str, every: str = "1d") -> list[Watch]:
        return import_ota(self.core, declaration, actor=actor, every=every)

    def all(self) -> list[Watch]:
        return list_watches(self.core)

    def run(self, *, passphrase: PassphraseSource, actor: str, due_only: bool = False, jobs: int = 4,
            on_result: Callable[[RunResult], None] | None = None, urls: list[str] | None = None) -> RunSummary:
        from archiver.tlog.checkpoints import checkpoint_at_end

        summary = run_watches(self.core, due_only=due_only, jobs=jobs, passphrase=passphrase, on_result=on_result,
                              urls=urls, actor=actor)
        checkpoint_at_end(self.core.log)  # the run's records under a signed tree head
        return summary

    def versions(self, url: str) -> list[Version]:
        return versions(self.core, url)

    def history(self, url: str) -> HistoryReport:
        return history(self.core, url)


__all__ = [
    "ClauseHistory",
    "RunResult",
    "RunSummary",
    "Version",
    "Watch",
    "Watches",
    "add_watch",
    "clause_history",
    "clauses",
    "compared_texts",
    "diff_records",
    "list_watches",
    "notify",
    "paired_sections",
    "parse_interval",
    "record_sections",
    "remove_watch",
    "run_watches",
    "versions",
]



# ---- reports -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FailedRun(Report):
    """A watch run that could not capture its URL."""

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
                   for r in archive.catalog.watch_runs(url) if r["outcome"] == "failed")
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
