"""The evidence page of one record, as data: everything a provenance page shows, computed here.

Pages and API clients render this report; nothing on the page is computed in a template. Every
value comes from the signed manifest, its signed addenda, the custody chain or the keyring, so each
one can be checked with the recipes in the README.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from archiver.cite import citation_data
from archiver.cite.quote import plain_markdown
from archiver.cite.styles import common_name, record_fields
from archiver.derive import main_text_sha256
from archiver.errors import ArchiverError
from archiver.monitor import paired_sections, record_sections, versions
from archiver.schema import Report
from archiver.textdiff import diff_sections

if TYPE_CHECKING:
    from archiver.ports import Capturer

#: The Citation Record as the seeds lay it out (record_fields labels), and the labels shown for them.
CITATION_RECORD = ("Entity", "Document", "Record ID", "Captured (UTC)", "SHA-256 (content)", "URL", "Accessed")
SEED_LABELS = {"SHA-256 (content)": "SHA-256"}
#: Versions whose changed sections are listed (each needs two texts split into sections).
MAX_DIFFED_VERSIONS = 20

WAYBACK_MEANING = {
    "identical": "The Internet Archive holds a snapshot whose payload digest equals ours: an independent "
                 "archive received the same bytes.",
    "differs": "The nearest snapshot's digest differs from ours. Dynamic pages (rotating tokens, ads, "
               "chunked framing) often differ byte for byte; this alone is not evidence of tampering. "
               "Compare the texts.",
    "no-snapshot": "The Wayback Machine has no snapshot near the capture time: no independent corroboration.",
}


@dataclass(frozen=True, slots=True)
class ArtifactView(Report):
    """A downloadable artifact: its name, hash and size."""

    name: str
    sha256: str
    size: int | None
    media_type: str


@dataclass(frozen=True, slots=True)
class TimestampView(Report):
    """A trusted time: which authority, its genTime, and whether it came in a Merkle batch."""

    tsa_name: str
    tsa_url: str
    gen_time: str
    batch_size: int | None
    deferred: bool


@dataclass(frozen=True, slots=True)
class WaybackView(Report):
    """The latest Wayback verdict and what it means for a reader."""

    verdict: str
    meaning: str
    checked_at: str
    snapshot_url: str | None
    snapshot_timestamp: str | None
    archive_digest: str | None
    our_digest: str | None


@dataclass(frozen=True, slots=True)
class CustodyView(Report):
    """One custody-log entry about this record."""

    seq: int
    time: str
    event: str
    actor: str
    hash: str


@dataclass(frozen=True, slots=True)
class Field(Report):
    """A labelled value of the Citation Record."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class SectionView(Report):
    """A section of the document's text, addressable as ``#<anchor>``."""

    anchor: str
    heading: str
    text: str  # as a reader sees it (main-text without its Markdown marks)
    sha256: str  # of the section as stored (main-text sections: their Markdown)


@dataclass(frozen=True, slots=True)
class VersionView(Report):
    """One version of a watched document (captures with the same text)."""

    number: int
    first_seen: str
    last_seen: str
    record_ids: tuple[str, ...]
    status: int
    changed_sections: tuple[str, ...] = ()  # headings that changed since the previous version


@dataclass(frozen=True, slots=True)
class Timeline(Report):
    """Version tracking for the record's URL: first and last seen, changes, months monitored."""

    first_seen: str
    last_seen: str
    changes: int
    months_monitored: float
    versions: tuple[VersionView, ...]


@dataclass(frozen=True, slots=True)
class LogView(Report):
    """Where the record's manifest is in the store's transparency log, and whether its inclusion under
    the latest signed checkpoint verified when the page was made (``log.inclusion``, the same check as
    ``archiver verify``). ``status``: PASS, FAIL or SKIPPED (not in the log, or after its last checkpoint)."""

    status: str
    summary: str  # the page's line: "in the log at index N, checkpoint of size S signed T, inclusion verified"
    detail: str
    index: int | None
    checkpoint_size: int | None
    signed_at: str | None
    origin: str | None
    verified: bool


def log_view(store: Capturer, record_id: str, manifest_sha256: str) -> LogView:
    """The record's log line, proven now (read only: a page view signs and syncs nothing)."""
    from archiver.verify.logproof import store_inclusion

    got = store_inclusion(store.log, record_id, manifest_sha256)
    if got.verified:
        summary = (f"in the log at index {got.index}, checkpoint of size {got.size} signed {got.signed_at}, "
                   "inclusion verified")
    elif got.status.value == "FAIL":
        summary = "inclusion in the log NOT verified"
    elif got.index is not None:
        summary = f"in the log at index {got.index}, not yet under a signed checkpoint"
    else:
        summary = "not in the transparency log yet"
    return LogView(got.status.value, summary, got.detail, got.index, got.size, got.signed_at, got.origin,
                   got.verified)


@dataclass(frozen=True, slots=True)
class ProvenanceReport(Report):
    """Everything the record page shows: Evidence Provenance, Citation Record, Document, Versions."""

    record_id: str
    entity: str | None
    document: str | None
    title: str | None
    url: str
    final_url: str
    redirects: tuple[str, ...]
    captured_at: str
    http_status: int
    server_ip: str | None
    content_type: str | None
    tls: str | None
    manifest_sha256: str
    content_sha256: str
    signer_key_id: str | None
    signer_trusted: bool
    operator: str | None
    artifacts: tuple[ArtifactView, ...]
    timestamps: tuple[TimestampView, ...]
    wayback: WaybackView | None
    custody: tuple[CustodyView, ...]
    citation_record: tuple[Field, ...]  # the seven fields of a Citation Record, in the order filings use
    citation: tuple[Field, ...]  # every field of the record block
    sections: tuple[SectionView, ...]
    timeline: Timeline | None
    has_screenshot: bool
    log: LogView | None = None  # the transparency log: where the manifest is, inclusion checked


_SECTIONS: dict[tuple[str, str, int], list[Any]] = {}
_SECTIONS_LOCK = threading.Lock()
_SECTIONS_MAX = 512


def _sections(store: Capturer, record_id: str, n_addenda: int) -> list[Any]:
    """A record's sections, remembered: its text never changes, and a derived artifact arrives as an
    addendum, which changes the key."""
    key = (str(store.root), record_id, n_addenda)
    with _SECTIONS_LOCK:
        hit = _SECTIONS.get(key)
    if hit is not None:
        return hit
    found = record_sections(store, record_id)
    with _SECTIONS_LOCK:
        if len(_SECTIONS) >= _SECTIONS_MAX:
            _SECTIONS.pop(next(iter(_SECTIONS)))
        _SECTIONS[key] = found
    return found


def anchor_for(key: str, taken: set[str]) -> str:
    """``clause-<slug>``, unique within the page, stable for the same heading."""
    slug = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:60] or "preamble"
    anchor, n = f"clause-{slug}", 2
    while anchor in taken:
        anchor, n = f"clause-{slug}-{n}", n + 1
    taken.add(anchor)
    return anchor


def _months(a: str, b: str) -> float:
    ta, tb = (dt.datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (a, b))
    return round(max(0.0, (tb - ta).total_seconds() / (30.44 * 86400)), 1)


def provenance(store: Capturer, record_id: str) -> ProvenanceReport:
    summary = store.resolve(record_id)
    m = store.manifest(summary.record_id)
    addenda = [a for _, a in store.addenda(summary.record_id) if a is not None]
    arts = [ArtifactView(a.name, a.sha256, a.size, a.media_type) for a in m.artifacts]
    arts.append(ArtifactView("manifest", summary.manifest_sha256, None, "application/json"))
    stamps: list[TimestampView] = []
    wayback: WaybackView | None = None
    for add in addenda:
        t = add.timestamp
        if t is not None:
            stamps.append(TimestampView(common_name(t.tsa_name), t.tsa_url, t.gen_time,
                                        t.merkle.tree_size if t.merkle else None, t.deferred))
            if len(stamps) == 1:
                arts.append(ArtifactView("timestamp", t.token_sha256, None, "application/timestamp-reply"))
        if add.derived is not None:  # made after the capture (archiver derive), signed in its addendum
            x = add.derived
            arts.append(ArtifactView(x.name, x.sha256, x.size, x.media_type))
        w = add.wayback
        if w is not None:
            wayback = WaybackView(w.verdict, WAYBACK_MEANING.get(w.verdict, w.note), w.checked_at, w.snapshot_url,
                                  w.snapshot_timestamp, w.archive_digest, w.our_digest)
    key_id = m.signature.key_id if m.signature else None
    custody = tuple(CustodyView(e.seq, e.time, e.event, e.actor, e.hash)
                    for e in store.custody.for_record(summary.record_id))
    citation = tuple(Field(k, v) for k, v in record_fields(citation_data(store, summary.record_id)))
    by_label = {f.label: f.value for f in citation}
    seven = tuple(Field(SEED_LABELS.get(label, label), by_label[label])
                  for label in CITATION_RECORD if label in by_label)
    taken: set[str] = set()
    # main-text sections read as text, not Markdown: a reader selects an excerpt there to pin it
    shown = plain_markdown if main_text_sha256(store, summary.record_id) else str
    try:
        sections = tuple(SectionView(anchor_for(s.key or s.heading, taken), s.heading, shown(s.text), s.sha256)
                         for s in _sections(store, summary.record_id, len(addenda)))
    except ArchiverError:
        sections = ()
    return ProvenanceReport(
        record_id=summary.record_id, entity=m.subject.entity, document=m.subject.document, title=m.subject.title,
        url=m.subject.url, final_url=m.subject.final_url, redirects=m.subject.redirects, captured_at=m.captured_at,
        http_status=m.http.status, server_ip=m.http.server_ip, content_type=m.http.content_type,
        tls=f"{m.http.tls.version} {m.http.tls.cipher}" if m.http.tls and m.http.tls.version else None,
        manifest_sha256=summary.manifest_sha256, content_sha256=m.digests.content_sha256,
        signer_key_id=key_id, signer_trusted=key_id is not None and key_id in store.keys.trusted(),
        operator=" / ".join(x for x in (m.operator.name, m.operator.organization) if x) or None,
        artifacts=tuple(arts), timestamps=tuple(stamps), wayback=wayback, custody=custody, citation_record=seven,
        citation=citation,
        sections=sections, timeline=timeline(store, summary.url), has_screenshot=m.artifact("screenshot") is not None,
        log=log_view(store, summary.record_id, summary.manifest_sha256))


def timeline(store: Capturer, url: str) -> Timeline | None:
    vs = versions(store, url)
    if not vs:
        return None
    changed: dict[int, tuple[str, ...]] = {}
    for prev, cur in list(itertools.pairwise(vs))[-MAX_DIFFED_VERSIONS:]:
        a, b = prev.record_ids[-1], cur.record_ids[0]
        try:
            changes = diff_sections(_sections(store, a, len(store.catalog.addenda(a))),
                                    _sections(store, b, len(store.catalog.addenda(b))))
        except ArchiverError:
            continue
        changed[cur.number] = tuple(c.heading_b or c.heading_a or c.key for c in changes if c.status != "unchanged")
    return Timeline(first_seen=vs[0].first_seen, last_seen=vs[-1].last_seen, changes=len(vs) - 1,
                    months_monitored=_months(vs[0].first_seen, vs[-1].last_seen),
                    versions=tuple(VersionView(v.number, v.first_seen, v.last_seen, v.record_ids, v.status,
                                               changed.get(v.number, ())) for v in vs))


@dataclass(frozen=True, slots=True)
class SectionDiffView(Report):
    """A changed section: before and after (or inline) as escaped HTML with <del>/<ins> marks."""

    anchor: str
    key: str
    status: str
    heading: str
    before_html: str
    after_html: str
    inline_html: str


@dataclass(frozen=True, slots=True)
class DiffView(Report):
    """Two versions compared section by section: changed ones first, unchanged ones by heading."""

    a: str
    b: str
    url: str
    changed: tuple[SectionDiffView, ...]
    unchanged: tuple[str, ...]


def diff_view(store: Capturer, a: str, b: str) -> DiffView:
    from archiver.textdiff import word_diff_html

    ra, rb = store.resolve(a), store.resolve(b)
    la, lb = paired_sections(store, ra.record_id, rb.record_id)
    sa, sb = {s.key: s for s in la}, {s.key: s for s in lb}
    taken: set[str] = set()
    changed: list[SectionDiffView] = []
    unchanged: list[str] = []
    for c in diff_sections(la, lb):
        heading = c.heading_b or c.heading_a or c.key
        if c.status == "unchanged":
            unchanged.append(heading)
            continue
        before = sa[c.key].text if c.key in sa else ""
        after = sb[c.key].text if c.key in sb else ""
        bh, ah, ih = word_diff_html(before, after)
        changed.append(SectionDiffView(anchor_for(c.key or heading, taken), c.key, c.status, heading, bh, ah, ih))
    return DiffView(a=ra.record_id, b=rb.record_id, url=rb.url, changed=tuple(changed), unchanged=tuple(unchanged))


# ---- the record views' cache ---------------------------------------------------------------------
#: What a record's views (provenance, record page, citation, record JSON) are made of, read in one
#: statement of indexed probes: the manifest, how many addenda the record has, its cached verification
#: row (so a new verdict is a new key: a view never shows a stale one), the versions of its URL (the
#: timeline: how many records, the newest, how many addenda among them), its latest publish/unpublish
#: (the citation links the permalink), its manifest leaf in the log and the latest checkpoint (the log line)
_VIEW_KEY_SQL = (
    "SELECT r.manifest_sha256, r.url, (SELECT COUNT(*) FROM addenda a WHERE a.record_id = r.record_id), "
    "v.time, v.ok, v.failed, "
    "(SELECT COUNT(*) FROM records u WHERE u.url = r.url), "
    "(SELECT MAX(u.captured_at) FROM records u WHERE u.url = r.url), "
    "(SELECT COUNT(*) FROM addenda b JOIN records u ON u.record_id = b.record_id WHERE u.url = r.url), "
    "(SELECT MAX(o.seq) FROM outbox o WHERE o.record_id = r.record_id AND o.event IN ('publish', 'unpublish')), "
    "(SELECT MIN(l.idx) FROM tlog_leaves l WHERE l.record_id = r.record_id AND l.kind = 'manifest'), "
    "(SELECT MAX(c.size) FROM tlog_checkpoints c) "
    "FROM records r LEFT JOIN verifications v ON v.record_id = r.record_id WHERE r.record_id = ?")
#: a record not in the log yet says how many commits wait to be appended: any commit changes that line
_PENDING_SQL = "SELECT MAX(seq) FROM outbox"
#: the settings a view shows (citations name the operator, the archive link and the public permalink)
_VIEW_SETTINGS = ("operator.name", "operator.organization", "cite.archive_base_url", "web.public_url")
VIEW_CACHE_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class ViewKey:
    """The key of a record's cached views: ``digest`` is the SHA-256 of everything they show that can
    change (a record itself never does). ``verification`` is the cached verification row in it."""

    record_id: str
    digest: str
    verification: tuple[str, bool, str] | None


class ViewCache:
    """Byte-bounded LRU of rendered views (JSON and HTML bytes, provenance reports), per process.

    Why a cache is safe here: records are immutable, and every fact a view shows that can change is
    in its key (:func:`view_key`), read fresh on every request; a key that cannot be read means no
    cache. ``hits``/``misses`` are counted for tests and the bench."""

    def __init__(self, max_bytes: int = VIEW_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> Any | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return hit[0]

    def put(self, key: tuple[Any, ...], value: Any, size: int) -> None:
        if size > self.max_bytes // 4:  # one huge page would evict everything else: not kept
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _, (_, gone) = self._items.popitem(last=False)
                self._bytes -= gone

    def remember(self, key: tuple[Any, ...], make: Callable[[], bytes]) -> bytes:
        """The bytes under ``key``, made once."""
        hit = self.get(key)
        if hit is not None:
            return cast(bytes, hit)
        made = make()
        self.put(key, made, len(made))
        return made

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def size(self) -> int:
        return self._bytes


VIEWS = ViewCache()


def view_key(store: Capturer, record_id: str) -> ViewKey | None:
    """The key of ``record_id``'s views, or None when it is not a stored record ID as given (the caller
    then computes without the cache, which resolves the ID or raises the not-found error)."""
    import os

    with store.catalog.reader() as d:
        row = d.one(_VIEW_KEY_SQL, (record_id,))
        pending = d.one(_PENDING_SQL) if row is not None and row[10] is None else None
    if row is None:
        return None
    custody = store.custody.for_record(record_id)  # downloads, exports, verifications are listed on the page
    try:  # the page says whether the signer is trusted here: trusting or dropping a key changes the folder
        keyring = os.stat(store.keys.keyring_dir).st_mtime_ns
    except OSError:
        keyring = 0
    settings = tuple(store.config.str_(k) for k in _VIEW_SETTINGS)
    verification = (str(row[3]), bool(row[4]), str(row[5] or "")) if row[3] is not None else None
    raw = repr((str(store.root), record_id, tuple(row), pending[0] if pending else None, len(custody),
                custody[-1].hash if custody else None, keyring, settings))
    return ViewKey(record_id, hashlib.sha256(raw.encode("utf-8")).hexdigest(), verification)


def cached_provenance(store: Capturer, record_id: str) -> tuple[ProvenanceReport, bytes, ViewKey | None]:
    """:func:`provenance` and its JSON bytes, made once per :func:`view_key`; with the key, so callers
    can cache what they render from the report under the same key (None: not cached)."""
    key = view_key(store, record_id)
    if key is None:
        report = provenance(store, record_id)
        return report, json_bytes(report), None
    hit = VIEWS.get(("provenance", key.digest))
    if hit is not None:
        return cast(ProvenanceReport, hit[0]), cast(bytes, hit[1]), key
    report = provenance(store, record_id)
    body = json_bytes(report)
    VIEWS.put(("provenance", key.digest), (report, body), 3 * len(body))  # the objects weigh ~3x their JSON
    return report, body, key


def json_bytes(value: Any) -> bytes:
    """What Starlette's JSONResponse sends for ``value`` (a record made plain), so cached and fresh
    answers are byte-identical."""
    import json

    from archiver.schema import plain

    return json.dumps(plain(value), ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


__all__ = ["VIEWS", "DiffView", "LogView", "ProvenanceReport", "ViewCache", "ViewKey", "anchor_for",
           "cached_provenance", "diff_view", "json_bytes", "provenance", "timeline", "view_key"]
