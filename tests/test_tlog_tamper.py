"""Tampering with a store and its log, each detected by ``log audit`` / ``log verify --from`` and, where
the log itself is what changed, by Go's sumdb code (tests/tlogcheck): a record's blobs deleted by hand,
one byte of a manifest changed, the log rewritten without one entry and signed again (a fork: both
checkpoints kept), an old checkpoint published again as the latest (a replay)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.demo.tsa import LocalTSA
from archiver.tlog.note import open_checkpoint
from tests.test_tlog_verifiers import build_tlogcheck, run_go

N = 30


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, site) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("tamper")
    with LocalTSA() as tsa:
        a, _ = Archive.init(tmp / "store", operator="Tamper Tester")
        for k, v in (("capture.allow_private", "true"), ("tsa.urls", tsa.url), ("tsa.certs", str(tsa.ca_pem)),
                     ("tsa.retries", "0"), ("log.origin", "archive.example.org/evidence")):
            a.config.set(k, v)
        done = a.capture_batch([(f"{site.base_url}/plain?t={i}", None, None) for i in range(N)], jobs=4,
                               passphrase=lambda: None)
        assert all(r.record_id for r in done)
        assert a.log.audit(a.blobs).ok
        yield a.root


@pytest.fixture()
def store(base: Path, tmp_path: Path) -> Archive:
    root = tmp_path / "store"
    shutil.copytree(base, root)
    return Archive.open(root)


@pytest.fixture(scope="module")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tlogcheck(tmp_path_factory.mktemp("go"))


def audit_problems(a: Archive, cli) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    r = cli("log", "audit", "--store", str(a.root), "--json")
    assert r.code == 1, r.out + r.err
    rep = json.loads(r.out)
    assert rep["ok"] is False
    return list(rep["problems"])


def writable(path: Path) -> Path:
    os.chmod(path, 0o644)
    return path


def test_a_record_whose_blobs_were_deleted_fails_the_audit_by_name(store: Archive, cli) -> None:  # type: ignore[no-untyped-def]
    victim = store.list()[3]
    shas = set(store.catalog.record_blobs(victim.record_id).values()) | {s for s, _ in store.addenda(victim.record_id)}
    shared = {sha for s in store.list() if s.record_id != victim.record_id
              for sha in store.catalog.record_blobs(s.record_id).values()}
    for sha in shas - shared:  # what only this record holds (identical pages share their content blobs)
        store.blobs.path(sha).unlink()
    problems = audit_problems(store, cli)
    assert any(p["record_id"] == victim.record_id and "manifest file" in str(p["message"])
               and "missing" in str(p["message"]) for p in problems), problems
    assert {p["record_id"] for p in problems} == {victim.record_id}


def test_one_byte_of_a_manifest_changed_fails_the_audit_by_name(store: Archive, cli) -> None:  # type: ignore[no-untyped-def]
    victim = store.list()[7]
    path = writable(store.blobs.path(victim.manifest_sha256))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = audit_problems(store, cli)
    assert [p["record_id"] for p in problems] == [victim.record_id]
    assert "was changed" in str(problems[0]["message"])


def rewrite_without(a: Archive, index: int) -> None:
    """What an operator with the store in hand could do: rebuild the log without one entry."""
    with a.catalog.db() as d, d.tx():
        rows = d.rows("SELECT idx, leaf_hash, kind, record_id, sha256, outbox_seq FROM tlog_leaves ORDER BY idx")
        kept = [r for r in rows if r[0] != index]
        for table in ("tlog_leaves", "tlog_nodes", "tlog_checkpoints"):
            d.run(f"DELETE FROM {table}")
        d.many("INSERT INTO tlog_leaves VALUES (?,?,?,?,?,?)", [(i, *r[1:]) for i, r in enumerate(kept)])
        a.log._add_nodes(d, 0, [bytes(r[1]) for r in kept])
        d.run("UPDATE tlog_state SET size=?, tiles_size=0", (len(kept),))
    shutil.rmtree(a.root / "log")
    a.log.write_tiles()


def test_a_log_rewritten_without_an_entry_and_signed_again_is_a_fork(store: Archive, cli, site, tlogcheck: Path,
                                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = tmp_path / "old.checkpoint"
    shutil.copyfile(store.root / "log" / "checkpoint", old)
    victim = store.list()[5].record_id
    index = store.log.leaves_of(victim)[0][0]
    rewrite_without(store, index)
    store.capture(site.base_url + "/plain?after-the-rewrite", passphrase=lambda: None, stamp=False)
    store.log.checkpoint(stamp=False)
    new = store.root / "log" / "checkpoint"
    # both checkpoints are signed by the log's key, for one size, with two roots: the proof of a fork
    key = store.log.verifier()
    a, b = open_checkpoint(old.read_bytes(), key).checkpoint, open_checkpoint(new.read_bytes(), key).checkpoint
    assert a.size == b.size and a.root != b.root
    r = cli("log", "verify", "--from", str(old), "--store", str(store.root), "--json")
    assert r.code == 1 and "forked" in r.out, r.out
    assert json.loads(r.out)["ok"] is False
    problems = audit_problems(store, cli)
    assert any(p["check"] == "coverage" and p["record_id"] == victim for p in problems), problems
    # Go's CheckTree refuses the consistency from the checkpoint a third party kept
    proc = run_go(tlogcheck, "-dir", str(store.root / "log"), "-vkey", store.log.vkey(), "-old", str(old))
    assert proc.returncode == 1 and "FAIL consistency: CheckTree" in proc.stdout, proc.stdout


def test_an_old_checkpoint_replayed_as_new(store: Archive, cli, site, tlogcheck: Path,  # type: ignore[no-untyped-def]
                                           tmp_path: Path) -> None:
    old = (store.root / "log" / "checkpoint").read_bytes()
    store.capture(site.base_url + "/plain?later", passphrase=lambda: None, stamp=False)
    store.log.checkpoint(stamp=False)
    newer = tmp_path / "newer.checkpoint"
    shutil.copyfile(store.root / "log" / "checkpoint", newer)
    (store.root / "log" / "checkpoint").write_bytes(old)  # the published checkpoint goes back in time
    problems = audit_problems(store, cli)
    assert any(p["check"] == "checkpoint" and "replayed" in str(p["message"]) for p in problems), problems
    # a third party holding the newer checkpoint sees the published one is older
    proc = run_go(tlogcheck, "-dir", str(store.root / "log"), "-vkey", store.log.vkey(), "-old", str(newer))
    assert proc.returncode == 1 and "is larger than the current one" in proc.stdout, proc.stdout


def test_the_untouched_store_passes_everything(store: Archive, cli, tlogcheck: Path,  # type: ignore[no-untyped-def]
                                               tmp_path: Path) -> None:
    """The control: the same checks on the untampered copy pass (so the failures above are the tampering)."""
    old = tmp_path / "old.checkpoint"
    shutil.copyfile(store.root / "log" / "checkpoint", old)
    r = cli("log", "audit", "--store", str(store.root), "--json")
    assert r.code == 0 and json.loads(r.out)["ok"], r.out
    r = cli("log", "verify", "--from", str(old), "--store", str(store.root))
    assert r.code == 0 and "PASS" in r.out, r.out
    proc = run_go(tlogcheck, "-dir", str(store.root / "log"), "-vkey", store.log.vkey(), "-entries", "-old", str(old))
    assert proc.returncode == 0, proc.stdout
