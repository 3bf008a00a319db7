"""``log audit`` and ``log verify --from``: the log checked against itself, the records, and the
checkpoints it signed; an older checkpoint checked against the current one.

The audit trusts nothing it can recompute. It rebuilds the tree from the entry bundles (the files a
third party reads), falling back to the catalog's rows only for the entries after the last checkpoint
(no bundle holds them yet), and then checks, each mismatch a FAIL that names its index, record or size:

- the catalog's leaves: contiguous indices, each row hashing to its entry, equal to the bundle's entry;
- every hash tile in the files and every tile hash in the catalog against the rebuilt tree;
- every signed checkpoint (the catalog's, every ``checkpoints/<size>`` file, ``checkpoint``): signed by
  the log key, no larger than the log, its root the rebuilt tree's root at its size; ``checkpoint`` the
  largest of them (an older one published again is a replay); each RFC 3161 token over its file;
- every leaf against the stored records: its record and document are in the catalog, the document's
  file is in the store with its SHA-256, the record's artifacts are there;
- every record and addendum of the catalog is in the log.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archiver.errors import ArchiverError, IntegrityError, UsageError
from archiver.tlog.entries import LogEntry
from archiver.tlog.hashing import TILE_WIDTH, TileTree, root_of, verify_consistency
from archiver.tlog.note import open_checkpoint
from archiver.tlog.reports import LogAuditReport, LogConsistencyReport, LogProblem
from archiver.tlog.tiles import ENTRIES, partial_tiles, split_hashes, tile_path, unbundle

if TYPE_CHECKING:
    from archiver.tlog.log import TransparencyLog


def _levels(hashes: list[bytes]) -> list[list[bytes]]:
    """Tile-level hashes of every level above the leaves (level L+1 = root of each full level-L tile)."""
    levels = [hashes]
    while len(levels[-1]) >= TILE_WIDTH:
        below = levels[-1]
        levels.append([root_of(below[i:i + TILE_WIDTH]) for i in range(0, len(below) - TILE_WIDTH + 1, TILE_WIDTH)])
    return levels


def audit(tlog: TransparencyLog, blobs: Any) -> LogAuditReport:
    """Run every check (never stopping at the first failure); ``blobs`` is the store's blob store."""
    problems: list[LogProblem] = []

    def fail(check: str, message: str, **kw: Any) -> None:
        problems.append(LogProblem(check=check, message=message, **kw))

    synced = tlog.sync().appended
    with tlog.catalog.db() as d:
        size = tlog._state(d)[1]
        rows = d.rows("SELECT idx, leaf_hash, kind, record_id, sha256 FROM tlog_leaves ORDER BY idx")
        nodes = {(int(lv), int(i)): bytes(h) for lv, i, h in d.rows("SELECT level, idx, hash FROM tlog_nodes")}
        records = {str(r): str(m) for r, m in d.rows("SELECT record_id, manifest_sha256 FROM records")}
        addenda = {str(s): str(r) for s, r in d.rows("SELECT sha256, record_id FROM addenda")}
    catalog: list[LogEntry | None] = [None] * size
    for i, lh, kind, rid, sha in rows:
        i = int(i)
        try:
            e = LogEntry(str(kind), str(rid), str(sha))
        except ValueError as exc:
            fail("entry", f"catalog leaf {i} is not a log entry: {exc}", index=i)
            continue
        if not 0 <= i < size:
            fail("entry", f"catalog leaf {i} lies outside the log of {size}", index=i, record_id=e.record_id)
            continue
        if e.leaf_hash() != bytes(lh):
            fail("entry", f"catalog leaf {i} does not hash to its entry", index=i, record_id=e.record_id)
        catalog[i] = e
    for i in (i for i, e in enumerate(catalog) if e is None):
        fail("entry", f"the catalog has no leaf {i} of the log of {size}", index=i)

    # the entries as the files have them: full bundles, then the partial bundle of the latest checkpoint
    signed = tlog.checkpoints()
    covered = size - size % TILE_WIDTH
    files: list[LogEntry | None] = [None] * size
    spans = [(n, TILE_WIDTH) for n in range(size // TILE_WIDTH)]
    last = max((c.size for c in signed if c.size <= size), default=0)
    if last % TILE_WIDTH and last > covered:
        spans.append((last // TILE_WIDTH, last % TILE_WIDTH))
        covered = last
    for n, width in spans:
        path = tile_path(ENTRIES, n, width)
        data = tlog.files.read(path)
        if data is None:
            fail("bundle", f"entry bundle {path} is missing", index=n * TILE_WIDTH)
            continue
        try:
            got = [LogEntry.from_bytes(b) for b in unbundle(data)]
        except IntegrityError as exc:
            fail("bundle", f"entry bundle {path} is damaged: {exc.message}", index=n * TILE_WIDTH)
            continue
        if len(got) != width:
            fail("bundle", f"entry bundle {path} holds {len(got)} entries, not {width}", index=n * TILE_WIDTH)
        for k, e in enumerate(got[:width]):
            i = n * TILE_WIDTH + k
            files[i] = e
            if catalog[i] is not None and catalog[i] != e:
                fail("bundle", f"entry {i} in {path} is not the catalog's leaf {i}", index=i, record_id=e.record_id)
    entries = [f if f is not None else c for f, c in zip(files, catalog, strict=True)]
    hashes = [e.leaf_hash() if e is not None else b"\0" * 32 for e in entries]
    levels = _levels(hashes)
    tree = TileTree(size, lambda lv, n, w: levels[lv][n * TILE_WIDTH:n * TILE_WIDTH + w])
    _check_tiles(tlog, size, levels, nodes, signed, fail)
    _check_checkpoints(tlog, size, tree, signed, fail)
    checked = _check_records(tlog.catalog, blobs, entries, records, addenda, fail)
    return LogAuditReport(ok=not problems, size=size, entries_checked=sum(e is not None for e in entries),
                          records_checked=checked, checkpoints_checked=len(signed), synced=synced,
                          root=base64.b64encode(tree.root()).decode("ascii"), problems=tuple(problems))


Fail = Callable[..., None]


def _check_tiles(tlog: TransparencyLog, size: int, levels: list[list[bytes]], nodes: dict[tuple[int, int], bytes],
                 signed: list[Any], fail: Fail) -> None:
    for lv in range(1, len(levels)):
        for i, h in enumerate(levels[lv]):
            if nodes.get((lv, i)) != h:
                fail("tile", f"the catalog's hash of tile {lv - 1}/{i} is not the tree's", size=size)
    for lv, hashes in enumerate(levels):
        for n in range(len(hashes) // TILE_WIDTH):
            _check_tile(tlog, tile_path(lv, n), hashes[n * TILE_WIDTH:(n + 1) * TILE_WIDTH], fail)
    for cp in signed:
        if cp.size > size:
            continue
        for lv, n, width in partial_tiles(cp.size):
            _check_tile(tlog, tile_path(lv, n, width), levels[lv][n * TILE_WIDTH:n * TILE_WIDTH + width], fail)


def _check_tile(tlog: TransparencyLog, path: str, want: list[bytes], fail: Fail) -> None:
    data = tlog.files.read(path)
    if data is None:
        fail("tile", f"hash tile {path} is missing")
    elif len(data) % 32 or split_hashes(data) != want:
        fail("tile", f"hash tile {path} is not the tree's (rebuilt from the entries)")


def _check_checkpoints(tlog: TransparencyLog, size: int, tree: TileTree, signed: list[Any], fail: Fail) -> None:
    from archiver.provenance import tsp

    key = tlog.verifier()
    notes: dict[str, bytes] = {f"catalog checkpoint {cp.size}": cp.note for cp in signed}
    for path in tlog.files.list("checkpoints/"):
        if "." not in path.rsplit("/", 1)[-1]:
            notes[path] = tlog.files.read(path) or b""
    published = tlog.files.read("checkpoint")
    if published is not None:
        notes["checkpoint"] = published
    elif signed:
        fail("checkpoint", "the published checkpoint file is missing")
    sizes: dict[str, int] = {}
    for where, note in notes.items():
        try:
            cp = open_checkpoint(note, key).checkpoint
        except ArchiverError as exc:
            fail("checkpoint", f"{where} does not verify with the log key: {exc.message}")
            continue
        sizes[where] = cp.size
        if cp.size > size:
            fail("checkpoint", f"{where} signs a tree of {cp.size} but the log holds {size}: entries were removed",
                 size=cp.size)
        elif tree.hash(0, cp.size) != cp.root:
            fail("checkpoint", f"the root of the log at size {cp.size} differs from the signed checkpoint "
                               f"({where}): the log was rewritten", size=cp.size)
    if "checkpoint" in sizes and sizes["checkpoint"] < max(sizes.values()):
        fail("checkpoint", f"the published checkpoint (size {sizes['checkpoint']}) is older than one the log "
                           f"signed (size {max(sizes.values())}): an old checkpoint was replayed as new",
             size=sizes["checkpoint"])
    for path in tlog.files.list("checkpoints/"):
        if path.endswith(".tsr"):
            base = path.rsplit(".", 2)[0]
            stamped = tlog.files.read(base)
            try:
                got = tsp.info(tsp.parse_response(tlog.files.read(path) or b"")).imprint_hex
            except ArchiverError as exc:
                fail("checkpoint", f"timestamp {path} is unreadable: {exc.message}")
                continue
            if stamped is None or got != hashlib.sha256(stamped).hexdigest():
                fail("checkpoint", f"timestamp {path} is not over {base}")


def _check_records(catalog: Any, blobs: Any, entries: list[LogEntry | None], records: dict[str, str],
                   addenda: dict[str, str], fail: Fail) -> int:
    from archiver.errors import NotFoundError

    def document(i: int, e: LogEntry) -> None:
        try:
            data = blobs.read_bytes(e.sha256)
        except (NotFoundError, OSError):
            fail("record", f"record {e.record_id}: its {e.kind} file (sha256:{e.sha256[:16]}…, log entry {i}) is "
                           "missing from the store", index=i, record_id=e.record_id)
            return
        if hashlib.sha256(data).hexdigest() != e.sha256:
            fail("record", f"record {e.record_id}: its {e.kind} file (log entry {i}) was changed: it no longer "
                           "has the SHA-256 the log holds", index=i, record_id=e.record_id)

    logged: set[str] = set()
    seen_records: set[str] = set()
    for i, e in enumerate(entries):
        if e is None:
            continue
        logged.add(e.sha256)
        if e.kind == "manifest":
            seen_records.add(e.record_id)
            if records.get(e.record_id) != e.sha256:
                why = "is not in the catalog" if e.record_id not in records else "has another manifest in the catalog"
                fail("record", f"log entry {i} names record {e.record_id}, which {why}", index=i,
                     record_id=e.record_id)
                continue
        elif addenda.get(e.sha256) != e.record_id:
            fail("record", f"log entry {i} names an addendum of {e.record_id} the catalog does not hold", index=i,
                 record_id=e.record_id)
            continue
        document(i, e)
    for rid in sorted(seen_records & set(records)):
        for name, sha in sorted(catalog.record_blobs(rid).items()):
            if not blobs.exists(sha):
                fail("record", f"record {rid}: its {name} file (sha256:{sha[:16]}…) is missing from the store",
                     record_id=rid)
    for rid, sha in sorted(records.items()):
        if sha not in logged:
            fail("coverage", f"record {rid} is not in the log", record_id=rid)
    for sha, rid in sorted(addenda.items()):
        if sha not in logged:
            fail("coverage", f"an addendum of record {rid} (sha256:{sha[:16]}…) is not in the log", record_id=rid)
    return len(seen_records)


def verify_from(tlog: TransparencyLog, old_note: bytes) -> LogConsistencyReport:
    """Is the log's latest checkpoint an extension of ``old_note`` (a checkpoint kept from before)?"""
    problems: list[LogProblem] = []
    key = tlog.verifier()
    try:
        old = open_checkpoint(old_note, key).checkpoint
    except ArchiverError as exc:
        raise UsageError(f"the old checkpoint does not verify with this log's key: {exc.message}",
                         hint="pass a checkpoint this log signed (`archiver log key` prints its vkey)") from exc
    tlog.sync()
    latest = tlog.latest()
    if latest is None:
        raise UsageError("this log has signed no checkpoint yet", hint="archiver log checkpoint")
    new_root, proof = latest.root, []
    if old.size > latest.size:
        problems.append(LogProblem(check="consistency", size=old.size,
                                   message=f"the old checkpoint (size {old.size}) is larger than the current one "
                                           f"(size {latest.size}): the log shrank, or its checkpoint is a replay"))
    else:
        with tlog.catalog.db() as d:
            tree = tlog.tree(d, latest.size)
            proof = tree.consistency_proof(old.size)
            if tree.root() != latest.root:
                problems.append(LogProblem(check="consistency", size=latest.size,
                                           message=f"the log's tree at size {latest.size} is not the one its "
                                                   "checkpoint signed"))
        try:
            verify_consistency(old.size, latest.size, old.root, latest.root, proof)
        except IntegrityError as exc:
            problems.append(LogProblem(check="consistency", size=old.size, message=exc.message))
    return LogConsistencyReport(ok=not problems, origin=old.origin, old_size=old.size,
                                old_root=base64.b64encode(old.root).decode("ascii"), new_size=latest.size,
                                new_root=base64.b64encode(new_root).decode("ascii"), proof_hashes=len(proof),
                                problems=tuple(problems))


__all__ = ["audit", "verify_from"]
