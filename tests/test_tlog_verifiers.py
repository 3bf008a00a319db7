"""Third parties verify our transparency log with their own code, never ours: Go's checksum-database
packages (golang.org/x/mod/sumdb/note and sumdb/tlog, Debian's golang-golang-x-mod-dev, built offline
into tests/tlogcheck) and the PyPI package tlog-scales. The log holds 1,000 records (and their
timestamp addenda), made by real captures of the local site through the write path, a checkpoint
signed after the first 400 and one at the end; both verifiers accept tiles, entries, proofs and the
consistency between the two checkpoints."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.demo.tsa import LocalTSA
from archiver.tlog.entries import LogEntry
from archiver.tlog.proofs import verify_proof

RECORDS = 1000
FIRST = 400
GO_MOD_SRC = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog/tlog.go")
TLOGCHECK = Path(__file__).parent / "tlogcheck" / "main.go"


@dataclass
class Log:
    archive: Archive
    dir: Path
    vkey: str
    old_checkpoint: Path
    ids: list[str]
    proofs: list[Path]


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory, site) -> Iterator[Log]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("biglog")
    with LocalTSA() as tsa:
        a, _ = Archive.init(tmp / "store", operator="Log Tester")
        for k, v in (("capture.allow_private", "true"), ("capture.per_host", "8"), ("tsa.urls", tsa.url),
                     ("tsa.certs", str(tsa.ca_pem)), ("tsa.retries", "0"),
                     ("log.origin", "archive.example.org/evidence")):
            a.config.set(k, v)
        items = [(f"{site.base_url}/plain?log={i}", None, None) for i in range(RECORDS)]
        first = a.capture_batch(items[:FIRST], jobs=4, passphrase=lambda: None)  # signs a checkpoint at its end
        old = tmp / "old.checkpoint"
        shutil.copyfile(a.root / "log" / "checkpoint", old)
        rest = a.capture_batch(items[FIRST:], jobs=4, passphrase=lambda: None)
        ids = [r.record_id for r in first + rest if r.record_id]
        assert len(ids) == RECORDS
        proofs = []
        for rid in ids[:: RECORDS // 8]:
            p = tmp / f"{rid}.tlog-proof"
            p.write_bytes(a.log.prove(rid))
            proofs.append(p)
        yield Log(a, a.root / "log", a.log.vkey(), old, ids, proofs)


def test_the_log_holds_every_record_and_addendum_once(big_log: Log) -> None:
    a = big_log.archive
    assert a.log.pending() == 0
    with a.catalog.db() as d:
        n_addenda = d.one("SELECT COUNT(*) FROM addenda")[0]  # type: ignore[index]
    assert n_addenda >= RECORDS  # every record was timestamped (the batch's Merkle stamp)
    assert a.log.size() == RECORDS + n_addenda
    latest = a.log.latest()
    assert latest is not None and latest.size == a.log.size()
    assert a.log.checkpoints()[0].size >= FIRST
    for rid in big_log.ids[:50]:
        kinds = [e.kind for _, e in a.log.leaves_of(rid)]
        assert kinds.count("manifest") == 1 and "addendum" in kinds
    rep = a.log.audit(a.blobs)
    assert rep.ok, rep.problems[:5]
    assert rep.entries_checked == a.log.size() and rep.records_checked == RECORDS
    assert a.log.verify_from(big_log.old_checkpoint.read_bytes()).ok
    # every checkpoint is stamped by the TSA, the token beside it
    assert sorted(p for p in a.log.files.list("checkpoints/") if p.endswith(".tsr"))


def test_our_proofs_verify_against_the_records(big_log: Log) -> None:
    a = big_log.archive
    for p in big_log.proofs:
        rid = p.name.split(".")[0]
        check = verify_proof(p.read_bytes(), big_log.vkey, LogEntry("manifest", rid, a.resolve(rid).manifest_sha256))
        assert check.origin == "archive.example.org/evidence" and check.size == a.log.size()
        other = big_log.ids[0] if rid != big_log.ids[0] else big_log.ids[1]
        with pytest.raises(Exception, match="another entry"):
            verify_proof(p.read_bytes(), big_log.vkey, LogEntry("manifest", other, a.resolve(other).manifest_sha256))


def test_tlog_scales_reads_our_tile_directory(big_log: Log) -> None:
    from tlog_scales import tiles
    from tlog_scales.backend import LocalBackend
    from tlog_scales.reader import TilesReader
    from tlog_scales.signing import Vkey
    from tlog_scales.tlog import Checkpoint

    reader = TilesReader(LocalBackend(big_log.dir))
    cp = reader.get_checkpoint()
    cp.verify(Vkey.from_string(big_log.vkey))  # the signature, with their vkey parser
    assert cp.origin == "archive.example.org/evidence" and cp.size == big_log.archive.log.size()
    assert reader.calculate_root_hash() == cp.root_hash  # the root, from our tiles
    for i in range(0, cp.size, 97):  # entries from our bundles, each proven into the root
        leaf = reader.get_entry(i)
        assert LogEntry.from_bytes(leaf) == big_log.archive.log.entry(i)
        reader.get_inclusion_proof(i, cp.size).check(tiles.leaf_hash(leaf), cp.root_hash)
    old = Checkpoint.from_text(big_log.old_checkpoint.read_text())
    old.verify(Vkey.from_string(big_log.vkey))
    reader.get_consistency_proof(old.size, cp.size).check(old.root_hash, cp.root_hash)


def build_tlogcheck(out: Path) -> Path:
    """Build tests/tlogcheck offline: GOPATH mode over Debian's /usr/share/gocode, no proxy, no network."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (`make test` installs Debian's golang-go)")
    if not GO_MOD_SRC.is_file():
        pytest.skip("golang.org/x/mod sources are not installed (`make test` installs golang-golang-x-mod-dev)")
    binary = out / "tlogcheck"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOPROXY": "off", "GOFLAGS": "",
           "GOCACHE": str(out / "gocache"), "CGO_ENABLED": "0"}
    proc = subprocess.run([go, "build", "-o", str(binary), "main.go"], cwd=TLOGCHECK.parent, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return binary


@pytest.fixture(scope="module")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tlogcheck(tmp_path_factory.mktemp("go"))


def run_go(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=300, check=False)


def test_go_sumdb_verifies_checkpoint_tiles_entries_proofs_and_consistency(big_log: Log, tlogcheck: Path) -> None:
    args = ["-dir", str(big_log.dir), "-vkey", big_log.vkey, "-entries", "-old", str(big_log.old_checkpoint)]
    for p in big_log.proofs:
        args += ["-proof", str(p)]
    proc = run_go(tlogcheck, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    size = big_log.archive.log.size()
    assert f"OK checkpoint archive.example.org/evidence size {size}" in out
    assert f"OK tiles: the tree hash of {size} entries is the checkpoint's root" in out
    assert f"OK entries: all {size} entries are included" in out
    assert "OK consistency" in out and out.count("OK proof") == len(big_log.proofs)
    # and the Go side refuses what it must: another log's key, a proof with one hash changed
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.tlog.note import Verifier

    stranger = Verifier.of("archive.example.org/evidence", Ed25519PrivateKey.generate().public_key()).vkey()
    bad = run_go(tlogcheck, "-dir", str(big_log.dir), "-vkey", stranger)
    assert bad.returncode == 1 and "FAIL checkpoint: note.Open" in bad.stdout
    lines = big_log.proofs[0].read_text().split("\n")
    lines[3] = ("A" if lines[3][0] != "A" else "B") + lines[3][1:]
    forged = big_log.proofs[0].with_suffix(".forged")
    forged.write_text("\n".join(lines))
    bad = run_go(tlogcheck, "-vkey", big_log.vkey, "-proof", str(forged))
    assert bad.returncode == 1 and "CheckRecord" in bad.stdout
