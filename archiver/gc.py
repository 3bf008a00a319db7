"""Garbage collection of the blob store: ``archiver store gc [--dry-run] [--min-age HOURS]``.

What is garbage: a blob nothing names. A capture writes its artifacts' blobs before its record commits
(``store/ledger.py``), so a capture killed in between leaves blobs no record, addendum or custody entry
will ever name, and temp files under ``tmp/``. Everything else is kept — a blob is *referenced* when
the catalog names it (a record's manifest, content, text and artifacts, an addendum, a signer key or
rotation statement, a transparency-log leaf), when a signed document in the catalog names it anywhere
(timestamp tokens, TSA chains, TLS chains, derived texts), or when a custody entry names it (its
subject, or any SHA-256 in its detail: an import's carried custody, a rejected timestamp, a manifest
whose catalog row a crash cut off and the next open will replay).

Why a minimum age (default 24 h): a capture in progress has stored blobs that no record names *yet*.
A blob stored again (the same bytes, by a new capture) is made young again (``BlobStore.adopt``
touches it), so an orphan about to be named is spared. The scan's verdict is checked again for each
blob under the catalog's write lock just before it is deleted (``_still_garbage``: named by a record
committed since, or made young again, it stays), so a capture racing gc keeps its blob. What is left:
on S3 storing existing bytes again does not refresh the object's date, so there an orphan re-stored by
a capture that has not committed yet can still go — keep the default ``min_age`` on S3.

Legal holds: a held record's blobs are referenced anyway, but a bug in the reference scan must not
be able to delete them: every candidate is checked against the holds before anything is deleted (one
held candidate refuses the whole run, naming the hold), and each delete is checked again by the blob
store itself (``store/holds.guard``) under the catalog's write lock.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Store

_HEX64 = re.compile(r"[0-9a-f]{64}")
DEFAULT_MIN_AGE_H = 24.0
TEMP_MIN_AGE_S = 3600.0


@dataclass(frozen=True, slots=True)
class GcReport(Report):
    """What ``store gc`` found and did (``dry_run``: found only)."""

    dry_run: bool
    min_age_hours: float
    blobs: int
    referenced: int
    orphans: tuple[str, ...]
    young: int
    deleted: tuple[str, ...]
    bytes_freed: int
    temps_removed: int


def _detail_refs(detail: dict[str, Any], out: set[str]) -> None:
    for v in detail.values():
        for part in str(v).replace("sha256:", "").split(","):
            part = part.strip()
            if _HEX64.fullmatch(part):
                out.add(part)


def referenced(core: Store) -> set[str]:
    """Every blob name the catalog, its signed documents or the custody log mention."""
    from store.holds import document_refs

    out: set[str] = set()
    docs: set[str] = set()
    with core.catalog.db() as d:
        for sql in ("SELECT manifest_sha256, content_sha256, text_sha256 FROM records",
                    "SELECT sha256 FROM artifacts", "SELECT public_pem_sha256 FROM signer_keys",
                    "SELECT sha256 FROM tlog_leaves", "SELECT subject_sha256 FROM outbox"):
            for row in d.rows(sql):
                out.update(str(v) for v in row if v)
        docs.update(str(r[0]) for r in d.rows("SELECT manifest_sha256 FROM records"))
        docs.update(str(r[0]) for r in d.rows("SELECT sha256 FROM addenda"))
        for (detail,) in d.rows("SELECT detail FROM outbox"):
            try:
                _detail_refs(json.loads(detail), out)
            except ValueError:
                pass
    for e in core.custody.entries():
        if e.subject_sha256:
            out.add(e.subject_sha256)
            docs.add(e.subject_sha256)  # a committed document the catalog may lack after a crash
        _detail_refs(e.detail, out)
    out |= docs
    for sha in docs:
        try:
            out |= document_refs(core.blobs.read_bytes(sha))
        except Exception:  # noqa: S112  # a missing or unreadable document: verification reports it
            continue
    return {s for s in out if _HEX64.fullmatch(s)}


def _still_garbage(core: Store, d: Any, *, sha: str, cutoff: float) -> bool:
    """Checked under the catalog's write lock, just before the delete: a capture that stored the same
    bytes since the scan has either committed (its record names the blob: indexed probes) or not yet (it
    made the blob young again). Either way the blob stays."""
    for sql in ("SELECT 1 FROM artifacts WHERE sha256=? LIMIT 1", "SELECT 1 FROM records WHERE manifest_sha256=?",
                "SELECT 1 FROM addenda WHERE sha256=? LIMIT 1"):
        if d.one(sql, (sha,)) is not None:
            return False
    try:
        return core.blobs.modified(sha) <= cutoff
    except Exception:  # gone meanwhile: nothing to delete
        return False


def collect(core: Store, *, dry_run: bool = False, min_age_hours: float = DEFAULT_MIN_AGE_H) -> GcReport:
    """Find the orphans older than ``min_age_hours`` and (unless ``dry_run``) delete them and stale temp
    files. Refused as a whole (``HoldError``) when any candidate is needed by a held record."""
    from store.holds import held_blobs, refusal

    if not 0 <= min_age_hours <= 24 * 3650:
        raise UsageError("--min-age is a number of hours between 0 and 87600")
    keep = referenced(core)
    names = list(core.blobs.iter_all())
    cutoff = time.time() - min_age_hours * 3600
    orphans, young = [], 0
    for sha in names:
        if sha in keep:
            continue
        try:
            if core.blobs.modified(sha) > cutoff:
                young += 1
                continue
        except Exception:  # noqa: S112  # deleted meanwhile
            continue
        orphans.append(sha)
    with core.catalog.db() as d:
        held = held_blobs(d, core.blobs)
    hit = {held[s][0]: held[s][1] for s in orphans if s in held}
    if hit:  # only a bug in the scan above could get here: refuse everything, name the hold
        raise refusal("garbage collection", hit)
    deleted: list[str] = []
    freed = temps = 0
    if not dry_run:
        for sha in orphans:
            try:
                size = core.blobs.size(sha)
            except Exception:
                size = 0
            if core.blobs.delete(sha, still=functools.partial(_still_garbage, core, sha=sha, cutoff=cutoff)):
                deleted.append(sha)
                freed += size
        # a temp file is a capture's download in progress: never younger than an hour, whatever --min-age
        temps = core.blobs.clean_temps(older_than_s=max(min_age_hours * 3600, TEMP_MIN_AGE_S))
    return GcReport(dry_run, min_age_hours, len(names), len(keep), tuple(orphans), young, tuple(deleted), freed, temps)


__all__ = ["DEFAULT_MIN_AGE_H", "GcReport", "collect", "referenced"]
