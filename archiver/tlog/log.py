"""The transparency log of one store: appended from the write path's outbox, kept as tlog-tiles,
signed as checkpoints, proven per record.

**How the log and the catalog agree after a crash** (docs/architecture.md, "The transparency log").
Every evidence commit writes its ``outbox`` rows in the same catalog transaction as its record rows
(``store/ledger.py``). The log is a pure function of the outbox: :meth:`TransparencyLog.sync` reads
the rows after its stored position, in ``seq`` order, turns each into leaves (:func:`entries_of`),
drops a leaf whose bytes are already in the log, and — in one catalog transaction — inserts the new
leaves at the next indices, the hash of every tile they complete, and the new position. So the
catalog's view of the log moves atomically, and a kill before that COMMIT leaves the old position,
from which the next sync derives exactly the same leaves again. The files follow the catalog: full
tiles and entry bundles up to the size are written after the COMMIT (each temp + fsync + rename) and
then ``tiles_size`` is recorded; a kill in between is repaired by the next sync, which writes them
again from the rows — the same bytes, because a tile is a pure function of the leaves below it.
Partial tiles are written for the size of each checkpoint, before the checkpoint itself.

Sync runs after every evidence commit (``Ledger.on_commit``, cheap: one transaction and a few rows)
and before anything reads the log (checkpoint, prove, audit), so a sync cut short by a kill is finished
by the next command. Appends take the catalog's write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL
an advisory lock), so concurrent writers append one at a time and the log has one order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import NotFoundError, StoreCorruptError, UsageError
from archiver.tlog.entries import LogEntry, entries_of
from archiver.tlog.hashing import TILE_WIDTH, TileTree, root_of
from archiver.tlog.note import NoteSigner, Verifier
from archiver.tlog.tiles import ENTRIES, FsTileStore, TileStore, bundle, partial_tiles, tile_path, walk_tiles

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.config import Config
    from archiver.tlog.note import Signature
    from archiver.tlog.reports import LogAuditReport, LogCheckpointReport, LogConsistencyReport
    from store.catalog import Catalog, _Db
    from store.s3 import S3BlobStore

log = logging.getLogger(__name__)

STATE = "log"
#: outbox rows read per sync transaction: bounds one transaction's time and memory
CHUNK = 5000
#: PostgreSQL advisory lock serialising appends to the log (taken: 7231 migrations, 7232 the write path,
#: 7233 the queue's schema and the chain stripes, 7234 the watch runner)
PG_LOCK = 7235


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a sync appended: new leaves, outbox rows read, the log's size and position after it."""

    appended: int
    rows: int
    size: int
    outbox_seq: int


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint this log signed, as the catalog remembers it."""

    size: int
    root: bytes
    origin: str
    signed_at: str
    note: bytes


class LogKey:
    """The log's own Ed25519 key (``keys/log.key``, 0600, no passphrase: it signs unattended at the end
    of a batch). Separate from the operator's signing key: the log's identity is not a person's, and
    rotating one must not touch the other. Only its public half ever leaves the store (the vkey)."""

    def __init__(self, key_dir: Path, filename: str = "log.key") -> None:
        self.path = key_dir / filename  # a witness keeps its own key the same way (tlog/witness.py)

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self, create: bool = True) -> Ed25519PrivateKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not self.path.is_file():
            if not create:
                raise NotFoundError(f"this store has no log key yet ({self.path})",
                                    hint="`archiver log checkpoint` makes it")
            self._create()
        key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise StoreCorruptError(f"{self.path} is not an Ed25519 private key")
        return key

    def _create(self) -> None:
        """Exclusive creation: two processes making the key at once end up with one (the loser's is
        discarded before it signs anything)."""
        import tempfile

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)


class TransparencyLog:
    """The log of one store: its catalog rows (``tlog_*``), its files (a :class:`TileStore`), its key."""

    def __init__(self, catalog: Catalog, files: TileStore, key: LogKey, config: Config) -> None:
        self.catalog = catalog
        self.files = files
        self.key = key
        self.config = config
        from store.catalog import PostgresCatalog

        self._postgres = isinstance(catalog, PostgresCatalog)

    @classmethod
    def for_store(cls, root: Path, catalog: Catalog, s3_blobs: S3BlobStore | None,
                  config: Config) -> TransparencyLog:
        """The log of the store at ``root``: files under ``log/``, or in the bucket when blobs are on S3."""
        from archiver.tlog.tiles import S3TileStore

        files: TileStore = S3TileStore(s3_blobs) if s3_blobs is not None else FsTileStore(root / "log")
        return cls(catalog, files, LogKey(root / "keys"), config)

    # ---- identity --------------------------------------------------------------------------
    def origin(self) -> str:
        """``log.origin``, else ``archiver.invalid/<first 16 hex of the log key's SHA-256>``: a name
        that is unique to this log and says it is not an address (``.invalid`` is reserved)."""
        configured = self.config.str_("log.origin").strip()
        if configured:
            return configured
        raw = self._log_key().public_key().public_bytes_raw()
        return f"archiver.invalid/{hashlib.sha256(raw).hexdigest()[:16]}"

    def _log_key(self) -> Ed25519PrivateKey:
        """The log key, made on first use only: once a checkpoint is signed, a missing key is a loss to
        report, never a reason to make another (a second key under one origin is a second log, and the
        third parties who kept the first vkey would be told nothing)."""
        if not self.key.exists():
            with self.catalog.db() as d:
                signed = d.one("SELECT 1 FROM tlog_checkpoints LIMIT 1") is not None
            if signed or self.files.read("checkpoint") is not None:
                raise StoreCorruptError(f"the log key {self.key.path} is missing, but this log has signed "
                                        "checkpoints: a new key would be a second log under the same origin",
                                        hint="restore keys/log.key from a backup; third parties hold the vkey it "
                                             "had")
        return self.key.load()

    def signer(self) -> NoteSigner:
        return NoteSigner(self.origin(), self._log_key())

    def verifier(self) -> Verifier:
        """The log's verifier key (key name = origin): what a third party needs to check checkpoints."""
        return Verifier.of(self.origin(), self._log_key().public_key())

    def vkey(self) -> str:
        return self.verifier().vkey()

    # ---- state -----------------------------------------------------------------------------
    @staticmethod
    def _state(d: _Db) -> tuple[int, int, int]:
        row = d.one("SELECT outbox_seq, size, tiles_size FROM tlog_state WHERE name=?", (STATE,))
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    def size(self) -> int:
        """Leaves in the log as the catalog knows it (call :meth:`sync` first for the latest)."""
        with self.catalog.db() as d:
            return self._state(d)[1]

    def pending(self) -> int:
        """Outbox rows the log has not read yet (a read: no lock, no write)."""
        with self.catalog.db() as d:
            seq = self._state(d)[0]
            row = d.one("SELECT COUNT(*) FROM outbox WHERE seq > ?", (seq,))
        return int(row[0]) if row else 0

    # ---- appending -------------------------------------------------------------------------
    def sync(self) -> SyncResult:
        """Append every outbox row past the log's position, then write the tiles it completed."""
        appended = rows = 0
        while True:
            got, new, state = self._sync_chunk()
            rows += got
            appended += new
            if got < CHUNK:
                break
        seq, size, done = state
        if size // TILE_WIDTH != done // TILE_WIDTH:  # a tile was completed (now or by a sync cut short)
            self.write_tiles()
        return SyncResult(appended=appended, rows=rows, size=size, outbox_seq=seq)

    def _sync_chunk(self) -> tuple[int, int, tuple[int, int, int]]:
        """One transaction: up to :data:`CHUNK` outbox rows; returns (rows, leaves, state after)."""
        with self.catalog.db() as d, d.tx():
            if self._postgres:
                d.rows("SELECT pg_advisory_xact_lock(?)", (PG_LOCK,))
            seq, size, tiles_size = self._state(d)
            rows = d.dicts("SELECT seq, event, record_id, subject_sha256, detail FROM outbox WHERE seq > ? "
                           "ORDER BY seq LIMIT ?", (seq, CHUNK))
            if not rows:
                return 0, 0, (seq, size, tiles_size)
            candidates: list[tuple[int, LogEntry, bytes]] = []
            for r in rows:
                r["detail"] = json.loads(r["detail"] or "{}")
                try:
                    candidates += [(int(r["seq"]), e, e.leaf_hash()) for e in entries_of(r)]
                except ValueError as exc:
                    raise StoreCorruptError(f"outbox row {r['seq']} cannot be a log entry: {exc}",
                                            hint="run `archiver log audit`") from exc
            known = self._known(d, [lh for _, _, lh in candidates])
            new: list[tuple[int, bytes, LogEntry, int]] = []
            for s, e, lh in candidates:
                if lh in known:
                    continue  # the same document again (a second import): one leaf, ever
                known.add(lh)
                new.append((size + len(new), lh, e, s))
            if new:
                d.many("INSERT INTO tlog_leaves(idx, leaf_hash, kind, record_id, sha256, outbox_seq) "
                       "VALUES (?,?,?,?,?,?)", [(i, lh, e.kind, e.record_id, e.sha256, s) for i, lh, e, s in new])
                self._add_nodes(d, size, [lh for _, lh, _, _ in new])
            last = int(rows[-1]["seq"])
            d.run("INSERT INTO tlog_state(name, outbox_seq, size, tiles_size) VALUES (?,?,?,?) ON CONFLICT(name) "
                  "DO UPDATE SET outbox_seq=excluded.outbox_seq, size=excluded.size",
                  (STATE, last, size + len(new), tiles_size))
            return len(rows), len(new), (last, size + len(new), tiles_size)

    @staticmethod
    def _known(d: _Db, hashes: Sequence[bytes]) -> set[bytes]:
        out: set[bytes] = set()
        for i in range(0, len(hashes), 500):
            part = list(hashes[i:i + 500])
            marks = ",".join("?" * len(part))
            out |= {bytes(r[0]) for r in d.rows(f"SELECT leaf_hash FROM tlog_leaves WHERE leaf_hash IN ({marks})",  # noqa: S608
                                                 part)}
        return out

    def _add_nodes(self, d: _Db, old: int, new_hashes: list[bytes]) -> None:
        """Record the hash of every tile the new hashes complete, level after level."""
        level, before, fresh = 0, old, new_hashes
        while True:
            after = before + len(fresh)
            made: list[bytes] = []
            for t in range(before // TILE_WIDTH, after // TILE_WIDTH):
                start = t * TILE_WIDTH
                have = self._read(d, level, t, before - start) if start < before else []
                made.append(root_of(have + fresh[max(0, start - before):start + TILE_WIDTH - before]))
            if not made:
                return
            first = before // TILE_WIDTH
            d.many("INSERT INTO tlog_nodes(level, idx, hash) VALUES (?,?,?)",
                   [(level + 1, first + i, h) for i, h in enumerate(made)])
            level, before, fresh = level + 1, first, made

    @staticmethod
    def _read(d: _Db, level: int, n: int, width: int) -> list[bytes]:
        """``width`` tile-level hashes of tile ``level``/``n`` from the catalog."""
        lo, hi = n * TILE_WIDTH, n * TILE_WIDTH + width
        if level == 0:
            rows = d.rows("SELECT leaf_hash FROM tlog_leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (lo, hi))
        else:
            rows = d.rows("SELECT hash FROM tlog_nodes WHERE level=? AND idx >= ? AND idx < ? ORDER BY idx",
                          (level, lo, hi))
        return [bytes(r[0]) for r in rows]

    @staticmethod
    def _entries(d: _Db, lo: int, hi: int) -> list[LogEntry]:
        rows = d.rows("SELECT kind, record_id, sha256 FROM tlog_leaves WHERE idx >= ? AND idx < ? ORDER BY idx",
                      (lo, hi))
        return [LogEntry(str(k), str(r), str(s)) for k, r, s in rows]

    def write_tiles(self) -> int:
        """Write the full tiles and entry bundles the catalog has and the files lack; returns how many."""
        with self.catalog.db() as d:
            _, size, done = self._state(d)
        if size // TILE_WIDTH == done // TILE_WIDTH:  # no new full tile at level 0, so at no level
            return 0
        written = 0
        with self.catalog.db() as d:
            for level, n in walk_tiles(size, done):
                self.files.write(tile_path(level, n), b"".join(self._read(d, level, n, TILE_WIDTH)))
                if level == 0:
                    entries = self._entries(d, n * TILE_WIDTH, (n + 1) * TILE_WIDTH)
                    self.files.write(tile_path(ENTRIES, n), bundle([e.to_bytes() for e in entries]))
                written += 1
        with self.catalog.db() as d, d.tx():
            d.run("UPDATE tlog_state SET tiles_size=? WHERE name=? AND tiles_size < ?", (size, STATE, size))
        return written

    def write_partial_tiles(self, size: int) -> None:
        """The partial tiles (and partial entry bundle) of a tree of ``size``: before its checkpoint."""
        with self.catalog.db() as d:
            for level, n, width in partial_tiles(size):
                self.files.write(tile_path(level, n, width), b"".join(self._read(d, level, n, width)))
                if level == 0:
                    entries = self._entries(d, n * TILE_WIDTH, n * TILE_WIDTH + width)
                    self.files.write(tile_path(ENTRIES, n, width), bundle([e.to_bytes() for e in entries]))

    # ---- reading ---------------------------------------------------------------------------
    def tree(self, d: _Db, size: int | None = None) -> TileTree:
        """The tree of ``size`` leaves (default: all), read from the catalog over connection ``d``."""
        n = self._state(d)[1] if size is None else size
        return TileTree(n, lambda level, t, width: self._read(d, level, t, width))

    def root(self, size: int | None = None) -> bytes:
        with self.catalog.db() as d:
            return self.tree(d, size).root()

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 audit path of leaf ``index`` in the tree of ``size`` (a witness or a page needs it)."""
        with self.catalog.db() as d:
            return self.tree(d, size).inclusion_proof(index)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 consistency proof from the tree of ``old_size`` to the tree of ``new_size`` (what a
        tlog-witness ``add-checkpoint`` request carries)."""
        with self.catalog.db() as d:
            return self.tree(d, new_size).consistency_proof(old_size)

    def entry(self, index: int) -> LogEntry:
        with self.catalog.db() as d:
            got = self._entries(d, index, index + 1)
        if not got:
            raise NotFoundError(f"the log has no entry {index}")
        return got[0]

    def leaves_of(self, record_id: str) -> list[tuple[int, LogEntry]]:
        """(index, entry) of every leaf of a record: its manifest first, then its addenda in log order."""
        with self.catalog.db() as d:
            rows = d.rows("SELECT idx, kind, record_id, sha256 FROM tlog_leaves WHERE record_id=? ORDER BY idx",
                          (record_id,))
        out = [(int(i), LogEntry(str(k), str(r), str(s))) for i, k, r, s in rows]
        return sorted(out, key=lambda t: (t[1].kind != "manifest", t[0]))

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint this log signed, smallest first."""
        with self.catalog.db() as d:
            rows = d.rows("SELECT size, root, origin, signed_at, note FROM tlog_checkpoints ORDER BY size")
        return [StoredCheckpoint(int(s), bytes.fromhex(str(r)), str(o), str(t), str(n).encode("utf-8"))
                for s, r, o, t, n in rows]

    def latest(self) -> StoredCheckpoint | None:
        cps = self.checkpoints()
        return cps[-1] if cps else None

    def checkpoint_path(self, size: int) -> str:
        return f"checkpoints/{size}"

    def record_checkpoint(self, size: int, root: bytes, origin: str, note: bytes) -> None:
        """Remember a signed checkpoint and publish it as ``checkpoint`` unless a larger one is there:
        under the catalog's write lock, so two signers never put an older checkpoint over a newer."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        with self.catalog.db() as d, d.tx():
            if self._postgres:
                d.rows("SELECT pg_advisory_xact_lock(?)", (PG_LOCK,))
            d.run("INSERT INTO tlog_checkpoints(size, root, origin, signed_at, note) VALUES (?,?,?,?,?) "
                  "ON CONFLICT(size) DO NOTHING", (size, root.hex(), origin, now, note.decode("utf-8")))
            row = d.one("SELECT MAX(size) FROM tlog_checkpoints")
            if row is not None and int(row[0]) == size:
                self.files.write("checkpoint", note)

    def add_cosignatures(self, size: int, signatures: Sequence[Signature]) -> bytes:
        """Attach witnesses' cosignature lines (c2sp.org/tlog-cosignature, checked by the caller against
        its witness keys) to the stored checkpoint of ``size``; returns the note as stored now.

        The catalog's note (what :meth:`prove` puts in proof files) and, for the latest checkpoint, the
        published ``checkpoint`` gain the lines; ``checkpoints/<size>`` stays the log's own note, the
        bytes its RFC 3161 tokens are over. A line already there (same name and key ID) is not repeated."""
        from archiver.tlog.note import Note

        with self.catalog.db() as d, d.tx():
            if self._postgres:
                d.rows("SELECT pg_advisory_xact_lock(?)", (PG_LOCK,))
            row = d.one("SELECT note FROM tlog_checkpoints WHERE size=?", (size,))
            if row is None:
                raise NotFoundError(f"this log signed no checkpoint of size {size}")
            note = Note.parse(str(row[0]).encode("utf-8"))
            have = {(s.name, s.key_id) for s in note.signatures}
            extra = tuple(s for s in signatures if (s.name, s.key_id) not in have)
            data = Note(note.text, (*note.signatures, *extra)).to_bytes()
            d.run("UPDATE tlog_checkpoints SET note=? WHERE size=?", (data.decode("utf-8"), size))
            top = d.one("SELECT MAX(size) FROM tlog_checkpoints")
            if top is not None and int(top[0]) == size:
                self.files.write("checkpoint", data)
        return data

    def check_origin(self) -> None:
        """A log's origin is its identity: refuse to sign under a new one once checkpoints exist."""
        latest = self.latest()
        if latest is not None and latest.origin != self.origin():
            raise UsageError(f"log.origin is {self.origin()!r} but this log signed its checkpoints as "
                             f"{latest.origin!r}", hint=f"archiver config set log.origin {latest.origin}")

    # ---- the acts (each in its own module; here so a caller needs only the log) ----------------
    def checkpoint(self, *, stamp: bool = True, tsa_urls: Sequence[str] | None = None) -> LogCheckpointReport:
        """Sync and sign a checkpoint if the log grew (:func:`archiver.tlog.checkpoints.sign_checkpoint`)."""
        from archiver.tlog.checkpoints import sign_checkpoint

        return sign_checkpoint(self, stamp=stamp, tsa_urls=tsa_urls)

    def prove(self, record_id: str, *, sign_if_needed: bool = True, stamp: bool = True) -> bytes:
        """The tlog-proof@v1 file of a record's manifest leaf (:func:`archiver.tlog.checkpoints.prove`)."""
        from archiver.tlog.checkpoints import prove

        return prove(self, record_id, sign_if_needed=sign_if_needed, stamp=stamp)

    def audit(self, blobs: Any) -> LogAuditReport:
        """Every check of :func:`archiver.tlog.audit.audit` against the store's ``blobs``."""
        from archiver.tlog.audit import audit

        return audit(self, blobs)

    def verify_from(self, old_checkpoint: bytes) -> LogConsistencyReport:
        """An older checkpoint of this log against its latest (:func:`archiver.tlog.audit.verify_from`)."""
        from archiver.tlog.audit import verify_from

        return verify_from(self, old_checkpoint)


__all__ = ["LogKey", "StoredCheckpoint", "SyncResult", "TransparencyLog"]
