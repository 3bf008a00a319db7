"""Append-only, hash-chained custody log (one JSON object per line).

Each entry names the hash of the entry before it, so deleting, reordering or editing any past
line breaks the chain from that point on. Appends hold an exclusive ``flock`` so several
processes can share one log, and each line goes out in a single ``write`` on an O_APPEND file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

GENESIS = "0" * 64


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
        return hashlib.sha256(rfc8785.dumps(self.body())).hexdigest()

    def to_json(self) -> str:
        """The log's own line format (what ``append`` writes)."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> CustodyEntry:
        return cls(**json.loads(line))


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CustodyLog:
    def __init__(self, path: Path) -> None:
        self.path = path

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
               subject_sha256: str | None = None, detail: dict[str, str] | None = None) -> CustodyEntry:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = self._last_line(fd)
            if last:
                prev_entry = json.loads(last)
                prev_hash, seq = str(prev_entry["hash"]), int(prev_entry["seq"]) + 1
            else:
                prev_hash, seq = GENESIS, 1
            entry = CustodyEntry(seq=seq, time=_now(), event=event, actor=actor, record_id=record_id,
                                 subject_sha256=subject_sha256, prev=prev_hash, detail=dict(detail or {}))
            entry = CustodyEntry(**{**asdict(entry), "hash": entry.compute_hash()})
            line = json.dumps(asdict(entry), sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
            os.write(fd, line)
            os.fsync(fd)
            return entry
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def entries(self) -> Iterator[CustodyEntry]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for line in fh:
                if line.strip():
                    try:
                        yield CustodyEntry(**json.loads(line))
                    except (ValueError, TypeError):
                        continue  # a damaged line: verify_chain reports it, readers skip it

    def for_record(self, record_id: str) -> list[CustodyEntry]:
        return [e for e in self.entries() if e.record_id == record_id]

    def verify_chain(self) -> ChainReport:
        """Walk the whole log; report every break rather than stopping at the first."""
        problems: list[str] = []
        prev, expected_seq, count = GENESIS, 1, 0
        if not self.path.exists():
            return ChainReport(0, ())
        with open(self.path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
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
