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
class LogWitnessOutcome(Report):
    """What one witness did with a checkpoint (c2sp.org/tlog-witness ``add-checkpoint``): ``cosigned``
    (its cosignature verified and is stored), ``already`` (the checkpoint carried it), ``superseded`` (it
    had already cosigned a newer checkpoint of this log: a race, not a fork), ``refused`` (an
    HTTP status or an answer we could not accept: ``reason``), ``unreachable`` (down or too slow)."""

    name: str
    url: str
    outcome: str
    reason: str | None = None
    status: int | None = None
    old_size: int | None = None
    size: int | None = None
    timestamp: int | None = None


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
    witnesses: tuple[LogWitnessOutcome, ...] = ()


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


@dataclass(frozen=True, slots=True)
class LogWitnessEntry(Report):
    """A witness the log submits its checkpoints to, and the size it last cosigned."""

    name: str
    vkey: str
    url: str
    size: int
    added_at: str


@dataclass(frozen=True, slots=True)
class LogProofCheckReport(Report):
    """``log verify-proof``: a tlog-proof file checked offline against a log key and, when one is given,
    a tlog-policy (which witnesses' cosignatures, how many). ``ok`` only when inclusion, the log's
    signature and the policy's quorum all hold; ``reason`` says why not."""

    ok: bool
    origin: str | None = None
    index: int | None = None
    size: int | None = None
    entry: str | None = None
    quorum: str | None = None
    cosigned_by: tuple[str, ...] = ()
    reason: str | None = None


__all__ = ["LogAuditReport", "LogCheckpointReport", "LogConsistencyReport", "LogKeyReport", "LogProblem",
           "LogProofCheckReport", "LogProofReport", "LogStamp", "LogSyncReport", "LogWitnessEntry", "LogWitnessOutcome"]
