"""The transparency log of every record: an append-only RFC 6962 Merkle log kept as C2SP tlog-tiles,
with checkpoints as C2SP signed notes (see docs/architecture.md, "The transparency log").

Modules, lowest first: :mod:`hashing` (RFC 6962 / 9162 trees and proofs), :mod:`note` (signed notes,
checkpoints, cosignatures), :mod:`entries` (what a leaf is), :mod:`tiles` (paths, entry bundles and the
tile stores), :mod:`proofs` (c2sp.org/tlog-proof@v1 files), :mod:`log` (the log of one store: sync from
the outbox, checkpoints, proofs, audit). Provenance-level: imports records, store and provenance only.
"""
