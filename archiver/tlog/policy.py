"""c2sp.org/tlog-policy: which logs a verifier accepts, which witnesses it knows, and the quorum of
witness cosignatures a checkpoint needs before an inclusion proof under it is believed.

Why: a log's signature alone is the operator's word; a proof is only as strong as the independent
witnesses that cosigned its checkpoint (each cosigned only a tree consistent with every earlier one it
saw). The policy is the verifier's statement of whom it trusts for that, in the format the
transparency world already reads (Sigsum's tools take the same file)::

    log archive.example.org/evidence+1a2b3c4d+AQ…
    witness other-org other.example/witness+5e6f7a8b+BA… https://witness.other.example
    quorum other-org

Parsing follows the spec: line based, ``#`` comments, space/tab separators, only tab, newline and
0x20–0x7E / 0x80–0xFF octets; names are opaque octets, defined before use, ``none`` predefined; a
group is ``all``, ``any`` or ``k`` (1 ≤ k ≤ n) of distinct members; exactly one ``quorum`` line;
duplicate log or witness keys (the same public key) refused. Log keys are Ed25519 (0x01), witness
keys Ed25519 cosigners (0x04).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from archiver.errors import ArchiverError, UsageError
from archiver.tlog.note import COSIGNATURE_V1, ED25519, Checkpoint, Note, Verifier, open_checkpoint
from archiver.tlog.proofs import ProofFile, verify_proof
from archiver.tlog.reports import LogProofCheckReport

#: the spec recommends supporting at least 32 of each; far more is refused as a malformed file
MAX_ITEMS = 1024
MAX_POLICY_BYTES = 1 << 20
_BAD_OCTET = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Group:
    """``group <name> <k> <member>...``: witnessed when at least ``k`` of its members are."""

    name: str
    k: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed tlog-policy: accepted logs, named witnesses, groups in file order, the quorum's name."""

    logs: tuple[Verifier, ...]
    witnesses: tuple[tuple[str, Verifier], ...]
    groups: tuple[Group, ...]
    quorum: str

    def witness_keys(self) -> list[Verifier]:
        return [v for _, v in self.witnesses]

    def satisfied(self, cosigned: set[Verifier]) -> bool:
        """Whether the witnesses whose cosignatures verified make the quorum."""
        done: dict[str, bool] = {name: v in cosigned for name, v in self.witnesses}
        for g in self.groups:  # each group names only what precedes it: one pass in file order
            done[g.name] = sum(done[m] for m in g.members) >= g.k
        return True if self.quorum == "none" else done[self.quorum]

    def describe(self) -> str:
        if self.quorum == "none":
            return "none"
        g = next((g for g in self.groups if g.name == self.quorum), None)
        return self.quorum if g is None else f"{self.quorum} ({g.k} of {', '.join(g.members)})"


def _vkey(text: str, kind: int, what: str, lineno: int) -> Verifier:
    try:
        v = Verifier.from_vkey(text)
    except UsageError as exc:
        raise UsageError(f"policy line {lineno}: {exc.message}") from exc
    if v.sig_type != kind:
        raise UsageError(f"policy line {lineno}: a {what} key must be of type 0x{kind:02x}")
    return v


def parse(data: bytes) -> Policy:
    """Parse a tlog-policy file; :class:`UsageError` names the line that is wrong."""
    if len(data) > MAX_POLICY_BYTES:
        raise UsageError("a policy file of more than 1 MiB is refused")
    if _BAD_OCTET.search(data):
        raise UsageError("a policy file may hold no control character other than tab and newline")
    logs: list[Verifier] = []
    witnesses: list[tuple[str, Verifier]] = []
    groups: list[Group] = []
    names: set[str] = {"none"}
    keys: set[bytes] = set()
    quorum: str | None = None
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        words = [w.decode("utf-8", "surrogateescape") for w in raw.replace(b"\t", b" ").split(b" ") if w]
        if not words or words[0].startswith("#"):
            continue
        if len(logs) + len(witnesses) + len(groups) > MAX_ITEMS:
            raise UsageError(f"a policy of more than {MAX_ITEMS} logs, witnesses and groups is refused")
        head, args = words[0], words[1:]
        if head == "log" and len(args) in (1, 2):
            v = _vkey(args[0], ED25519, "log", lineno)
            if v.public_key in keys:
                raise UsageError(f"policy line {lineno}: a duplicate key")
            keys.add(v.public_key)
            logs.append(v)
        elif head == "witness" and len(args) in (2, 3):
            name, v = args[0], _vkey(args[1], COSIGNATURE_V1, "witness", lineno)
            if name in names:
                raise UsageError(f"policy line {lineno}: the name {name!r} is already defined")
            if v.public_key in keys:
                raise UsageError(f"policy line {lineno}: a duplicate key")
            keys.add(v.public_key)
            names.add(name)
            witnesses.append((name, v))
        elif head == "group" and len(args) >= 3:
            name, rule, members = args[0], args[1], tuple(args[2:])
            if name in names:
                raise UsageError(f"policy line {lineno}: the name {name!r} is already defined")
            for m in members:
                if m == "none" or m not in names:
                    raise UsageError(f"policy line {lineno}: group member {m!r} is not a witness or group "
                                     "defined above")
            if len(set(members)) != len(members):
                raise UsageError(f"policy line {lineno}: a group lists a member twice")
            k = {"all": len(members), "any": 1}.get(rule)
            if k is None:
                if not re.fullmatch(r"[1-9][0-9]{0,5}", rule) or int(rule) > len(members):
                    raise UsageError(f"policy line {lineno}: the threshold must be all, any or 1..{len(members)}")
                k = int(rule)
            names.add(name)
            groups.append(Group(name, k, members))
        elif head == "quorum" and len(args) == 1:
            if quorum is not None:
                raise UsageError(f"policy line {lineno}: a second quorum line")
            if args[0] not in names:
                raise UsageError(f"policy line {lineno}: the quorum {args[0]!r} is not defined above")
            quorum = args[0]
        else:
            raise UsageError(f"policy line {lineno}: not a log, witness, group or quorum line")
    if quorum is None:
        raise UsageError("a policy needs a quorum line (`quorum none` requires no witness)")
    return Policy(tuple(logs), tuple(witnesses), tuple(groups), quorum)


def load(path: Path) -> Policy:
    try:
        return parse(path.expanduser().read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read the policy file {path}: {exc.strerror}") from exc


def check(proof: bytes, policy: Policy | None, *, vkeys: Sequence[str | Verifier] = (),
          leaf: bytes | None = None) -> LogProofCheckReport:
    """Verify a tlog-proof file against a policy: inclusion under a checkpoint signed by one of the
    accepted logs (``vkeys`` if given, else the policy's), cosigned by a quorum of its witnesses.

    Never raises for a proof that fails: ``ok`` is false and ``reason`` says why (a bad vkey or
    policy is the caller's error and raises :class:`UsageError`)."""
    keys = [Verifier.from_vkey(k) if isinstance(k, str) else k for k in vkeys]
    if not keys and policy is not None:
        keys = list(policy.logs)
    if not keys:
        raise UsageError("no log key to verify the proof with", hint="give --vkey, or a policy with a log line")
    if policy is not None and policy.logs and any(k not in policy.logs for k in keys):
        raise UsageError("the log key given is not one the policy accepts")
    witnesses = policy.witness_keys() if policy is not None else []
    quorum = policy.describe() if policy is not None else None
    try:
        parsed = ProofFile.parse(proof)
        origin = Checkpoint.parse(Note.parse(parsed.checkpoint).text).origin
        key = next((k for k in keys if k.name == origin), None)
        if key is None:
            return LogProofCheckReport(ok=False, origin=origin, quorum=quorum,
                                       reason=f"no accepted log key is named {origin!r} (the checkpoint's origin)")
        got = verify_proof(proof, key, leaf, witnesses=witnesses)
        cosigned = {v.verifier for v in open_checkpoint(parsed.checkpoint, key, witnesses).verified
                    if v.verifier.sig_type == COSIGNATURE_V1}
    except ArchiverError as exc:
        return LogProofCheckReport(ok=False, quorum=quorum, reason=exc.message)
    names = tuple(n for n, v in (policy.witnesses if policy is not None else ()) if v in cosigned)
    entry = got.entry.decode("ascii", "replace").strip()
    ok = policy is None or policy.satisfied(cosigned)
    reason = None if ok else (f"the checkpoint is cosigned by {', '.join(names) or 'no witness of the policy'}; "
                              f"the policy's quorum {quorum} is not met")
    return LogProofCheckReport(ok=ok, origin=got.origin, index=got.index, size=got.size, entry=entry,
                               quorum=quorum, cosigned_by=names, reason=reason)


__all__ = ["Group", "Policy", "check", "load", "parse"]
