"""Verification: one suite of checks (``checks.run_suite``) over an evidence source that a store
record (``source.StoreSource``) and a bundle record (``archiver.bundle.read.BundleSource``) both
provide. Each check has a category — integrity, trust, completeness, context — and the verdict
(verified / intact-untrusted / incomplete / tampered) is computed from categories and statuses
alone (``records.Verdict``); ``verdict`` says what each verdict means and exits with.

    source.py     the EvidenceSource protocol and the store's source
    checks.py     the suite: manifest, signatures and trust, artifacts and WARC, addenda, custody, chain
    artifacts.py  byte-level checks from bytes alone: WARC records, RFC 3161 tokens, derived texts
    custody.py    where a record came from: capture, or import with the source bundle's custody
    trust.py      keyring, pinned keys, and keys vouched for by rotation statements
    verdict.py    verdicts in words, exit codes
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archiver.records import RecordSummary, Verification
from archiver.verify.artifacts import Absent, derived_checks, token_checks, warc_checks
from archiver.verify.checks import addendum_check, run_suite
from archiver.verify.source import AddendumRef, EvidenceSource, StoreSource
from archiver.verify.trust import TrustDecision
from archiver.verify.verdict import VERDICT_MEANING, VERDICT_TEXT, exit_code, overall

if TYPE_CHECKING:
    from archiver.ports import WaybackWitness
    from store.custody import ChainReport


def verify_record(archive: WaybackWitness, summary: RecordSummary, *, wayback: bool = False,
                  chain: ChainReport | None = None) -> Verification:
    """Every check on a stored record; ``chain`` lets ``verify --all`` walk the custody log once."""
    return run_suite(StoreSource(archive, summary, wayback=wayback, chain=chain))


__all__ = ["VERDICT_MEANING", "VERDICT_TEXT", "Absent", "AddendumRef", "EvidenceSource", "StoreSource",
           "TrustDecision", "addendum_check", "derived_checks", "exit_code", "overall", "run_suite",
           "token_checks", "verify_record", "warc_checks"]
