"""Verdicts in words and exit codes. The verdict itself is computed in ``records.Verdict.of`` from
each check's category and status (integrity FAIL → tampered; else completeness FAIL → incomplete;
else trust FAIL → intact-untrusted; else verified): nothing here reads a check's text.

Exit codes of ``archiver verify`` (a record, ``--all``, or a bundle): 0 only for ``verified``;
1 for ``intact-untrusted``, ``incomplete`` and ``tampered`` (with ``--all`` or a bundle: when any
record or the package is not verified). A context check (the version chain, Wayback corroboration)
is PASS or SKIPPED, never FAIL, so it never changes the exit code.
"""

from __future__ import annotations

from archiver.records import Verdict, Verification

VERDICT_TEXT = {Verdict.VERIFIED: "VERIFIED", Verdict.INTACT_UNTRUSTED: "INTACT, SIGNER NOT TRUSTED",
                Verdict.INCOMPLETE: "INCOMPLETE", Verdict.TAMPERED: "TAMPERED"}

VERDICT_MEANING = {
    Verdict.VERIFIED: "every hash, signature and timestamp holds, and a key you trust signed it",
    Verdict.INTACT_UNTRUSTED: "every hash and signature holds, but no key or TSA you trust vouches for it",
    Verdict.INCOMPLETE: "what is there holds, but something the record names is absent",
    Verdict.TAMPERED: "something does not match what was signed",
}


def overall(reports: list[Verification]) -> Verdict:
    """The verdict of several reports together: the worst of them."""
    return Verdict.worst([r.verdict for r in reports])


def exit_code(verdict: Verdict) -> int:
    return 0 if verdict is Verdict.VERIFIED else 1
