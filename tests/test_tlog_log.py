"""The log of a store: tile paths and bundles as tlog-tiles spells them, what a leaf is, appends that
are idempotent and deterministic, repair after a sync cut short, the log key, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.errors import IntegrityError, UsageError
from archiver.tlog.entries import LogEntry, entries_of
from archiver.tlog.tiles import ENTRIES, bundle, encode_index, partial_tiles, tile_path, unbundle


def test_tile_paths_are_the_specs() -> None:
    assert encode_index(1234067) == "x001/x234/067"  # the example of c2sp.org/tlog-tiles
    assert encode_index(0) == "000" and encode_index(999) == "999" and encode_index(1000) == "x001/000"
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 5, 17) == "tile/1/005.p/17"
    assert tile_path(ENTRIES, 2, 3) == "tile/entries/002.p/3"
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0 tile of
    # width 112, one full level 1 tile, one partial level 1 tile of width 17, and one partial level 2
    # tile of width 1"
    assert list(partial_tiles(70_000)) == [(0, 273, 112), (1, 1, 17), (2, 0, 1)]
    assert list(partial_tiles(256)) == [(1, 0, 1)]


def test_entry_bundles_and_entries() -> None:
    e = LogEntry("manifest", "7KQ2-M9XD", "ab" * 32)
    assert e.to_bytes() == b"archiver.tlog-entry/v1 manifest 7KQ2-M9XD sha256:" + b"ab" * 32 + b"\n"
    assert LogEntry.from_bytes(e.to_bytes()) == e
    assert unbundle(bundle([e.to_bytes(), b""])) == [e.to_bytes(), b""]
    for bad in (e.to_bytes()[:-1], e.to_bytes().replace(b"manifest", b"Manifest"),
                e.to_bytes().replace(b"7KQ2", b"7KQI")):
        with pytest.raises(IntegrityError):
            LogEntry.from_bytes(bad)
    with pytest.raises(IntegrityError):
        unbundle(b"\x00\x05abc")
    row = {"event": "import", "record_id": "7KQ2-M9XD", "subject_sha256": "ab" * 32,
           "detail": {"addenda": f"{'cd' * 32},{'ef' * 32}"}}
    assert [(x.kind, x.sha256[:2]) for x in entries_of(row)] == [("manifest", "ab"), ("addendum", "cd"),
                                                                   ("addendum", "ef")]
    assert [x.kind for x in entries_of({**row, "event": "wayback", "detail": {}})] == ["addendum"]


def test_every_commit_appends_and_an_import_adds_nothing_twice(stamped: Archive, site, tmp_path: Path) -> None:
    from archiver.bundle import export
    from archiver.bundle.importing import default_trust
    from archiver.provenance.keys import key_id_of

    ids = [stamped.capture(f"{site.base_url}/plain?imp={i}", passphrase=lambda: None).record_id for i in range(3)]
    # each capture committed a manifest and a timestamp addendum: both are leaves, in commit order
    kinds = [stamped.log.entry(i).kind for i in range(stamped.log.size())]
    assert kinds == ["manifest", "addendum"] * 3 and stamped.log.pending() == 0
    bundle_path = tmp_path / "b.wacz"
    export(stamped, ids, bundle_path, passphrase=lambda: None, actor="tester")
    other, _ = Archive.init(tmp_path / "other", operator="Receiver")
    other.config.set("tsa.certs", stamped.config.str_("tsa.certs"))
    trust = default_trust(other, [key_id_of(stamped.keys.signing_public_key())], None)
    other.bundles.import_(bundle_path, trust, actor="tester")
    first = [other.log.entry(i) for i in range(other.log.size())]
    assert sorted(e.sha256 for e in first) == sorted(stamped.log.entry(i).sha256 for i in range(6))
    other.bundles.import_(bundle_path, trust, actor="tester")  # again: the importer skips known records
    assert other.log.size() == len(first) and other.log.audit(other.blobs).ok
    # an evidence event naming documents the log already holds (an import committed again, as a forced
    # or replayed one would be) reaches the outbox, and the log keys its leaves by their bytes: nothing added
    from store.custody import Event

    rid = ids[0]
    addenda = ",".join(sha for sha, _ in other.addenda(rid))
    other.ledger.commit([Event("import", rid, other.resolve(rid).manifest_sha256, {"addenda": addenda})],
                        actor="tester")
    assert other.log.pending() == 0 and other.log.size() == len(first)
    assert other.log.audit(other.blobs).ok


def test_a_sync_cut_short_is_finished_with_the_same_bytes(archive: Archive, site) -> None:
    """Tiles are a pure function of the leaves: files lost after the catalog moved (a kill between the
    COMMIT and the writes) are written again, identical, and a log re-derived from the outbox is the same."""
    for i in range(260):  # more than one full tile
        archive.capture(f"{site.base_url}/plain?cut={i}", passphrase=lambda: None)
    rep = archive.log.checkpoint(stamp=False)
    files = {p: (archive.root / "log" / p).read_bytes() for p in archive.log.files.list("tile/")}
    assert "tile/0/000" in files and "tile/entries/000" in files and "tile/0/001.p/4" in files
    root = archive.log.root()
    # the writes "never happened": gone from disk, the catalog's tiles position back at 0
    shutil.rmtree(archive.root / "log" / "tile")
    with archive.catalog.db() as d, d.tx():
        d.run("UPDATE tlog_state SET tiles_size=0")
    archive.log.sync()
    archive.log.write_partial_tiles(rep.size)
    assert {p: (archive.root / "log" / p).read_bytes() for p in archive.log.files.list("tile/")} == files
    # the whole log re-derived from the outbox: same leaves, same root
    with archive.catalog.db() as d, d.tx():
        for t in ("tlog_leaves", "tlog_nodes"):
            d.run(f"DELETE FROM {t}")
        d.run("UPDATE tlog_state SET outbox_seq=0, size=0, tiles_size=0")
    assert archive.log.sync().appended == 260
    assert archive.log.root() == root and archive.log.audit(archive.blobs).ok
    # the proofs a witness or a page asks for, checked by the RFC 9162 verifiers
    from archiver.tlog.hashing import verify_consistency, verify_inclusion

    verify_consistency(100, 260, archive.log.root(100), root, archive.log.consistency_proof(100, 260))
    leaf = archive.log.entry(257).leaf_hash()
    verify_inclusion(leaf, 257, 260, archive.log.inclusion_proof(257, 260), root)


def test_the_log_key_is_private_and_only_its_vkey_leaves(archive: Archive, cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("log", "key", "--store", str(archive.root), "--json")
    assert r.code == 0, r.err
    key = json.loads(r.out)
    assert key["origin"].startswith("archiver.invalid/") and key["vkey"].startswith(key["origin"] + "+")
    path = archive.root / "keys" / "log.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "PRIVATE" not in r.out
    assert cli("config", "set", "--store", str(archive.root), "log.origin", "archive.example.org/evidence").code == 0
    r = cli("log", "checkpoint", "--store", str(archive.root), "--json")
    assert r.code == 0, r.err
    cp = json.loads(r.out)
    assert cp["origin"] == "archive.example.org/evidence" and cp["size"] == 0 and cp["new"]
    assert cp["note"].startswith("archive.example.org/evidence\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n")
    # the origin is the log's identity: changing it afterwards is refused
    assert cli("config", "set", "--store", str(archive.root), "log.origin", "elsewhere.example/log").code == 0
    with pytest.raises(UsageError, match=r"log\.origin"):
        archive.log.checkpoint(stamp=False)


def test_log_cli_prove_sync_and_audit(archive: Archive, site, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rid = archive.capture(site.base_url + "/plain?cli", passphrase=lambda: None).record_id
    r = cli("log", "sync", "--store", str(archive.root), "--json")
    assert r.code == 0 and json.loads(r.out)["size"] == 1, r.out
    out = tmp_path / "p.tlog-proof"
    r = cli("log", "prove", rid, "-o", str(out), "--store", str(archive.root), "--json")
    assert r.code == 0, r.err
    rep = json.loads(r.out)
    assert rep["index"] == 0 and rep["size"] == 1 and rep["entry"].endswith(archive.resolve(rid).manifest_sha256)
    assert out.read_bytes().startswith(b"c2sp.org/tlog-proof@v1\nextra ")
    r = cli("log", "audit", "--store", str(archive.root))
    assert r.code == 0 and r.out.startswith("PASS"), r.out
    assert cli("log", "prove", "ZZZZ-ZZZZ", "--store", str(archive.root)).code == 2


def test_the_log_on_postgresql_and_s3(cli, postgres, seaweed, site, tmp_path: Path,  # type: ignore[no-untyped-def]
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same log with the catalog on PostgreSQL (its own advisory lock, BYTEA hashes) and the files in
    the store's bucket (``<prefix>log/``): tlog-scales reads the tiles back from S3, the audit passes."""
    import uuid

    from tlog_scales.reader import TilesReader
    from tlog_scales.signing import Vkey

    for k, v in seaweed.env().items():
        monkeypatch.setenv(k, v)
    bucket = "tlog-" + uuid.uuid4().hex[:12]
    root = tmp_path / "s"
    r = cli("init", "--store", str(root), "--operator", "T", "--blobs", f"s3://{bucket}/cases/acme",
            "--s3-endpoint", seaweed.endpoint, "--catalog", postgres.database())
    assert r.code == 0, r.err
    a = Archive.open(root)
    a.config.set("capture.allow_private", "true")
    done = a.capture_batch([(f"{site.base_url}/plain?pg={i}", None, None) for i in range(300)], jobs=4,
                           passphrase=lambda: None)
    assert all(x.record_id for x in done)
    assert a.log.size() == 300 and a.log.latest() is not None  # the batch signed a checkpoint
    assert not (root / "log").exists()
    keys = {o["Key"] for page in seaweed.client().get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="cases/acme/log/") for o in page.get("Contents", [])}
    assert {"cases/acme/log/checkpoint", "cases/acme/log/tile/0/000", "cases/acme/log/tile/entries/001.p/44",
            "cases/acme/log/checkpoints/300"} <= keys

    class S3Backend:
        def get(self, *path: str) -> bytes | None:
            return a.log.files.read("/".join(path))
    reader = TilesReader(S3Backend())
    cp = reader.get_checkpoint()
    cp.verify(Vkey.from_string(a.log.vkey()))
    assert cp.size == 300 and reader.calculate_root_hash() == cp.root_hash
    rep = a.log.audit(a.blobs)
    assert rep.ok, rep.problems[:3]


def test_witness_cosignatures_travel_in_proofs(archive: Archive, site) -> None:
    """A cosignature attached to a checkpoint is in the published checkpoint and in every proof made
    under it; a verifier whose policy needs one witness accepts that proof and refuses one without it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.tlog.note import COSIGNATURE_V1, Verifier, cosign, open_checkpoint
    from archiver.tlog.proofs import verify_proof

    rid = archive.capture(site.base_url + "/plain?witnessed", passphrase=lambda: None).record_id
    bare = archive.log.prove(rid, stamp=False)  # signs the checkpoint it needs
    cp = archive.log.latest()
    assert cp is not None
    wkey = Ed25519PrivateKey.generate()
    witness = Verifier.of("witness.example/w1", wkey.public_key(), COSIGNATURE_V1)
    text = open_checkpoint(cp.note, archive.log.verifier()).note.text
    sig = cosign(text, "witness.example/w1", wkey, 1_765_000_000)
    archive.log.add_cosignatures(cp.size, [sig])
    archive.log.add_cosignatures(cp.size, [sig])  # once only
    published = (archive.root / "log" / "checkpoint").read_bytes()
    assert published.count(b"witness.example/w1") == 1
    assert (archive.root / "log" / "checkpoints" / str(cp.size)).read_bytes() == cp.note  # what the TSA stamped
    entry = archive.log.leaves_of(rid)[0][1]
    check = verify_proof(archive.log.prove(rid), archive.log.vkey(), entry, witnesses=[witness], min_cosignatures=1)
    assert check.cosignatures == 1
    with pytest.raises(IntegrityError, match="witness cosignature"):
        verify_proof(bare, archive.log.vkey(), entry, witnesses=[witness], min_cosignatures=1)
    assert archive.log.audit(archive.blobs).ok
