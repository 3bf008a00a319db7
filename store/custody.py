"""Append-only, hash-chained custody log (one JSON object per line).

Each entry names the hash of the entry before it, so deleting, reordering or editing any past
line breaks the chain from that point on. Appends hold an exclusive ``flock`` so several
processes can share one log, and each line goes out in a single ``write`` on an O_APPEND file.

With a PostgreSQL catalog the same lines live in a ``custody`` table instead, appended under a
transaction-scoped advisory lock, so workers on many machines extend one chain.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from archiver.canonical import canonical
from archiver.errors import store_write_error
from archiver.records import asdict

if TYPE_CHECKING:
    from store.catalog import PostgresCatalog

GENESIS = "0" * 64
_LOCK_ID = 7232  # pg_advisory_xact_lock key for custody appends


@dataclass(frozen=True, slots=True)
class CustodyEntry:
    seq: int
    time: str
    event: str
    actor: str
    record_id: str | None
    subject_sha256: str | None
    prev: str
    detail: dict[str, str] = field(default_factory=dict)
    hash: str = ""

    def body(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("hash")
        return d

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical(self.body())).hexdigest()

    def to_json(self) -> str:
        """The log's own line format (what ``append`` writes)."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> CustodyEntry:
        return cls(**json.loads(line))


class Event(NamedTuple):
    """One entry still to be chained: what happened to which record and object."""

    event: str
    record_id: str | None = None
    subject_sha256: str | None = None
    detail: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _next_entry(last: bytes | str | None, event: str, actor: str, record_id: str | None,
                subject_sha256: str | None, detail: dict[str, str] | None) -> CustodyEntry:
    if last:
        prev_entry = json.loads(last)
        prev_hash, seq = str(prev_entry["hash"]), int(prev_entry["seq"]) + 1
    else:
        prev_hash, seq = GENESIS, 1
    entry = CustodyEntry(seq=seq, time=_now(), event=event, actor=actor, record_id=record_id,
                         subject_sha256=subject_sha256, prev=prev_hash, detail=dict(detail or {}))
    return CustodyEntry(**{**asdict(entry), "hash": entry.compute_hash()})


def check_chain(lines: Iterator[tuple[int, bytes | str]]) -> ChainReport:
    """Walk the whole log; report every break rather than stopping at the first."""
    problems: list[str] = []
    prev, expected_seq, count = GENESIS, 1, 0
    for lineno, line in lines:
        if not line.strip():
            continue
        count += 1
        try:
            entry = CustodyEntry(**json.loads(line))
        except (ValueError, TypeError) as exc:
            problems.append(f"line {lineno}: unreadable entry ({exc})")
            prev, expected_seq = "?", expected_seq + 1
            continue
        if entry.seq != expected_seq:
            problems.append(f"line {lineno}: sequence {entry.seq}, expected {expected_seq}")
        if prev != "?" and entry.prev != prev:
            problems.append(f"line {lineno}: does not chain to the entry before it")
        if entry.compute_hash() != entry.hash:
            problems.append(f"line {lineno}: entry hash does not match its content")
        prev, expected_seq = entry.hash, entry.seq + 1
    return ChainReport(count, tuple(problems))


def _parse(lines: Iterator[bytes | str]) -> Iterator[CustodyEntry]:
    for line in lines:
        if line.strip():
            try:
                yield CustodyEntry(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a damaged line: verify_chain reports it, readers skip it


class CustodyLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        # for_record's index: a long-lived process (the web server) reads the log once, then only what
        # was appended. Keyed by (inode, size, mtime): a replaced, shrunk or rewritten file is read again.
        self._index_lock = threading.Lock()
        self._indexed: tuple[int, int, int] = (0, 0, 0)
        self._by_record: dict[str, list[CustodyEntry]] = {}

    def _last_line(self, fd: int) -> bytes | None:
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        block = 4096
        pos = size
        buf = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            buf = os.pread(fd, step, pos) + buf
            stripped = buf.rstrip(b"\n")
            if b"\n" in stripped:
                return stripped.rsplit(b"\n", 1)[1]
        return buf.rstrip(b"\n")

    def append(self, event: str, *, actor: str, record_id: str | None = None,
               subject_sha256: str | None = None, detail: dict[str, str] | None = None,
               locked_check: Callable[[], None] | None = None) -> CustodyEntry:
        """One entry. ``locked_check`` runs once the log's lock is held, before anything is written
        (the write path refuses there when the store's catalog has moved meanwhile)."""
        return self.append_at([Event(event, record_id, subject_sha256, detail)], actor=actor,
                              locked_check=locked_check)[0][-1]

    def append_many(self, events: Sequence[Event], *, actor: str) -> list[CustodyEntry]:
        """Chain several entries under one lock, one write and one fsync (a batch's group commit):
        all of them reach the disk or, after a failed write, none of them stays in the file."""
        return self.append_at(events, actor=actor)[0]

    def append_at(self, events: Sequence[Event], *, actor: str,
                  locked_check: Callable[[], None] | None = None) -> tuple[list[CustodyEntry], int]:
        """``append_many`` that also returns the file offset just after the new lines (the write
        path's journal position: everything before it is in the catalog once its commit lands)."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if locked_check is not None:
                locked_check()
            last: bytes | str | None = self._last_line(fd)
            entries: list[CustodyEntry] = []
            for ev in events:
                entries.append(_next_entry(last, ev.event, actor, ev.record_id, ev.subject_sha256, ev.detail))
                last = entries[-1].to_json()
            data = b"".join(e.to_json().encode("utf-8") + b"\n" for e in entries)
            size = os.fstat(fd).st_size
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, "short write (disk full?)", str(self.path))
                os.fsync(fd)
            except OSError as exc:
                # a partial line would break the chain for every later reader: take it back
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise store_write_error(exc, f"appending to the custody log {self.path}") from exc
            return entries, size + len(data)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the log's append lock: no entry is added meanwhile (``store migrate --to`` copies it)."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def entries(self) -> Iterator[CustodyEntry]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            yield from _parse(iter(fh))

    def lines(self) -> Iterator[str]:
        """The raw lines, for ``store migrate``."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for line in fh:
                if line.strip():
                    yield line.decode("utf-8", "replace").rstrip("\n")

    def for_record(self, record_id: str) -> list[CustodyEntry]:
        """A record's entries. Display and per-record checks use this; ``verify_chain`` always reads the
        whole file, so an edit that kept the size and time would still break the chain check."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        with self._index_lock:
            ino, size, mtime = self._indexed
            appended = st.st_ino == ino and st.st_size >= size and (st.st_size > size or st.st_mtime_ns == mtime)
            if not appended:
                self._by_record, size = {}, 0
            if st.st_size > size:
                with open(self.path, "rb") as fh:
                    fh.seek(size)
                    data = fh.read(st.st_size - size)
                end = data.rfind(b"\n") + 1  # complete lines only; a line being written is read next time
                for e in _parse(iter(data[:end].splitlines())):
                    if e.record_id:
                        self._by_record.setdefault(e.record_id, []).append(e)
                size += end
            self._indexed = (st.st_ino, size, st.st_mtime_ns)
            return list(self._by_record.get(record_id, ()))

    def verify_chain(self) -> ChainReport:
        if not self.path.exists():
            return ChainReport(0, ())
        with open(self.path, "rb") as fh:
            return check_chain(enumerate(fh, 1))


class PostgresCustodyLog(CustodyLog):
    """The same chain in the catalog database: one row per line, the line text exactly as in a file."""

    def __init__(self, catalog: PostgresCatalog) -> None:
        self.catalog = catalog
        self.path = Path("/nonexistent")  # no file: everything goes through the database

    def create(self) -> None:
        """The custody table is the custody subsystem's migration (store/migrations/custody.py),
        applied with the catalog's other migrations; this brings the catalog up to date."""
        self.catalog.migrate()

    def append(self, event: str, *, actor: str, record_id: str | None = None,
               subject_sha256: str | None = None, detail: dict[str, str] | None = None,
               locked_check: Callable[[], None] | None = None) -> CustodyEntry:
        with self.catalog.db() as d, d.tx():
            if locked_check is not None:
                locked_check()
            return self.append_in(d, event, actor=actor, record_id=record_id, subject_sha256=subject_sha256,
                                  detail=detail)

    def append_many(self, events: Sequence[Event], *, actor: str) -> list[CustodyEntry]:
        with self.catalog.db() as d, d.tx():
            return [self.append_in(d, ev.event, actor=actor, record_id=ev.record_id,
                                   subject_sha256=ev.subject_sha256, detail=ev.detail) for ev in events]

    def append_at(self, events: Sequence[Event], *, actor: str,
                  locked_check: Callable[[], None] | None = None) -> tuple[list[CustodyEntry], int]:
        """No journal position on PostgreSQL: entries commit in the caller's transaction."""
        if locked_check is not None:
            locked_check()
        return self.append_many(events, actor=actor), 0

    @staticmethod
    def append_in(d: Any, event: str, *, actor: str, record_id: str | None = None,
                  subject_sha256: str | None = None, detail: dict[str, str] | None = None) -> CustodyEntry:
        """Append inside the caller's transaction, so the entry commits (or not) with its record."""
        d.rows("SELECT pg_advisory_xact_lock(?)", (_LOCK_ID,))
        last = d.one("SELECT line FROM custody ORDER BY seq DESC LIMIT 1")
        entry = _next_entry(last[0] if last else None, event, actor, record_id, subject_sha256, detail)
        d.run("INSERT INTO custody VALUES (?,?,?)", (entry.seq, entry.record_id, entry.to_json()))
        return entry

    def _rows(self, where: str = "", args: tuple[str, ...] = ()) -> list[str]:
        with self.catalog.db() as d:
            return [r[0] for r in d.rows(f"SELECT line FROM custody {where} ORDER BY seq", args)]  # noqa: S608

    def entries(self) -> Iterator[CustodyEntry]:
        yield from _parse(iter(self._rows()))

    def lines(self) -> Iterator[str]:
        yield from self._rows()

    def for_record(self, record_id: str) -> list[CustodyEntry]:
        return list(_parse(iter(self._rows("WHERE record_id=?", (record_id,)))))

    def verify_chain(self) -> ChainReport:
        return check_chain(enumerate(self._rows(), 1))
