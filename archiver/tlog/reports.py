"""What the log's commands answer (``archiver log … --json``), as typed records like every report:
``to_dict()`` is the JSON, the schema is generated from the type (docs/schemas/log-*.json)."""

from __future__ import annotations

from dataclasses import dataclass

from archiver.schema import Report


@dataclass(frozen=True, slots=True)
class LogStamp(Report):
    """One TSA's RFC 3161 token over a checkpoint file (``checkpoints/<size>.<n>.tsr``), or why not."""

    tsa_url: str
    ok: bool
    path: str | None = None
    gen_time: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LogCheckpointReport(Report):
    """A checkpoint: its origin, size and root (base64 as in the note), the note, and its stamps.
    ``new`` is false when the log had not grown since the last checkpoint (that one is returned)."""

    origin: str
    size: int
    root: str
    note: str
    new: bool
    path: str
    vkey: str
    signed_at: str | None = None
    stamps: tuple[LogStamp, ...] = ()


@dataclass(frozen=True, slots=True)
class LogKeyReport(Report):
    """The log's verifier key (``name+hex+base64``) and its origin: all a third party needs besides a
    checkpoint it kept."""

    origin: str
    vkey: str
    key_id: str


@dataclass(frozen=True, slots=True)
class LogSyncReport(Report):
    """A sync: leaves appended, outbox rows read, the log's size and outbox position after it."""

    appended: int
    outbox_rows: int
    size: int
    outbox_seq: int
    tiles: str


@dataclass(frozen=True, slots=True)
class LogProofReport(Report):
    """A c2sp.org/tlog-proof@v1 file written for a record's manifest leaf."""

    record_id: str
    index: int
    size: int
    entry: str
    path: str | None
    proof: str


@dataclass(frozen=True, slots=True)
class LogProblem(Report):
    """One FAIL of an audit or a consistency check: what, where, and (when known) whose record."""

    check: str
    message: str
    index: int | None = None
    record_id: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class LogAuditReport(Report):
    """``log audit``: the tree rebuilt from the entry bundles and checked against the catalog, the
    stored records and every signed checkpoint. ``ok`` only when ``problems`` is empty."""

    ok: bool
    size: int
    entries_checked: int
    records_checked: int
    checkpoints_checked: int
    synced: int
    root: str
    problems: tuple[LogProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class LogConsistencyReport(Report):
    """``log verify --from``: an older checkpoint against the log's current one (a consistency proof)."""

    ok: bool
    origin: str
    old_size: int
    old_root: str
    new_size: int
    new_root: str
    proof_hashes: int
    problems: tuple[LogProblem, ...] = ()


__all__ = ["LogAuditReport", "LogCheckpointReport", "LogConsistencyReport", "LogKeyReport", "LogProblem",
           "LogProofReport", "LogStamp", "LogSyncReport"]
