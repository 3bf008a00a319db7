"""Rebuilding the catalog from the blobs: the catalog is an index, the signed documents are the truth.

Every blob that may be a signed document is classified by its ``schema`` and ``kind`` through
``archiver.formats`` (never by the order of its JSON keys), so a record or addendum of a format newer
than this release is *reported* in the result and left for a newer release, never silently dropped.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from archiver.errors import ArchiverError
from archiver.formats import classify, looks_like_document
from archiver.records import Addendum, Manifest
from archiver.reports import RebuildReport

if TYPE_CHECKING:
    from archiver.core import StoreCore


def rebuild_index(core: StoreCore, *, actor: str) -> RebuildReport:
    """Recreate the catalog's record rows from the manifests and addenda found among the blobs."""
    from archiver.provenance.keys import key_id_of, load_public_pem

    manifests: list[tuple[Manifest, str]] = []
    addenda: list[tuple[Addendum, str]] = []
    newer: list[str] = []
    for sha in core.blobs.iter_all():
        with core.blobs.open(sha) as fh:
            head = fh.read(64)
        if head.startswith(b"-----BEGIN PUBLIC KEY-----"):
            try:
                key = load_public_pem(core.blobs.read_bytes(sha))
            except ArchiverError:
                continue
            core.catalog.add_signer_key(key_id_of(key), sha)
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
    manifests = _committed(core, manifests)
    core.catalog.clear_index()
    for m, sha in sorted(manifests, key=lambda t: (t[0].captured_at, t[0].record_id)):
        core.catalog.add_record(m, sha)
    indexed = {sha: m.record_id for m, sha in manifests}
    n_add = 0
    for a, sha in addenda:
        if indexed.get(a.manifest_sha256) == a.record_id:
            core.catalog.add_addendum(sha, a)
            n_add += 1
    core.note("rebuild-index", actor=actor, detail={"records": str(len(manifests)), "addenda": str(n_add),
                                                    "newer": str(len(newer))})
    return RebuildReport(records=len(manifests), addenda=n_add, newer=tuple(sorted(newer)))


def _committed(core: StoreCore, manifests: list[tuple[Manifest, str]]) -> list[tuple[Manifest, str]]:
    """One manifest per record ID: where a commit was signed again (its chain moved, ``commit_record``)
    an earlier signing of the same ID can lie among the blobs; the custody log names the committed one."""
    by_id: dict[str, list[tuple[Manifest, str]]] = {}
    for m, sha in manifests:
        by_id.setdefault(m.record_id, []).append((m, sha))
    if all(len(v) == 1 for v in by_id.values()):
        return manifests
    named = {e.subject_sha256 for e in core.custody.entries() if e.event in ("capture", "import", "import-forced")}
    out = []
    for versions in by_id.values():
        chosen = [v for v in versions if v[1] in named] or versions
        out.append(max(chosen, key=lambda v: v[0].captured_at))
    return out


__all__ = ["rebuild_index"]
