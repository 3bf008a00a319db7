"""Signing checkpoints (with their RFC 3161 stamps), and proving a record's inclusion under one.

A checkpoint is signed over the log as it is after a sync; before it is published its partial tiles
are written (a reader of the checkpoint finds every tile it needs), then ``checkpoints/<size>`` (kept
forever: an auditor compares every one of them with the tree), then one RFC 3161 token per configured
TSA over the SHA-256 of that file (``checkpoints/<size>.<n>.tsr``, with the chain a third party passes
to ``openssl ts -verify -CAfile`` as ``.chain.pem``): a token bounds when every entry under the
checkpoint existed. Then the catalog row and ``checkpoint`` (the latest), under the write lock. Last,
every configured witness is asked to cosign it (:mod:`archiver.tlog.cosigning`): its cosignature joins
the stored note, and a witness that refuses or is down is one outcome in the report.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from archiver.errors import ArchiverError, ConfigError, NotFoundError, StoreCorruptError, TimestampError
from archiver.tlog.cosigning import submit
from archiver.tlog.note import Checkpoint, sign_note
from archiver.tlog.proofs import ProofFile
from archiver.tlog.reports import LogCheckpointReport, LogStamp, LogWitnessOutcome

if TYPE_CHECKING:
    from cryptography import x509

    from archiver.tlog.log import StoredCheckpoint, TransparencyLog

log = logging.getLogger(__name__)


def sign_checkpoint(tlog: TransparencyLog, *, stamp: bool = True,
                    tsa_urls: Sequence[str] | None = None) -> LogCheckpointReport:
    """Sync, then sign a checkpoint of the whole log if it grew since the last one (else return that)."""
    tlog.sync()
    tlog.check_origin()
    origin = tlog.origin()
    size = tlog.size()
    latest = tlog.latest()
    if latest is not None and latest.size > size:
        raise StoreCorruptError(f"the log holds {size} entries but signed a checkpoint of {latest.size}",
                                hint="run `archiver log audit`: entries were removed from the catalog")
    if latest is not None and latest.size == size:
        tlog.record_checkpoint(latest.size, latest.root, latest.origin, latest.note)  # republish if cut off
        outcomes = submit(tlog, latest)  # a witness that missed it (down then) gets it now
        again = tlog.latest()
        assert again is not None
        return _report(tlog, again, new=False, witnesses=outcomes)
    root = tlog.root(size)
    _refuse_fork(tlog, size, root)
    note = sign_note(Checkpoint(origin, size, root).text(), tlog.signer())
    tlog.write_partial_tiles(size)
    path = tlog.checkpoint_path(size)
    tlog.files.write(path, note)
    stamps: tuple[LogStamp, ...] = ()
    if stamp:
        urls = list(tsa_urls) if tsa_urls is not None else [str(u) for u in tlog.config.get("tsa.urls")]  # type: ignore[union-attr]
        stamps = tuple(_stamp(tlog, path, note, i, url) for i, url in enumerate(urls))
    tlog.record_checkpoint(size, root, origin, note)
    signed = tlog.latest()
    assert signed is not None
    outcomes = submit(tlog, signed)  # after it is signed and published: no witness can stop a checkpoint
    done = tlog.latest()
    assert done is not None
    return _report(tlog, done, new=True, stamps=stamps, witnesses=outcomes)


def _refuse_fork(tlog: TransparencyLog, size: int, root: bytes) -> None:
    """Never sign a tree that the log's own published files contradict. The catalog may have been
    restored from a backup (or edited) while ``log/`` — on S3, say — kept what was published since: a
    checkpoint there that is larger than the tree, or whose root the tree does not reproduce at its size,
    means signing now would fork the log; and a checkpoint file is never written over with other bytes."""
    from archiver.tlog.note import Verifier, open_checkpoint

    key = Verifier.from_vkey(tlog.vkey())
    found: list[tuple[str, bytes]] = []
    for path in ["checkpoint", *sorted(tlog.files.list("checkpoints/"),
                                       key=lambda p: int(p.rsplit("/", 1)[-1]) if p.rsplit("/", 1)[-1].isdigit()
                                       else -1)[-3:]]:
        if path.endswith(".tsr") or path.endswith(".pem"):
            continue
        data = tlog.files.read(path)
        if data is not None:
            found.append((path, data))
    for path, data in found:
        try:
            cp = open_checkpoint(data, key).checkpoint
        except ArchiverError:
            continue  # not ours (another key): audit reports it; it cannot be forked by our signature
        if cp.size > size:
            raise StoreCorruptError(f"the log's {path} is a signed checkpoint of {cp.size} entries, the catalog holds "
                                    f"{size}: the catalog was restored or rolled back; signing now would fork the log",
                                    hint="restore the catalog that matches the published log, then `archiver log "
                                         "audit`; the published checkpoints are what third parties hold")
        if tlog.root(cp.size) != cp.root:
            raise StoreCorruptError(f"the log's {path} signed a different tree of {cp.size} entries than the "
                                    "catalog holds: signing now would fork the log",
                                    hint="run `archiver log audit`; keep both checkpoints as evidence")
    existing = tlog.files.read(tlog.checkpoint_path(size))
    if existing is not None:
        try:
            if open_checkpoint(existing, key).checkpoint.root != root:
                raise StoreCorruptError(f"{tlog.checkpoint_path(size)} already holds another tree of this size: "
                                        "it is never written over", hint="run `archiver log audit`")
        except ArchiverError as exc:
            if isinstance(exc, StoreCorruptError):
                raise


def checkpoint_at_end(tlog: TransparencyLog, *, stamp: bool = True) -> LogCheckpointReport | None:
    """What a batch or a watch run does at its end: sign a checkpoint if the log grew. A failure is
    logged, never raised: the records are committed, and the next checkpoint covers them."""
    try:
        tlog.sync()
        latest = tlog.latest()
        if tlog.size() == (latest.size if latest is not None else 0):
            return None
        return sign_checkpoint(tlog, stamp=stamp)
    except ArchiverError as exc:
        log.warning("no checkpoint signed at the end of the run: %s", exc.message)
        return None


def _report(tlog: TransparencyLog, cp: StoredCheckpoint, *, new: bool, stamps: tuple[LogStamp, ...] = (),
            witnesses: tuple[LogWitnessOutcome, ...] = ()) -> LogCheckpointReport:
    return LogCheckpointReport(origin=cp.origin, size=cp.size, root=base64.b64encode(cp.root).decode("ascii"),
                               note=cp.note.decode("utf-8"), new=new, path=tlog.checkpoint_path(cp.size),
                               vkey=tlog.vkey(), signed_at=cp.signed_at, stamps=stamps,
                               witnesses=witnesses)


def _stamp(tlog: TransparencyLog, path: str, note: bytes, n: int, url: str) -> LogStamp:
    """One TSA's token over the checkpoint file; a failure is reported, never fatal (the checkpoint
    stands on its signature; the token adds the third party's time)."""
    from archiver.provenance import tsp
    from archiver.provenance.tsa_client import post_query

    try:
        anchors = _anchors(tlog)
        query, digest, nonce = tsp.build_request(note)
        reply = post_query(url, query, timeout=tlog.config.float_("tsa.timeout"),
                           retries=tlog.config.int_("tsa.retries"))
        resp, info = tsp.accept_response(reply, digest, nonce)
        if anchors and (why := tsp.verify_against(resp, digest, anchors)) is not None:
            raise TimestampError(f"token from TSA {url} does not verify against tsa.certs: {why}")
        tlog.files.write(f"{path}.{n}.tsr", reply)
        tlog.files.write(f"{path}.{n}.chain.pem", tsp.chain_pem(anchors, resp))
    except ArchiverError as exc:
        log.warning("checkpoint %s not stamped by %s: %s", path, url, exc.message)
        return LogStamp(tsa_url=url, ok=False, error=exc.message)
    gen = info.gen_time.isoformat(timespec="seconds").replace("+00:00", "Z")
    return LogStamp(tsa_url=url, ok=True, path=f"{path}.{n}.tsr", gen_time=gen)


def _anchors(tlog: TransparencyLog) -> list[x509.Certificate]:
    from pathlib import Path

    from archiver.provenance import tsp

    where = tlog.config.str_("tsa.certs")
    if not where:
        return []
    try:
        return list(tsp.load_certs(Path(where).expanduser().read_bytes()))
    except OSError as exc:
        raise ConfigError(f"cannot read tsa.certs file {where}: {exc.strerror}") from exc


def prove(tlog: TransparencyLog, record_id: str, *, sign_if_needed: bool = True, stamp: bool = True) -> bytes:
    """The c2sp.org/tlog-proof@v1 file of a record's manifest leaf under the latest checkpoint.

    When the record is newer than the latest checkpoint, one is signed first (``sign_if_needed``),
    since a proof is only worth something against a signed tree head."""
    tlog.sync()
    leaves = [(i, e) for i, e in tlog.leaves_of(record_id) if e.kind == "manifest"]
    if not leaves:
        raise NotFoundError(f"record {record_id} is not in the transparency log",
                            hint="`archiver log sync` appends what the log has not read yet; "
                                 "`archiver log audit` says why a record is missing")
    index, entry = leaves[0]
    latest = tlog.latest()
    if latest is None or latest.size <= index:
        if not sign_if_needed:
            raise NotFoundError(f"record {record_id} is in the log after its last checkpoint",
                                hint="archiver log checkpoint")
        sign_checkpoint(tlog, stamp=stamp)
        latest = tlog.latest()
        assert latest is not None
    with tlog.catalog.db() as d:
        hashes = tlog.tree(d, latest.size).inclusion_proof(index)
    return ProofFile(index, tuple(hashes), latest.note, entry.to_bytes()).to_bytes()


__all__ = ["checkpoint_at_end", "prove", "sign_checkpoint"]
