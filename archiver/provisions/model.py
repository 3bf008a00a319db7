"""The provision reports: what ``provision … --json`` prints and ``/api/v1/provisions…`` answers."""

from __future__ import annotations

from dataclasses import dataclass

from archiver.schema import Report


@dataclass(frozen=True, slots=True)
class Provision(Report):
    """A pinned clause as it stands: its current text, the record that holds it, and its status."""

    provision_id: str
    label: str | None
    url: str
    entity: str | None
    document: str | None
    section: str | None  # the heading of the section holding the current text ("" before the first heading)
    text: str  # the current clause text, the document's own characters (the last text found)
    sha256: str  # of ``text``, UTF-8
    record_id: str  # the record holding the current text (the latest observation that found it)
    pinned_record_id: str  # the record it was pinned in
    first_tracked: str  # when it was pinned
    last_verified: str  # capture time of the latest record in which its text was found
    status: str  # pinned | unchanged | changed | moved | removed (the latest observation)
    versions: int  # distinct texts seen
    active: bool  # false once `provision remove` stopped tracking it
    untracked_at: str | None = None


@dataclass(frozen=True, slots=True)
class ClauseEdit(Report):
    """One word-level edit from the previous version's text to this one's."""

    op: str
    removed: str
    added: str
    at_word_a: int
    at_word_b: int


@dataclass(frozen=True, slots=True)
class ProvisionVersion(Report):
    """One text of the clause, with the records that hold it (first and latest) and the edit from the
    text before it."""

    number: int
    text: str
    sha256: str
    section: str | None
    record_id: str  # the first record holding this text
    first_seen: str  # that record's capture time
    last_record_id: str  # the latest record holding it
    last_seen: str
    edits: tuple[ClauseEdit, ...] = ()


@dataclass(frozen=True, slots=True)
class ProvisionCheck(Report):
    """One observation of a provision in one record (append-only: ``show`` lists them all)."""

    provision_id: str
    record_id: str
    captured_at: str  # the record's capture time
    checked_at: str
    status: str  # pinned | unchanged | changed | moved | removed
    section: str | None
    text: str | None  # the text found (None when removed)
    sha256: str | None
    similarity: float  # 1.0 for exact, the match's similarity when changed, 0 when removed


@dataclass(frozen=True, slots=True)
class ProvisionReport(Report):
    """A provision with every version of its text and every observation: ``provision show``."""

    provision: Provision
    versions: tuple[ProvisionVersion, ...]
    checks: tuple[ProvisionCheck, ...]
    document_versions: int  # versions of the whole document its URL has had ("changed before" when > 1)


__all__ = ["ClauseEdit", "Provision", "ProvisionCheck", "ProvisionReport", "ProvisionVersion"]
