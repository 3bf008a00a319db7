"""Rebuilding the catalog from the blobs: the catalog is an index, the signed documents are the truth.

Every blob that may be a signed document is classified by its ``schema`` and ``kind`` through
``archiver.formats`` (never by the order of its JSON keys), so a record or addendum of a format newer
than this release is *reported* in the result and left for a newer release, never silently dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archiver.core import CHAIN_STRIPES
from archiver.errors import ArchiverError
from archiver.formats import classify, looks_like_document
from archiver.records import Addendum, Manifest
from archiver.reports import RebuildReport
from store.catalog import Catalog
from store.custody import Event

if TYPE_CHECKING:
    from archiver.core import StoreCore


def rebuild_index(core: StoreCore, *, actor: str) -> RebuildReport:
    """Recreate the catalog's record rows from the manifests and addenda found among the blobs.

    One unit of work under the catalog's write lock, scan included: a capture committing meanwhile
    waits, so nothing it commits can be scanned too early and then cleared away; afterwards it finds
    its URL's chain where it was (the tips are the chains' ends, not the latest captured)."""
    report: list[RebuildReport] = []

    def prepare(d: Any) -> tuple[list[Event], Callable[[Any], None], None]:
        keys, manifests, addenda, newer = _scan(core)
        manifests, unnamed = _committed(core, manifests)
        imported = {str(e.subject_sha256) for e in core.custody.entries() if e.event in ("import", "import-forced")}
        manifests.sort(key=lambda t: (t[0].captured_at, t[0].record_id))
        indexed = {sha: m.record_id for m, sha in manifests}
        kept = [(a, sha) for a, sha in addenda if indexed.get(a.manifest_sha256) == a.record_id]

        def index(d: Any) -> None:
            for key_id, sha in keys:
                d.run("INSERT INTO signer_keys VALUES (?,?) ON CONFLICT DO NOTHING", (key_id, sha))
            for table in ("addenda", "artifacts", "records", "documents"):
                d.run(f"DELETE FROM {table}")  # noqa: S608
            for m, sha in manifests:
                Catalog.insert_record(d, m, sha)
            for url, tip in _tips(manifests, imported).items():
                d.run("UPDATE documents SET last_record=? WHERE url=?", (tip, url))
            for a, sha in kept:
                Catalog.insert_addendum(d, sha, a)
        report.append(RebuildReport(records=len(manifests), addenda=len(kept), newer=tuple(sorted(newer)),
                                    uncommitted=tuple(sorted(unnamed))))
        return [Event("rebuild-index", detail={"records": str(len(manifests)), "addenda": str(len(kept)),
                                                "newer": str(len(newer))})], index, None
    # every URL's chain lock first (in stripe order, as a capture takes one): no capture is between
    # signing its manifest and committing it, so no manifest blob is scanned that is about to commit
    with contextlib.ExitStack() as held:
        for stripe in range(CHAIN_STRIPES):
            held.enter_context(core.chain_stripe(stripe))
        core.ledger.run(prepare, actor=actor)
    return report[0]


def _scan(core: StoreCore) -> tuple[list[tuple[str, str]], list[tuple[Manifest, str]], list[tuple[Addendum, str]],
                                    list[str]]:
    """Every signer key, manifest and addendum among the blobs, and the documents of newer formats."""
    from archiver.provenance.keys import key_id_of, load_public_pem

    keys: list[tuple[str, str]] = []
    manifests: list[tuple[Manifest, str]] = []
    addenda: list[tuple[Addendum, str]] = []
    newer: list[str] = []
    for sha in core.blobs.iter_all():
        with core.blobs.open(sha) as fh:
            head = fh.read(64)
        if head.startswith(b"-----BEGIN PUBLIC KEY-----"):
            try:
                keys.append((key_id_of(load_public_pem(core.blobs.read_bytes(sha))), sha))
            except ArchiverError:
                pass
            continue
        if not looks_like_document(head):
            continue
        data = core.blobs.read_bytes(sha)
        if hashlib.sha256(data).hexdigest() != sha:
            continue  # a damaged blob is verify's business, not the index's
        doc = classify(data)
        if doc.manifest is not None:
            manifests.append((doc.manifest, sha))
        elif doc.addendum is not None:
            addenda.append((doc.addendum, sha))
        elif doc.role == "newer":
            newer.append(f"{sha} ({doc.schema}{' ' + doc.kind if doc.kind else ''})")
    return keys, manifests, addenda, newer


def _tips(manifests: list[tuple[Manifest, str]], imported: set[str]) -> dict[str, str]:
    """Each URL's chain end: the record no other record of the URL names as ``previous``. Chains are
    made in commit order, which capture times need not follow (a capture's time is taken before its
    download), so "the latest captured" could be mid-chain and the next capture would fork it. Several
    ends (records imported from elsewhere beside this store's own chain): this store's own end (custody
    says which manifests came by import), the latest captured of them."""
    by_url: dict[str, list[tuple[Manifest, str]]] = {}
    for m, sha in manifests:
        by_url.setdefault(m.subject.url, []).append((m, sha))
    tips = {}
    for url, ms in by_url.items():
        named = {m.previous.record_id for m, _ in ms if m.previous is not None}
        ends = [v for v in ms if v[0].record_id not in named] or ms
        own = [v for v in ends if v[1] not in imported] or ends
        tips[url] = max(own, key=lambda v: (v[0].captured_at, v[0].record_id))[0].record_id
    return tips


def _committed(core: StoreCore, manifests: list[tuple[Manifest, str]]) -> tuple[list[tuple[Manifest, str]],
                                                                               list[str]]:
    """One manifest per record ID, and the manifests no custody entry names.

    Every signed manifest is a record, as the catalog has always been an index of the blobs — a custody
    log lost, restarted or restored from an older backup must not make genuine records vanish. The one
    exception: a record ID signed twice (``commit_record`` signs again when its chain moved) keeps the
    signing custody commits, else the latest. Manifests no custody entry names are listed (a capture
    killed between its blob and its entry, or a log that lost entries): verification says so."""
    named = {e.subject_sha256 for e in core.custody.entries() if e.event in ("capture", "import", "import-forced")}
    by_id: dict[str, list[tuple[Manifest, str]]] = {}
    for m, sha in manifests:
        by_id.setdefault(m.record_id, []).append((m, sha))
    chosen = []
    for versions in by_id.values():
        committed = [v for v in versions if v[1] in named] or versions
        chosen.append(max(committed, key=lambda v: (v[0].captured_at, v[1] in named)))
    return chosen, [sha for _, sha in chosen if sha not in named]


__all__ = ["rebuild_index"]
