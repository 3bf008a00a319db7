"""Publishing: which records anyone may open at their permalink ``<web.public_url>/r/<ID>``.

A record is private by default. Making it public, or private again, is a later fact about the record,
so it is a signed addendum (kind ``publish`` / ``unpublish``) committed through the one write path
with its custody entry naming the actor: the custody log, a bundle and the transparency log all see
when a record became citable by anyone, and an unpublished record keeps the trace of having been
public (a court may have been given its link). The state is the kind of the record's latest
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
    with core.catalog.db() as d:
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
    """Publish or unpublish each record in one unit of work per record: the state is read, the addendum
    signed and stored, and the catalog row and custody entry committed under the write lock, so two
    people acting at once make one change, not two."""
    from archiver.core import addendum_event
    from archiver.provenance.signing import addendum_file_bytes, sign_addendum
    from store.catalog import Catalog

    reason = reason.strip()
    if not public and not reason:
        raise UsageError("unpublishing needs a reason (--reason TEXT): it is signed into the record's history")
    if len(reason) > MAX_REASON or any(ord(c) < 32 and c not in "\t" for c in reason):
        raise UsageError(f"the reason must be one line of at most {MAX_REASON} characters")
    kind = "publish" if public else "unpublish"
    out: list[PublicationReport] = []
    for summary in summaries:
        rid = summary.record_id

        def prepare(d: Any, rid: str = rid, summary: RecordSummary = summary) -> tuple[list[Any], Any, Any]:
            latest = _latest(d, rid)
            if (latest is not None and latest[0] == kind) or (latest is None and not public):
                return [], None, None  # already so: nothing to sign or log
            add = sign_addendum(Addendum(kind=kind, record_id=rid, manifest_sha256=summary.manifest_sha256,
                                         created_at=_after(latest[1] if latest else None),
                                         publication=Publication(public=public, actor=actor, reason=reason)), key)
            sha = core.blobs.put_bytes(addendum_file_bytes(add))

            def index(d: Any) -> None:
                Catalog.insert_addendum(d, sha, add)
            return [addendum_event(add, sha)], index, (add, sha)
        _, made = core.ledger.run(prepare, actor=actor)
        link = permalink(core, rid)
        if made is None:
            out.append(PublicationReport(rid, public, False, link))
        else:
            add, sha = made
            out.append(PublicationReport(rid, public, True, link, at=add.created_at, reason=reason or None,
                                         addendum_sha256=sha))
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
    custody = tuple(c for c in report.custody if c.event in PUBLIC_EVENTS)
    timeline = report.timeline
    if timeline is not None:
        shown = public_ids(core, [r for v in timeline.versions for r in v.record_ids])
        times = {s.record_id: s.captured_at for s in core.catalog.get_many(sorted(shown)).values()}
        versions: list[VersionView] = []
        for v in timeline.versions:
            ids = tuple(r for r in v.record_ids if r in shown)
            if ids:
                seen = sorted(times[r] for r in ids)
                versions.append(VersionView(len(versions) + 1, seen[0], seen[-1], ids, v.status))
        timeline = Timeline(first_seen=versions[0].first_seen, last_seen=versions[-1].last_seen,
                            changes=len(versions) - 1, months_monitored=timeline.months_monitored if
                            len(versions) == len(timeline.versions) else 0.0,
                            versions=tuple(versions)) if versions else None
    return dataclasses.replace(report, custody=custody, timeline=timeline)


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
    # once a signed log checkpoint covers the record the bundle carries its inclusion proof: a new name
    log = "-log" if covered(core.log, summary.record_id) else ""
    path = folder / f"{summary.record_id}-{summary.manifest_sha256[:16]}-{n}{log}.wacz"
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
    known = _BUNDLE_SHA.get(str(path))
    if known is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        known = _BUNDLE_SHA[str(path)] = h.hexdigest()
    return path, known


_BUNDLE_SHA: dict[str, str] = {}  # a kept bundle never changes: hashed once per process


__all__ = ["KINDS", "PUBLIC_EVENTS", "PublicationReport", "Publications", "check_public_url", "is_public",
           "permalink", "public_bundle", "public_ids", "public_provenance", "set_public"]
