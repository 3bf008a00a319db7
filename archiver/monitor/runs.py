"""Watch runs: re-capture, classify each capture against the last version, log it, notify.

Outcomes: ``new`` (the URL's first version), ``changed`` (a new version), ``unchanged`` (a
verification event: the version is still there), ``failed`` (nothing captured), and
``selector-missed``: the capture is kept as evidence but a declared select rule matched nothing on
it, so what it extracted is not the document; it is never a version, it names the selector, and
every run reports it again until the declaration is fixed (``watch update``), after which the next
run compares with the last capture that was a version.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from archiver.derive import derive_for_url, main_text_sha256
from archiver.errors import ArchiverError
from archiver.monitor.declarations import MISSED, comparable_pair, missed_records, missed_selectors
from archiver.monitor.history import diff_records
from archiver.monitor.watches import Watch, _iso, _now, list_watches
from archiver.options import CaptureOptions
from archiver.provisions.model import ProvisionCheck

if TYPE_CHECKING:
    from archiver.ports import Capturer
    from archiver.provenance.keys import PassphraseSource

Row = tuple[str, str, str | None, str, int]


@dataclass(frozen=True, slots=True)
class RunResult:
    """One URL's outcome in a run. ``previous_record_id`` is the last capture that was a version (what
    this one was compared with); ``missed_selector`` the declared CSS selector that matched nothing."""

    url: str
    outcome: str  # "changed" | "new" | "unchanged" | "failed" | "selector-missed"
    record_id: str | None = None
    previous_record_id: str | None = None
    status: int | None = None
    error: str | None = None
    sections: tuple[str, ...] = ()  # headings of changed sections, when changed
    missed_selector: str | None = None

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
    #: what became of each provision of the run's URLs (``archiver.provisions.recheck``)
    provisions: tuple[ProvisionCheck, ...] = ()
    JSON_EXTRA: ClassVar[dict[str, Any]] = {"counts": {"type": "object", "additionalProperties": {"type": "integer"}}}

    @property
    def changed(self) -> list[RunResult]:
        return [r for r in self.results if r.outcome in ("changed", "new")]

    @property
    def missed(self) -> list[RunResult]:
        """Watches whose declaration matched nothing on this run's capture."""
        return [r for r in self.results if r.outcome == MISSED]

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        return {"started": self.started, "counts": counts, "skipped": self.skipped, "notified": self.notified,
                "results": [r.to_dict() for r in self.results],
                "provisions": [c.to_dict() for c in self.provisions]}


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


def last_version_row(archive: Capturer, url: str) -> Row | None:
    """The URL's latest capture that was a version (a capture whose selector missed is not)."""
    missed = missed_records(archive, url)
    rows = [r for r in archive.catalog.records_for_url(url) if r[0] not in missed]
    return rows[-1] if rows else None


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
        before = {w.url: last_version_row(archive, w.url) for w in watches}
        results: list[RunResult] = []
        groups: dict[tuple[bool, bool, tuple[str, ...], tuple[str, ...]], list[Watch]] = {}
        for w in watches:
            groups.setdefault((w.allow_private, w.insecure, w.select, w.remove), []).append(w)
        from archiver.provenance.keys import ask_once

        once = ask_once(passphrase)  # however many records need a derived text

        def key() -> Any:
            return archive.keys.load_private(once)

        for (allow_private, insecure, select, remove), group in sorted(groups.items()):
            items = [(w.url, w.entity, w.document) for w in group]

            def done(item: Any, select: tuple[str, ...] = select, remove: tuple[str, ...] = remove) -> None:
                prev = before.get(item.url)
                if item.ok and prev is not None and main_text_sha256(archive, prev[0]) is None \
                        and main_text_sha256(archive, item.record_id) is not None:
                    # records from before main-text (or before this declaration): derive theirs, so the
                    # comparison is document to document, never page to document
                    derive_for_url(archive, item.url, key(), actor=actor, select=select, remove=remove)
                    prev = _row_of(archive, item.url, prev[0])
                res = _classify(archive, item, prev, select, key, actor)
                archive.catalog.record_watch_run(item.url, _iso(_now()), res.outcome, res.record_id,
                                                 res.error or ",".join(res.sections))
                results.append(res)
                if on_result:
                    on_result(res)

            opts = CaptureOptions(allow_private=allow_private or None, insecure=insecure, allow_status=True,
                                  select=select, remove=remove, main_content=True)
            archive.capture_batch(items, opts, jobs=jobs, passphrase=once, on_result=done, actor=actor)
    order = {w.url: i for i, w in enumerate(watches)}
    summary = RunSummary(_iso(started), tuple(sorted(results, key=lambda r: order.get(r.url, 0))))
    return _after_run(archive, summary, actor)


def _after_run(archive: Capturer, summary: RunSummary, actor: str) -> RunSummary:
    """What a run's new records mean beyond the watch: each provision of those URLs re-found (its
    observations are catalog rows), the search index brought up to date. A failure here is logged,
    never raised: the run's records are committed and the next run does it again."""
    import logging

    from archiver.fulltext import forget, sync
    from archiver.provisions import recheck

    log = logging.getLogger(__name__)
    checks: list[ProvisionCheck] = []
    try:
        checks = recheck(archive, summary, actor=actor)
    except Exception as exc:
        log.warning("provisions after a watch run: %s", exc)
    try:
        sync(archive, seconds=30.0)  # bounded: the rest at the next sync
        forget(archive, [r.record_id for r in summary.missed if r.record_id])  # a sync may have run before the log
    except Exception as exc:
        log.warning("search index after a watch run: %s", exc)
    return dataclasses.replace(summary, provisions=tuple(checks))


def _row_of(archive: Capturer, url: str, record_id: str) -> Row | None:
    return next((r for r in archive.catalog.records_for_url(url) if r[0] == record_id), None)


def _classify(archive: Capturer, item: Any, prev: Row | None, select: tuple[str, ...], key: Callable[[], Any],
              actor: str) -> RunResult:
    if not item.ok:
        return RunResult(item.url, "failed", error=item.error)
    summary = archive.resolve(item.record_id)
    m = archive.manifest(summary.record_id)
    rid, status = summary.record_id, m.http.status
    if select and 200 <= status < 300:  # a 404 is a version of its own (a removed policy), not a miss
        missed = missed_selectors(archive, rid, select)
        if missed:
            rule, css = missed[0]
            what = (f"the declared selector {css!r} matches nothing" if rule == css
                    else f"the declared range {rule} has no {css!r}")
            return RunResult(item.url, MISSED, rid, prev[0] if prev else None, status, missed_selector=css,
                             error=f"{what}: the capture is kept as evidence, not as a version "
                                   "(fix the declaration with `archiver watch update`)")
    main = main_text_sha256(archive, rid)  # the document's own text decides, when there is one
    key_now = _change_key(main or m.digests.text_sha256, m.digests.content_sha256, status)
    if prev is None:
        return RunResult(item.url, "new", rid, None, status)
    prev_text = prev[2]
    if main is not None and main_text_sha256(archive, prev[0]) is not None:
        pair = comparable_pair(archive, prev[0], rid, key=key, actor=actor)  # under this capture's rules
        prev_text = pair[0] if pair else prev_text
    if _change_key(prev_text, prev[3], prev[4]) == key_now:
        return RunResult(item.url, "unchanged", rid, prev[0], status)
    changed: tuple[str, ...] = ()
    try:
        changes = diff_records(archive, prev[0], rid)
        changed = tuple(c.heading_b or c.heading_a or c.key for c in changes if c.status != "unchanged")
    except ArchiverError:
        changed = ()
    return RunResult(item.url, "changed", rid, prev[0], status, sections=changed)


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


__all__ = ["RunResult", "RunSummary", "last_version_row", "notify", "run_lock", "run_watches"]
