"""Legal holds as the store itself enforces them: which records a hold covers, which blobs are theirs,
and the check the blob stores run before they delete anything.

Why here, below every use case: a hold must stop *every* way a held record could become unavailable
(unpublishing, removal from a collection, garbage collection, a blob deleted by any code path), so
the refusal cannot live only in the commands that users run. The use cases (``archiver/matters``,
``publication``, ``collections``) ask :func:`refuse_records` inside their unit of work; the blob stores
ask :func:`guard` inside their ``delete``, so a bug elsewhere that picks a held record's blob still
meets the refusal.

A record is held while it is in the exhibit list (the collection) of a matter that has an active hold
(``legal_holds.released_at`` empty). A record's blobs are its manifest, its artifacts, its addenda and
every blob its addenda name (timestamp tokens, TSA chains, derived texts).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import HoldError

if TYPE_CHECKING:
    from store.blobs import BlobStore
    from store.catalog import Catalog, _Db
    from store.s3 import S3BlobStore

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

#: the records under an active hold, with the hold: a record is held through its matter's exhibit list
_ACTIVE = ("SELECT ci.record_id, h.matter, h.reason, h.placed_by, h.placed_at FROM legal_holds h "
           "JOIN matters m ON m.name = h.matter JOIN collection_items ci ON ci.name = m.collection "
           "WHERE h.released_at IS NULL")


@dataclass(frozen=True, slots=True)
class ActiveHold:
    """One active hold as a refusal names it."""

    matter: str
    reason: str
    placed_by: str
    placed_at: str

    def describe(self) -> str:
        return f"legal hold on matter {self.matter!r} ({self.reason}; placed by {self.placed_by} at {self.placed_at})"


def held(d: _Db, record_ids: Iterable[str] | None = None) -> dict[str, list[ActiveHold]]:
    """Record ID → the active holds that cover it (every held record when ``record_ids`` is None)."""
    wanted = None if record_ids is None else set(record_ids)
    out: dict[str, list[ActiveHold]] = {}
    for row in d.rows(_ACTIVE + " ORDER BY h.matter"):
        rid = str(row[0])
        if wanted is None or rid in wanted:
            out.setdefault(rid, []).append(ActiveHold(str(row[1]), str(row[2]), str(row[3]), str(row[4])))
    return out


def refusal(what: str, holds: dict[str, list[ActiveHold]]) -> HoldError:
    """The one error every refused act raises: the act, the records, and each hold by matter and reason."""
    distinct = list(dict.fromkeys(h for hs in holds.values() for h in hs))
    records = ", ".join(sorted(holds)[:5]) + (" …" if len(holds) > 5 else "")
    return HoldError(f"{what} refused: {records} under " + "; ".join(h.describe() for h in distinct),
                     holds=tuple((h.matter, h.reason) for h in distinct),
                     hint="lift the hold with `archiver release " + distinct[0].matter + "` first, if that is "
                          "decided (the release is a custody entry)")


def refuse_records(d: _Db, record_ids: Iterable[str], what: str) -> None:
    """Raise :class:`HoldError` when any of ``record_ids`` is held (call it inside the unit of work)."""
    found = held(d, record_ids)
    if found:
        raise refusal(what, found)


def _hexes(value: Any, out: set[str]) -> None:
    if isinstance(value, str):
        if _HEX64.match(value):
            out.add(value)
        elif value.startswith("sha256:") and _HEX64.match(value[7:]):
            out.add(value[7:])
    elif isinstance(value, dict):
        for v in value.values():
            _hexes(v, out)
    elif isinstance(value, list):
        for v in value:
            _hexes(v, out)


def document_refs(data: bytes) -> set[str]:
    """Every blob name a signed JSON document mentions (artifacts, tokens, chains, derived texts)."""
    out: set[str] = set()
    try:
        _hexes(json.loads(data), out)
    except ValueError:
        pass
    return out


def record_blobs(d: _Db, blobs: BlobStore | S3BlobStore, record_id: str) -> set[str]:
    """The blobs one record needs: manifest, artifacts, addenda and what the addenda name."""
    out: set[str] = set()
    row = d.one("SELECT manifest_sha256, content_sha256, text_sha256 FROM records WHERE record_id=?", (record_id,))
    if row is not None:
        out.update(str(v) for v in row if v)
    out.update(str(r[0]) for r in d.rows("SELECT sha256 FROM artifacts WHERE record_id=?", (record_id,)))
    for (sha,) in d.rows("SELECT sha256 FROM addenda WHERE record_id=?", (record_id,)):
        out.add(str(sha))
        try:
            out |= document_refs(blobs.read_bytes(str(sha)))
        except Exception:  # noqa: S110  # an unreadable addendum still names itself; verify reports it
            pass
    return {s for s in out if _HEX64.match(s)}


def held_blobs(d: _Db, blobs: BlobStore | S3BlobStore) -> dict[str, tuple[str, list[ActiveHold]]]:
    """Blob name → (a held record that needs it, the holds on that record)."""
    out: dict[str, tuple[str, list[ActiveHold]]] = {}
    for rid, hs in held(d).items():
        for sha in record_blobs(d, blobs, rid):
            out.setdefault(sha, (rid, hs))
    return out


@contextlib.contextmanager
def guard(catalog: Catalog, blobs: BlobStore | S3BlobStore, hexdigest: str) -> Iterator[_Db]:
    """Hold the catalog's write lock while a blob is deleted, after refusing when a held record needs it:
    a hold placed (or a record added to a held matter) cannot slip in between the check and the delete.
    Yields the locked connection, so the deleter can check again what it decided before the lock."""
    from store.catalog import PostgresCatalog

    with catalog.db() as d, d.tx():
        if isinstance(catalog, PostgresCatalog):
            d.rows("SELECT pg_advisory_xact_lock(?)", (7232,))  # the write path's lock (store/ledger.py)
        hit = held_blobs(d, blobs).get(hexdigest)
        if hit is not None:
            raise refusal(f"deleting blob sha256:{hexdigest}", {hit[0]: hit[1]})
        yield d


__all__ = ["ActiveHold", "document_refs", "guard", "held", "held_blobs", "record_blobs", "refusal",
           "refuse_records"]
