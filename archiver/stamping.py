"""Trusted time for records: ask each configured TSA for a token and keep it as a signed addendum.

One record: the token's imprint is SHA-256 of the signed manifest file (its blob name), so
``openssl ts -verify -digest <manifest sha256>`` checks it directly. Several records: the imprint
is SHA-256 of the RFC 6962 Merkle root over their manifest hashes, and each record's addendum
carries its inclusion proof: one TSA round-trip per batch, however large.

Write order (crash-safe like a capture): token and chain blobs → addendum blob → custody entry →
catalog row. ``rebuild-index`` recovers an addendum whose catalog row was lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from archiver.errors import ArchiverError, ConfigError, TimestampError
from archiver.provenance import merkle, tsp
from archiver.provenance.signing import sign_addendum_file
from archiver.provenance.tsa_client import post_query
from archiver.records import Addendum, MerkleProof, StampResult, TimestampEvidence

if TYPE_CHECKING:
    from archiver.ports import Store


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trust_anchors(archive: Store) -> list[x509.Certificate]:
    """The TSA certificates this store trusts (``tsa.certs``); empty when none are configured."""
    path = archive.config.str_("tsa.certs")
    if not path:
        return []
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read tsa.certs file {path}: {exc.strerror}") from exc
    try:
        return tsp.load_certs(data)
    except TimestampError as exc:
        raise ConfigError(f"tsa.certs {path}: {exc.message}") from exc


def stamp_records(archive: Store, record_ids: Sequence[str], key: Ed25519PrivateKey, *,
                  tsa_urls: Sequence[str] | None = None, deferred: bool = False, actor: str) -> list[StampResult]:
    """Timestamp ``record_ids`` with every configured TSA: one request per TSA for the whole set."""
    urls = list(tsa_urls) if tsa_urls is not None else [str(u) for u in archive.config.get("tsa.urls")]  # type: ignore[union-attr]
    if not urls:
        raise ConfigError("no timestamp authority configured",
                          hint="archiver config set tsa.urls https://tsa.example/tsr")
    if not record_ids:
        return []
    summaries = archive.resolve_many(record_ids)
    leaves = [bytes.fromhex(s.manifest_sha256) for s in summaries]
    if len(summaries) == 1:
        data = archive.blobs.read_bytes(summaries[0].manifest_sha256)
        root: bytes | None = None
        paths: list[list[bytes]] = [[]]
    else:
        root, paths = merkle.inclusion_proofs(leaves)
        data = root
    anchors = trust_anchors(archive)
    tolerance = float(archive.config.int_("tsa.tolerance"))
    timeout = archive.config.float_("tsa.timeout")
    retries = archive.config.int_("tsa.retries")
    ids = tuple(s.record_id for s in summaries)
    results: list[StampResult] = []
    for url in urls:
        try:
            query, digest, nonce = tsp.build_request(data)
            reply = post_query(url, query, timeout=timeout, retries=retries)
            resp, info = tsp.accept_response(reply, digest, nonce)
            if anchors:
                why = tsp.verify_against(resp, digest, anchors)
                if why is not None:
                    raise TimestampError(f"token from TSA {url} does not verify against tsa.certs: {why}",
                                         hint="check that tsa.certs holds this TSA's CA, and that its "
                                              "certificate has not expired")
        except ArchiverError as exc:
            results.append(StampResult(url, ids, ok=False, error=exc.message,
                                       batch_root=root.hex() if root else None))
            continue
        token_sha = archive.blobs.put_bytes(reply)
        chain_sha = archive.blobs.put_bytes(tsp.chain_pem(anchors, resp))
        now = _iso(dt.datetime.now(dt.UTC))
        signed = []
        rejected: dict[str, str] = {}
        for i, summary in enumerate(summaries):
            why = clock_disagreement(info.gen_time, summary.captured_at, tolerance, deferred=deferred)
            if why is not None:  # never attached: it would make the record fail verification for good
                rejected[summary.record_id] = why
                archive.note("timestamp-rejected", actor=actor, record_id=summary.record_id,
                             subject_sha256=token_sha, detail={"tsa": url, "gen_time": _iso(info.gen_time),
                                                               "reason": why})
                continue
            proof = None
            if root is not None:
                proof = MerkleProof(root=root.hex(), leaf_index=i, tree_size=len(summaries),
                                    path=tuple(p.hex() for p in paths[i]))
            evidence = TimestampEvidence(tsa_url=url, token_sha256=token_sha, chain_sha256=chain_sha,
                                         imprint=digest.hex(), gen_time=_iso(info.gen_time), serial=info.serial,
                                         tsa_name=info.tsa_name, policy=info.policy, merkle=proof,
                                         deferred=deferred)
            signed.append(sign_addendum_file(Addendum(kind="timestamp", record_id=summary.record_id,
                                                      manifest_sha256=summary.manifest_sha256, created_at=now,
                                                      timestamp=evidence), key))
        if signed:
            archive.commit_addenda(signed, actor=actor)  # one group commit for the batch
        if rejected:
            first = next(iter(rejected.values()))
            results.append(StampResult(url, tuple(rejected), ok=False, gen_time=_iso(info.gen_time),
                                       error=f"token not attached: {first}; the record stays unstamped "
                                             "(`archiver timestamp --pending` with another TSA stamps it)",
                                       batch_root=root.hex() if root else None))
        stamped = tuple(r for r in ids if r not in rejected)
        if stamped:
            results.append(StampResult(url, stamped, ok=True, gen_time=_iso(info.gen_time),
                                       batch_root=root.hex() if root else None))
    return results


def clock_disagreement(gen_time: dt.datetime, captured_at: str, tolerance: float, *, deferred: bool) -> str | None:
    """Why a token's genTime cannot vouch for a record captured at ``captured_at``, or None.

    The same rule verification applies (``verify.artifacts.token_checks``): genTime more than a minute
    before the capture (one of the two clocks is wrong), or — for a stamp taken at capture — more than
    ``tsa.tolerance`` after it. Checked before the token is attached, so a TSA whose clock is off never
    leaves a record that can never verify."""
    try:
        delta = (gen_time - dt.datetime.fromisoformat(captured_at.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return f"captured_at {captured_at!r} is not a time"
    if delta < -60:
        return (f"the TSA's genTime is {abs(delta):.0f} s before captured_at: its clock (or ours) is off")
    if delta > tolerance and not deferred:
        return (f"the TSA's genTime is {delta:.0f} s after captured_at, beyond tsa.tolerance ({tolerance:.0f} s): "
                "its clock (or ours) is off")
    return None


__all__ = ["clock_disagreement", "stamp_records", "trust_anchors"]
