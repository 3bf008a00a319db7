"""Legal holds: ``hold MATTER --reason`` and ``release MATTER``.

While a matter's hold is on, none of its records can be unpublished, removed from a collection,
garbage-collected or have a blob deleted: the refusals are made in ``store/holds.py`` (the blob stores'
delete path, and the unit of work of each use case), so no front-end or bug can skip them, and every
refusal names the matter and the reason (``HoldError``, exit 2).

On S3 with Object Lock, a hold also puts the server's own legal hold (``PutObjectLegalHold`` ON) on
every object its records need — also those of a record added to the matter while it is held — and the
release lifts it (OFF) from the objects no other active hold needs (never on a store that puts a legal
hold on every object). A bucket without Object Lock has no legal holds: our refusal is then the guard,
and the report says so (``server_legal_hold`` false).

Placing and lifting are custody entries (``matter-hold``, ``matter-release``) committed with the row;
the server's legal holds follow the commit, so a failure there leaves the hold on in the catalog
(enforced) and running ``hold`` again puts them on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import UsageError
from archiver.matters import HoldInfo, _matter, _now, check_name, check_text, hold_info
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Store

MAX_REASON = 500
_ACTIVE_OF = ("SELECT hold_id, matter, reason, placed_by, placed_at, released_by, released_at FROM legal_holds "
              "WHERE matter=? AND released_at IS NULL")


@dataclass(frozen=True, slots=True)
class HoldChange(Report):
    """What ``hold`` / ``release`` did. ``objects`` counts the S3 objects whose server-side legal hold was
    set (ON) or lifted (OFF); ``server_legal_hold`` is false where the store has no Object Lock."""

    matter: str
    action: str
    changed: bool
    hold: HoldInfo | None
    records: int
    objects: int = 0
    server_legal_hold: bool = False


def _s3(core: Store) -> Any:
    from store.blobs import BlobStore

    return None if isinstance(core.blobs, BlobStore) else core.blobs


def apply_server_holds(core: Store, record_ids: list[str]) -> tuple[int, bool]:
    """Put the S3 Object Lock legal hold ON for every object the records need (idempotent)."""
    from store.holds import record_blobs

    s3 = _s3(core)
    if s3 is None or not s3.settings.object_lock:
        return 0, False
    with core.catalog.db() as d:
        shas = sorted({sha for rid in record_ids for sha in record_blobs(d, core.blobs, rid)})
    return sum(1 for sha in shas if _set(s3, sha, True)), True


def _set(s3: Any, sha: str, on: bool) -> bool:
    """One object's legal hold; a name that is no stored object is skipped: the names come from a scan of
    the records' signed documents, which also name things that are not blobs (an addendum's signer key
    id is ``sha256:<hex>``), and one of those must not stop the objects after it from being held."""
    from archiver.errors import NotFoundError

    try:
        return bool(s3.set_legal_hold(sha, on))
    except NotFoundError:
        return False


def follow(core: Store) -> int:
    """Give the server's legal hold to what held records gained since the last call: every outbox row
    after this follower's position that names a held record (an addendum — timestamp, Wayback,
    derived text, publication — is a new object of that record). Run after every evidence commit
    (the facade chains it to ``Ledger.on_commit``); nothing to do, and no query, unless the store is S3
    with Object Lock. Idempotent: a row seen twice sets holds already set."""
    from store.holds import held

    s3 = _s3(core)
    if s3 is None or not s3.settings.object_lock:
        return 0
    with core.catalog.db() as d:
        row = d.one("SELECT outbox_seq FROM legal_hold_state WHERE name='holds'")
        pos = int(row[0]) if row else 0
        last_row = d.one("SELECT MAX(seq) FROM outbox")
        last = int(last_row[0]) if last_row and last_row[0] is not None else 0
        if last <= pos:
            return 0
        named = {str(r[0]) for r in d.rows("SELECT DISTINCT record_id FROM outbox WHERE seq > ? AND seq <= ? AND "
                                           "record_id IS NOT NULL", (pos, last))}
        rids = sorted(named & set(held(d, named)))
    objects = apply_server_holds(core, rids)[0] if rids else 0
    with core.catalog.db() as d, d.tx():  # the position moves only forward (another process may be ahead)
        if d.run("UPDATE legal_hold_state SET outbox_seq=? WHERE name='holds' AND outbox_seq < ?", (last, last)) == 0 \
                and d.one("SELECT 1 FROM legal_hold_state WHERE name='holds'") is None:
            d.run("INSERT INTO legal_hold_state (name, outbox_seq) VALUES ('holds', ?)", (last,))
    return objects


def _lift_server_holds(core: Store, record_ids: list[str]) -> tuple[int, bool]:
    from store.holds import held_blobs, record_blobs

    s3 = _s3(core)
    if s3 is None or not s3.settings.object_lock:
        return 0, False
    with core.catalog.db() as d:
        still = held_blobs(d, core.blobs)  # read after the release committed: other matters' holds
        shas = sorted({sha for rid in record_ids for sha in record_blobs(d, core.blobs, rid)} - set(still))
    return sum(1 for sha in shas if _set(s3, sha, False)), True


def place(core: Store, matter: str, reason: str, *, actor: str) -> HoldChange:
    """Put a legal hold on a matter (one active hold per matter; again on a held matter changes nothing
    but puts the server's legal holds on any object that lacks one)."""
    from store.custody import Event

    name = check_name(matter)
    reason = check_text(reason, "reason", MAX_REASON)
    if not reason:
        raise UsageError("a hold needs a reason (--reason TEXT): every refusal it causes quotes it")
    hold_id, now = secrets.token_hex(8), _now()

    def prepare(d: Any) -> tuple[list[Event], None, tuple[bool, HoldInfo, list[str]]]:
        m = _matter(d, name)
        row = d.one(_ACTIVE_OF, (name,))
        if row is not None:
            return [], None, (False, hold_info(row), list(m.record_ids))
        d.run("INSERT INTO legal_holds (hold_id, matter, reason, placed_by, placed_at, released_by, released_at) "
              "VALUES (?,?,?,?,?,NULL,NULL)", (hold_id, name, reason, actor, now))
        info = HoldInfo(hold_id, name, reason, actor, now, True)
        return ([Event("matter-hold", detail={"matter": name, "reason": reason, "hold_id": hold_id,
                                              "records": str(len(m.record_ids))})], None,
                (True, info, list(m.record_ids)))
    _, (changed, info, ids) = core.ledger.run(prepare, actor=actor)
    objects, server = apply_server_holds(core, ids)
    return HoldChange(name, "hold", changed, info, len(ids), objects, server)


def release(core: Store, matter: str, *, actor: str) -> HoldChange:
    """Lift a matter's active hold (kept as history: ``released_by``, ``released_at``)."""
    from store.custody import Event

    name = check_name(matter)
    now = _now()

    def prepare(d: Any) -> tuple[list[Event], None, tuple[HoldInfo | None, list[str]]]:
        m = _matter(d, name)
        row = d.one(_ACTIVE_OF, (name,))
        if row is None:
            return [], None, (None, list(m.record_ids))
        d.run("UPDATE legal_holds SET released_by=?, released_at=? WHERE hold_id=?", (actor, now, str(row[0])))
        info = hold_info((*tuple(row)[:5], actor, now))
        return ([Event("matter-release", detail={"matter": name, "hold_id": str(row[0]), "reason": str(row[2])})],
                None, (info, list(m.record_ids)))
    _, (info, ids) = core.ledger.run(prepare, actor=actor)
    if info is None:
        return HoldChange(name, "release", False, None, len(ids))
    objects, server = _lift_server_holds(core, ids)
    return HoldChange(name, "release", True, info, len(ids), objects, server)


def active(core: Store) -> list[HoldInfo]:
    """Every active hold, by matter (``store info`` lists them)."""
    with core.catalog.db() as d:
        return [hold_info(r) for r in d.rows("SELECT hold_id, matter, reason, placed_by, placed_at, released_by, "
                                             "released_at FROM legal_holds WHERE released_at IS NULL ORDER BY matter")]


__all__ = ["HoldChange", "active", "apply_server_holds", "follow", "place", "release"]
