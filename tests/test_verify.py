"""Verification: an untouched store passes; any flipped byte in any blob fails and is named."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.options import CaptureOptions
from archiver.provenance.keys import KeyStore


@pytest.fixture()
def captured(archive: Archive, site) -> tuple[Archive, str]:
    m = archive.capture(site.base_url + "/gzip-chunked",
                        CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    return archive, m.record_id


def _flip(path: Path, offset: int) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_untouched_store_verifies(captured, cli) -> None:
    archive, rid = captured
    r = cli("verify", rid, "--store", str(archive.root))
    assert r.code == 0, r.out
    r = cli("verify", "--all", "--json", "--store", str(archive.root))
    assert r.code == 0 and json.loads(r.out)[0]["ok"] is True


@pytest.mark.parametrize("name", ["warc", "content", "text", "manifest"])
def test_flipping_any_byte_of_any_blob_fails(captured, cli, tmp_path: Path, name: str) -> None:
    archive, rid = captured
    sha = archive.artifact_sha256(rid, name)
    size = archive.blobs.path(sha).stat().st_size
    rng = random.Random(f"{name}-seed")
    offsets = sorted({0, size - 1, size // 2, *(rng.randrange(size) for _ in range(5))})
    for off in offsets:
        copy = tmp_path / f"copy-{name}-{off}"
        shutil.copytree(archive.root, copy)
        _flip(Archive(copy).blobs.path(sha), off)
        r = cli("verify", rid, "--json", "--store", str(copy))
        assert r.code == 1, (name, off, r.out, r.err)
        report = json.loads(r.out)
        failed = {c["name"] for c in report["checks"] if c["status"] == "FAIL"}
        expected = "manifest.hash" if name == "manifest" else f"artifact.{name}"
        assert expected in failed, (name, off, failed)
        shutil.rmtree(copy)


def test_custody_log_tamper_is_detected(captured, cli, catalog: str) -> None:
    archive, rid = captured
    if catalog == "postgresql":  # the chain lives in the custody table: edit the first row there
        with archive.catalog.db() as d:
            line = d.one("SELECT line FROM custody WHERE seq = 1")[0]  # type: ignore[index]
            entry = json.loads(line)
            entry["actor"] = "Someone Else"
            d.run("UPDATE custody SET line = ? WHERE seq = 1", (json.dumps(entry, sort_keys=True),))
    else:
        log = archive.root / "custody.log"
        lines = log.read_bytes().splitlines(keepends=True)
        entry = json.loads(lines[0])
        entry["actor"] = "Someone Else"
        log.write_bytes(json.dumps(entry, sort_keys=True).encode() + b"\n" + b"".join(lines[1:]))
    r = cli("verify", rid, "--store", str(archive.root))
    assert r.code == 1 and "custody.chain" in r.out


def test_untrusted_signer_is_reported(captured, cli) -> None:
    archive, rid = captured
    key_id = archive.manifest(rid).signature.key_id  # type: ignore[union-attr]
    assert cli("keys", "untrust", key_id, "--store", str(archive.root)).code == 0
    r = cli("verify", rid, "--json", "--store", str(archive.root))
    assert r.code == 1
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert checks["manifest.signature"]["status"] == "PASS"
    assert checks["signer.trusted"]["status"] == "FAIL" and "untrusted" in checks["signer.trusted"]["detail"]
    pub = archive.root / "pub.pem"
    assert cli("keys", "export-public", "-o", str(pub), "--store", str(archive.root)).code == 0
    assert cli("keys", "trust", str(pub), "--store", str(archive.root)).code == 0
    assert cli("verify", rid, "--store", str(archive.root)).code == 0


def test_rebuild_index_recovers_records(captured, cli, site) -> None:
    archive, rid = captured
    second = archive.capture(site.base_url + "/terms.pdf").record_id
    archive.catalog.clear_index()
    assert archive.catalog.count() == 0
    r = cli("store", "rebuild-index", "--store", str(archive.root))
    assert r.code == 0 and "2 record(s)" in r.out
    assert {s.record_id for s in archive.list()} == {rid, second}
    assert cli("verify", "--all", "--store", str(archive.root)).code == 0


def test_private_key_is_0600_and_never_printed(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("ARCHIVER_KEY_PASSPHRASE", "correct horse")
    r = cli("init", "--passphrase", "--store", str(tmp_path / "s"))
    assert r.code == 0
    ks = KeyStore(tmp_path / "s")
    assert (ks.private_path.stat().st_mode & 0o777) == 0o600
    assert ks.is_encrypted()
    secret = ks.private_path.read_text()
    for args in (["keys", "list"], ["keys", "export-public"], ["config", "list"]):
        out = cli(*args, "--store", str(tmp_path / "s"))
        assert "PRIVATE KEY" not in out.out and secret not in out.out


def test_wrong_passphrase(tmp_path: Path, cli, site, monkeypatch) -> None:
    monkeypatch.setenv("ARCHIVER_KEY_PASSPHRASE", "right one")
    assert cli("init", "--passphrase", "--store", str(tmp_path / "s")).code == 0
    Archive.open(tmp_path / "s").config.set("capture.allow_private", "true")
    monkeypatch.setenv("ARCHIVER_KEY_PASSPHRASE", "wrong one")
    r = cli("capture", site.base_url + "/plain", "--store", str(tmp_path / "s"))
    assert r.code == 2 and "wrong passphrase" in r.err
    assert Archive.open(tmp_path / "s").catalog.count() == 0
    monkeypatch.setenv("ARCHIVER_KEY_PASSPHRASE", "right one")
    assert cli("capture", site.base_url + "/plain", "--store", str(tmp_path / "s")).code == 0


def test_a_read_only_store_still_verifies(tmp_path, site) -> None:  # type: ignore[no-untyped-def]
    """The catalog's cache of verification results is best effort: an auditor with read-only access to a
    SQLite store (here: a catalog that refuses writes) still gets the full report."""
    import sqlite3

    from archiver.api import Archive as _Archive

    a, _ = _Archive.init(tmp_path / "store", operator="Auditor")
    a.config.set("capture.allow_private", "true")
    rid = a.capture(site.base_url + "/plain").record_id
    with sqlite3.connect(a.root / "catalog.sqlite3") as db:
        db.execute("CREATE TRIGGER no_notes BEFORE INSERT ON verifications BEGIN SELECT RAISE(ABORT, 'read-only'); "
                   "END")
    report = a.verify(rid, log=False)
    assert report.ok, report.failures
