"""The transparency log of every record: an append-only RFC 6962 Merkle log kept as C2SP tlog-tiles,
with checkpoints as C2SP signed notes (see docs/architecture.md, "The transparency log", and
docs/formats.md, "Transparency log entries").

Modules, lowest first: :mod:`hashing` (RFC 6962 / 9162 trees and proofs), :mod:`note` (signed notes,
checkpoints, cosignatures), :mod:`entries` (what a leaf is), :mod:`tiles` (paths, entry bundles and the
tile stores), :mod:`proofs` (c2sp.org/tlog-proof@v1 files), :mod:`log` (the log of one store: sync from
the outbox, state, files), :mod:`checkpoints` (signing, stamping, proving), :mod:`audit` (audit and
consistency), :mod:`reports` (what the commands answer). Provenance-level: imports records, store and
provenance only.

The API, for the front-ends, bundles and witnesses (``core.log`` is the store's
:class:`~archiver.tlog.log.TransparencyLog`)::

    core.log.sync() -> SyncResult                     # append what the outbox holds (every commit does)
    core.log.checkpoint(stamp=True) -> LogCheckpointReport
    core.log.latest() -> StoredCheckpoint | None      # .size .root .origin .signed_at .note (bytes)
    core.log.leaves_of(record_id) -> [(index, LogEntry)]   # the manifest's first
    core.log.prove(record_id) -> bytes                # a c2sp.org/tlog-proof@v1 file
    core.log.inclusion_proof(index, size) / consistency_proof(old, new) -> [bytes]
    core.log.add_cosignatures(size, [Signature]) -> bytes
    core.log.verify_from(old_checkpoint: bytes) -> LogConsistencyReport
    core.log.audit(core.blobs) -> LogAuditReport
    core.log.vkey() -> str ; core.log.files.read("tile/0/000") -> bytes | None

    proofs.verify_proof(data, vkey, LogEntry("manifest", record_id, manifest_sha256),
                        witnesses=[Verifier...], min_cosignatures=0) -> ProofCheck   # raises if not
    note.open_checkpoint(data, log_verifier, witnesses) -> SignedCheckpoint
    note.cosign(text, name, private_key, timestamp) -> Signature ; note.Verifier.from_vkey(str)
"""
