"""What a leaf of the transparency log is: one signed document (a manifest or an addendum) of a record.

The leaf is one line of ASCII (docs/formats.md, "Transparency log entries")::

    archiver.tlog-entry/v1 manifest 7KQ2-M9XD sha256:<64 hex>\\n
    archiver.tlog-entry/v1 addendum 7KQ2-M9XD sha256:<64 hex>\\n

Why so little: the log may be public while records are private, so a leaf carries no URL, title or
time — only what binds the record ID to the exact bytes of the signed file (its SHA-256, which is also
its blob name and what a filing cites). Anyone holding the record recomputes the line and its leaf
hash. The bytes are canonical (one spelling per document), so the same document is the same leaf:
an import of a bundle already logged adds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archiver.errors import IntegrityError
from archiver.tlog.hashing import leaf_hash

PREFIX = "archiver.tlog-entry/v1"
KINDS = ("manifest", "addendum")
#: events whose subject is a record's manifest (an import also names the addenda it brought)
MANIFEST_EVENTS = frozenset({"capture", "import", "import-forced"})
_LINE = re.compile(rb"archiver\.tlog-entry/v1 (manifest|addendum) ([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}) "
                   rb"sha256:([0-9a-f]{64})\n")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One leaf: the kind of document, its record, the SHA-256 (hex) of its file."""

    kind: str
    record_id: str
    sha256: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"not a log entry kind: {self.kind!r}")
        if _LINE.fullmatch(self._line()) is None:
            raise ValueError(f"not a log entry: {self._line()[:120]!r}")

    def _line(self) -> bytes:
        return f"{PREFIX} {self.kind} {self.record_id} sha256:{self.sha256}\n".encode("ascii", "replace")

    def to_bytes(self) -> bytes:
        return self._line()

    def leaf_hash(self) -> bytes:
        return leaf_hash(self._line())

    @classmethod
    def from_bytes(cls, data: bytes) -> LogEntry:
        m = _LINE.fullmatch(data)
        if m is None:
            raise IntegrityError(f"not an archiver log entry: {data[:100]!r}")
        return cls(m.group(1).decode(), m.group(2).decode(), m.group(3).decode())


def entries_of(row: Mapping[str, Any]) -> list[LogEntry]:
    """The leaves an outbox row appends, in order: a capture or import names the record's manifest
    (an import also the addenda it carried, in the bundle's order); every other evidence event
    (timestamp, wayback, derived, and kinds to come: publish, unpublish…) names one addendum."""
    rid, subject = str(row["record_id"] or ""), str(row["subject_sha256"] or "")
    detail = row.get("detail") or {}
    if row["event"] in MANIFEST_EVENTS:
        out = [LogEntry("manifest", rid, subject)]
        out += [LogEntry("addendum", rid, sha) for sha in str(detail.get("addenda", "")).split(",") if sha]
        return out
    return [LogEntry("addendum", rid, subject)]


__all__ = ["KINDS", "PREFIX", "LogEntry", "entries_of"]
