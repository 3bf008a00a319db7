"""Publishing: which records anyone may open at their permalink ``<web.public_url>/r/<ID>``.

A record is private by default. Making it public, or private again, is a later fact about the record,
so it is a signed addendum (kind ``publish`` / ``unpublish``) committed through the one write path
with its custody entry naming the actor: the custody log, a bundle and the transparency log all see
when a record became citable by anyone, and an unpublished record keeps the trace of having been
public (a court may have been given its link). A record under a legal hold (``store/holds.py``)
cannot be unpublished: the refusal names the hold. The state is the kind of the record's latest
publication addendum, read from the catalog's ``addenda`` index in one query, so the public side
answers without reading any blob.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import UsageError
from archiver.records import Addendum, Publication
from archiver.schema import Report

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.evidence import ProvenanceReport
    from archiver.ports import Store
    from archiver.provenance.keys import PassphraseSource
    from archiver.records import RecordSummary

KINDS = ("publish", "unpublish")
BATCH = 1000  # records per unit of work
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class PublicationReport(Report):
    """What ``publish`` / ``unpublish`` did to one record: ``changed`` false when it already was so."""

    record_id: str
    public: bool
    changed: bool
    permalink: str | None
    at: str | None = None
    reason: str | None = None
    addendum_sha256: str | None = None
    #: the signed manifest names the record captured before it (its chain); when that one is private,
    #: its ID becomes readable in the public bundle (a signature cannot be redacted): said, not hidden
    names_private_predecessor: str | None = None


def check_public_url(value: str) -> str:
    """``web.public_url`` as the permalink's base (checked again here: the file may be edited by hand)."""
    from archiver.config import http_base

    try:
        return http_base(value)
    except ValueError as exc:
        raise UsageError(f"web.public_url: {exc}",
                         hint="e.g. `archiver config set web.public_url https://evidence.example.org`") from exc


def permalink(core: Store, record_id: str) -> str | None:
    """The record's permalink (whether or not it is public), or None when ``web.public_url`` is unset."""
    base = core.config.str_("web.public_url")
    return f"{check_public_url(base)}/r/{record_id}" if base else None


#: the publish/unpublish facts committed in this store for a record, newest first: an outbox row is
#: written only by this store's own write path, never by an import, so a bundle's publication addenda
#: (the sender's decisions) never make a record public here
_LATEST = ("SELECT o.event, a.created_at FROM outbox o JOIN addenda a ON a.sha256 = o.subject_sha256 "
           "WHERE o.record_id=? AND o.event IN ('publish','unpublish') ORDER BY a.created_at DESC, o.seq DESC LIMIT 1")


def _latest(d: Any, record_id: str) -> tuple[str, str] | None:
    row = d.one(_LATEST, (record_id,))
    return (str(row[0]), str(row[1])) if row else None


def is_public(core: Store, record_id: str) -> bool:
    """One indexed query; False for an unknown ID too (the public side cannot tell them apart)."""
    with core.catalog.reader() as d:
        return is_public_in(d, record_id)


def is_public_in(d: Any, record_id: str) -> bool:
    """``is_public`` on a connection the caller holds (the public pages ask it with their other lookups)."""
    latest = _latest(d, record_id)
    return latest is not None and latest[0] == "publish"


def public_ids(core: Store, record_ids: list[str] | None = None) -> set[str]:
    """Which of ``record_ids`` (all records when None) are public now."""
    sql = ("SELECT o.record_id, o.event, a.created_at, o.seq FROM outbox o JOIN addenda a ON a.sha256 = "
           "o.subject_sha256 WHERE o.event IN ('publish','unpublish')")
    with core.catalog.db() as d:
        rows = d.rows(sql)
    latest: dict[str, tuple[str, int, str]] = {}
    for rid, event, created, seq in rows:
        key = (str(created), int(seq), str(event))
        if str(rid) not in latest or key[:2] > latest[str(rid)][:2]:
            latest[str(rid)] = key
    found = {rid for rid, (_, _, event) in latest.items() if event == "publish"}
    return found if record_ids is None else found & set(record_ids)


def _after(previous: str | None) -> str:
    """Now, and strictly after the record's previous publication fact (the order decides the state)."""
    now = dt.datetime.now(dt.UTC)
    if previous:
        try:
            prev = dt.datetime.fromisoformat(previous.replace("Z", "+00:00"))
            now = max(now, prev + dt.timedelta(milliseconds=1))
        except ValueError:
            pass
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def set_public(core: Store, summaries: list[RecordSummary], public: bool, *, key: Ed25519PrivateKey,
               actor: str, reason: str = "") -> list[PublicationReport]:
    """Publish or unpublish records, up to ``BATCH`` per unit of work: each record's state is read, its
    addendum signed and stored, and the catalog rows and custody entries committed under the write
    lock, so two people acting at once make one change, not two (and 10,000 records are 10 commits,
    not 10,000)."""
    from archiver.core import addendum_event
    from archiver.provenance.signing import addendum_file_bytes, sign_addendum
    from store.catalog import Catalog
    from store.holds import refuse_records

    reason = reason.strip()
    if not public and not reason:
        raise UsageError("unpublishing needs a reason (--reason TEXT): it is signed into the record's history")
    if len(reason) > MAX_REASON or any(ord(c) < 32 and c not in "\t" for c in reason):
        raise UsageError(f"the reason must be one line of at most {MAX_REASON} characters")
    kind = "publish" if public else "unpublish"
    made: dict[str, tuple[Addendum, str]] = {}
    for i in range(0, len(summaries), BATCH):
        part = summaries[i:i + BATCH]

        def prepare(d: Any, part: list[RecordSummary] = part) -> tuple[list[Any], Any, None]:
            todo: list[Addendum] = []
            changing: list[tuple[RecordSummary, tuple[str, str] | None]] = []
            for summary in part:
                latest = _latest(d, summary.record_id)
                if (latest is not None and latest[0] == kind) or (latest is None and not public):
                    continue  # already so: nothing to sign or log
                changing.append((summary, latest))
            if not public:  # a legal hold keeps its records available: checked under the write lock
                refuse_records(d, [s.record_id for s, _ in changing], "unpublishing")
            for summary, latest in changing:
                todo.append(sign_addendum(Addendum(
                    kind=kind, record_id=summary.record_id, manifest_sha256=summary.manifest_sha256,
                    created_at=_after(latest[1] if latest else None),
                    publication=Publication(public=public, actor=actor, reason=reason)), key))
            shas = core.blobs.put_many([addendum_file_bytes(a) for a in todo])
            pairs = list(zip(todo, shas, strict=True))

            def index(d: Any) -> None:
                for add, sha in pairs:
                    Catalog.insert_addendum(d, sha, add)
                    made[add.record_id] = (add, sha)
            return [addendum_event(add, sha) for add, sha in pairs], index, None
        core.ledger.run(prepare, actor=actor)
    out: list[PublicationReport] = []
    previous: dict[str, str] = {}
    if public:
        with core.catalog.reader() as d:
            for summary in summaries:
                row = d.one("SELECT previous_record_id FROM records WHERE record_id=?", (summary.record_id,))
                if row and row[0]:
                    previous[summary.record_id] = str(row[0])
        shown = public_ids(core, list(previous.values())) if previous else set()
        previous = {k: v for k, v in previous.items() if v not in shown}
    for summary in summaries:
        rid, link = summary.record_id, permalink(core, summary.record_id)
        if rid not in made:
            out.append(PublicationReport(rid, public, False, link, names_private_predecessor=previous.get(rid)))
        else:
            add, sha = made[rid]
            out.append(PublicationReport(rid, public, True, link, at=add.created_at, reason=reason or None,
                                         addendum_sha256=sha, names_private_predecessor=previous.get(rid)))
    return out


class Publications:
    """The publication state of one store's records (``archive.publications``)."""

    def __init__(self, core: Store) -> None:
        self.core = core

    def publish(self, record_ids: list[str], *, actor: str, passphrase: PassphraseSource) -> list[PublicationReport]:
        return self._set(record_ids, True, actor=actor, passphrase=passphrase)

    def unpublish(self, record_ids: list[str], *, reason: str, actor: str,
                  passphrase: PassphraseSource) -> list[PublicationReport]:
        return self._set(record_ids, False, actor=actor, passphrase=passphrase, reason=reason)

    def _set(self, record_ids: list[str], public: bool, *, actor: str, passphrase: PassphraseSource,
             reason: str = "") -> list[PublicationReport]:
        from store.fsutil import store_writes

        if not record_ids:
            raise UsageError("name at least one record ID")
        if not public and not reason.strip():  # before asking for a passphrase
            raise UsageError("unpublishing needs a reason (--reason TEXT): it is signed into the record's history")
        summaries = self.core.resolve_many(list(dict.fromkeys(record_ids)))  # every ID known before any change
        if not public:  # refused before a passphrase is asked for (and again under the write lock)
            from store.holds import refuse_records

            with self.core.catalog.db() as d:
                refuse_records(d, [s.record_id for s in summaries if is_public_in(d, s.record_id)], "unpublishing")
        permalink(self.core, summaries[0].record_id)  # a bad web.public_url is refused before anything is signed
        key = self.core.keys.load_private(passphrase)
        with store_writes("storing a publication addendum"):
            return set_public(self.core, summaries, public, key=key, actor=actor, reason=reason)

    def is_public(self, record_id: str) -> bool:
        return is_public(self.core, record_id)

    def public_ids(self, record_ids: list[str] | None = None) -> set[str]:
        return public_ids(self.core, record_ids)

    def permalink(self, record_id: str) -> str | None:
        return permalink(self.core, record_id)




#: custody events a public page shows: the record's evidence, never who downloaded or verified it
PUBLIC_EVENTS = frozenset({"capture", "import", "import-forced", "timestamp", "wayback", "derived", "publish",
                           "unpublish"})


def public_provenance(core: Store, record_id: str) -> ProvenanceReport | None:
    """The provenance report of a public record as the public side may show it, or None when the record
    is not public (or not known: the caller answers both alike). Its version timeline lists only public
    records, with their own times: a private capture of the same URL is never named or hinted at."""
    import dataclasses

    from archiver.evidence import Timeline, VersionView, provenance
    from archiver.provenance.ids import is_canonical_record_id

    rid = record_id
    if not is_canonical_record_id(rid) or not is_public(core, rid):  # one answer for every other ID
        return None
    report = provenance(core, rid)  # type: ignore[arg-type]
    # evidence events only, numbered among themselves (their seq in the log would count hidden entries)
    custody = tuple(dataclasses.replace(c, seq=n) for n, c in
                    enumerate((c for c in report.custody if c.event in PUBLIC_EVENTS), 1))
    timeline = report.timeline
    if timeline is not None:
        # versions made again from the public records alone: two public captures with the same content
        # are one version even when a private capture with other content lies between them
        shown = public_ids(core, [r for v in timeline.versions for r in v.record_ids])
        rows = sorted(core.catalog.get_many(sorted(shown)).values(), key=lambda x: (x.captured_at, x.record_id))
        versions: list[VersionView] = []
        groups: list[list[RecordSummary]] = []
        for row in rows:
            if groups and groups[-1][-1].content_sha256 == row.content_sha256:
                groups[-1].append(row)
            else:
                groups.append([row])
        for g in groups:
            versions.append(VersionView(len(versions) + 1, g[0].captured_at, g[-1].captured_at,
                                        tuple(x.record_id for x in g), g[0].status))
        timeline = Timeline(first_seen=versions[0].first_seen, last_seen=versions[-1].last_seen,
                            changes=len(versions) - 1, months_monitored=_months_between(
                                versions[0].first_seen, versions[-1].last_seen),
                            versions=tuple(versions)) if versions else None
    return dataclasses.replace(report, custody=custody, timeline=timeline)


def _months_between(a: str, b: str) -> float:
    try:
        first = dt.datetime.fromisoformat(a.replace("Z", "+00:00"))
        last = dt.datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return round((last - first).days / 30.44, 1)


#: written at the top of every static export: ``--force`` replaces only a directory that carries it
STATIC_MARKER = ".archiver-static-site"


def check_static_out(out: Path, *, force: bool, store_root: Path) -> None:
    """Where ``publish --static`` may write. OUT must be a new or empty directory; ``--force`` replaces
    only an earlier static export (it carries :data:`STATIC_MARKER`), never the store, a directory that
    holds the store or lies inside it, the root, the home or the current directory (a replaced OUT is
    deleted whole: a mistyped path must not take the evidence with it)."""
    if (out.exists() and not out.is_dir()) or out.is_symlink():
        raise UsageError(f"{out} exists and is not a directory", hint="name a new or empty directory")
    where = out.resolve()
    store = store_root.resolve()
    if where == store or store.is_relative_to(where) or where.is_relative_to(store):
        raise UsageError(f"{out} is the store, holds it or lies inside it: refusing to write there",
                         hint="name a directory outside the store")
    if where in (Path("/").resolve(), Path.home().resolve(), Path.cwd().resolve()):
        raise UsageError(f"{out} is the root, home or current directory: refusing to write there",
                         hint="name a new directory, e.g. ./public-site")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UsageError(f"{out} exists and is not empty: refusing to write over it",
                             hint="name a new or empty directory, or add --force to replace an earlier export")
        if not (out / STATIC_MARKER).is_file():
            raise UsageError(f"{out} is not an earlier static export (no {STATIC_MARKER}): --force replaces only "
                             "those", hint="name a new or empty directory")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent} does not exist", hint="create the parent directory first")


def public_bundle(core: Store, record_id: str) -> tuple[Path, str]:
    """The WACZ of a public record, exported once per (record, addenda) into ``<store>/public/`` and kept
    (a cache: never in the catalog or custody, so a GET writes neither; the ``publish`` entry records
    that the record is handed to anyone). Returns its path and SHA-256. The caller checks it is public."""
    import hashlib
    import os
    import threading

    from archiver.bundle.export import export

    def env_passphrase() -> str | None:  # a server has no one to ask: the key's passphrase comes from its env
        return os.environ.get("ARCHIVER_KEY_PASSPHRASE") or None

    from archiver.verify.logproof import covered

    summary = core.resolve(record_id)
    n = len(core.catalog.addenda(summary.record_id))
    folder = core.root / "public"
    # the bundle's citation.txt carries the permalink and the organisation: a new base is a new file;
    # once a signed log checkpoint covers the record the bundle carries its inclusion proof: a new name
    said = hashlib.sha256(repr((core.config.str_("web.public_url"), core.config.str_("operator.organization"),
                                core.config.str_("operator.name"))).encode()).hexdigest()[:8]
    log = "-log" if covered(core.log, summary.record_id) else ""
    path = folder / f"{summary.record_id}-{summary.manifest_sha256[:16]}-{n}-{said}{log}.wacz"
    if not path.exists():
        folder.mkdir(exist_ok=True)
        # per process *and thread*: the app's download and the replay origin (same process) may both
        # export a record at once, and two writers of one tmp name make the second replace fail
        tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            export(core, [summary.record_id], tmp, passphrase=env_passphrase, actor="public", log=False)
            os.replace(tmp, path)  # export wrote and fsynced tmp; a racing export writes an equal record
        finally:
            tmp.unlink(missing_ok=True)
    stamp = f"{path}:{path.stat().st_mtime_ns}"  # a file made again (the cache cleared) is hashed again
    known = _BUNDLE_SHA.get(stamp)
    if known is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        known = _BUNDLE_SHA[stamp] = h.hexdigest()
    return path, known


_BUNDLE_SHA: dict[str, str] = {}  # a kept bundle never changes: hashed once per process


__all__ = ["KINDS", "PUBLIC_EVENTS", "PublicationReport", "Publications", "check_public_url", "is_public",
           "is_public_in", "permalink", "public_bundle", "public_ids", "public_provenance", "set_public"]
