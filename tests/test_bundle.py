"""WACZ evidence bundles: deterministic export, offline verification, import, hostile zips."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.demo.tsa import LocalTSA
from archiver.options import CaptureOptions
from archiver.records import Status

from .conftest import store_snapshot

PYWB_BIN = Path(os.environ.get("ARCHIVER_PYWB_BIN", str(Path(__file__).resolve().parent.parent / ".venv-pywb/bin")))
WACZ = PYWB_BIN / "wacz"


def _two_records(stamped: Archive, site: SampleSite) -> list[str]:
    a = stamped.capture(site.base_url + "/chunked", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    b = stamped.capture(site.base_url + "/gzip", CaptureOptions(entity="Example Inc.", document="News"))
    return [a.record_id, b.record_id]


def _rewrite_member(src: Path, dest: Path, name: str, change) -> None:  # type: ignore[no-untyped-def]
    """Copy a zip, changing one member's bytes (what a tamperer with a zip tool would do)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, change(data) if info.filename == name else data)


def _flip(data: bytes) -> bytes:
    b = bytearray(data)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def test_export_is_deterministic_and_verifies(stamped: Archive, site: SampleSite, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    ids = _two_records(stamped, site)
    s = ["--store", str(stamped.root)]
    one, two = tmp_path / "one.wacz", tmp_path / "two.wacz"
    assert cli("export", *ids, "-o", str(one), *s).code == 0
    stamped.verify(ids[0])  # reads in between must not change the bundle
    assert cli("export", *reversed(ids), "-o", str(two), *s).code == 0
    assert one.read_bytes() == two.read_bytes()
    r = cli("verify", str(one), "--json", *s)
    assert r.code == 0, r.out
    reports = json.loads(r.out)["reports"]
    assert [rep["subject"] for rep in reports[1:]] == sorted(ids)
    names = {c["name"] for rep in reports for c in rep["checks"]}
    assert {"bundle.resources", "bundle.signature", "manifest.signature", "warc.records", "content.derivation",
            "timestamp.1.tsa", "custody.record"} <= names
    with zipfile.ZipFile(one) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    assert infos[f"archive/{ids[0]}.warc.gz"].compress_type == zipfile.ZIP_STORED
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos.values())
    assert "provenance/VERIFY.md" in infos and f"provenance/{ids[0]}.timestamp.1.tsr" in infos


def test_signature_as_replayweb_page_checks_it(stamped: Archive, site: SampleSite, tmp_path: Path) -> None:
    """Re-implements ReplayWeb.page's anonymous-signature check with `cryptography` only:
    WebCrypto ECDSA {namedCurve: P-384, hash: SHA-256}, signature raw r‖s, key SPKI DER."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from archiver.bundle import export

    out = tmp_path / "e.wacz"
    export(stamped, _two_records(stamped, site)[:1], out, passphrase=lambda: None, actor="tester")
    with zipfile.ZipFile(out) as zf:
        dp = zf.read("datapackage.json")
        digest = json.loads(zf.read("datapackage-digest.json"))
        created = json.loads(dp)["created"]
    signed = digest["signedData"]
    assert digest["hash"] == signed["hash"] == "sha256:" + hashlib.sha256(dp).hexdigest()
    assert signed["created"] == created
    key = load_der_public_key(base64.b64decode(signed["publicKey"]))
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    raw = base64.b64decode(signed["signature"])
    assert len(raw) == 96
    der = encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    key.verify(der, signed["hash"].encode("utf-8"), ec.ECDSA(hashes.SHA256()))  # raises if invalid


@pytest.mark.skipif(not WACZ.exists(), reason=f"py-wacz not installed at {WACZ} (make test builds .venv-pywb)")
def test_py_wacz_validates_and_catches_a_changed_warc_byte(stamped: Archive, site: SampleSite, tmp_path: Path,
                                                          cli) -> None:  # type: ignore[no-untyped-def]
    ids = _two_records(stamped, site)
    good = tmp_path / "evidence.wacz"
    assert cli("export", *ids, "-o", str(good), "--store", str(stamped.root)).code == 0
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([str(WACZ), "validate", "-f", str(good)], capture_output=True, text=True, env=env,
                       timeout=120, check=False)
    assert r.returncode == 0 and "valid" in r.stdout, r.stdout + r.stderr
    bad = tmp_path / "tampered.wacz"
    _rewrite_member(good, bad, f"archive/{ids[0]}.warc.gz", _flip)
    r = subprocess.run([str(WACZ), "validate", "-f", str(bad)], capture_output=True, text=True, env=env,
                       timeout=120, check=False)
    assert r.returncode == 1, r.stdout
    r2 = cli("verify", str(bad), "--json", "--store", str(stamped.root))
    assert r2.code == 1
    failed = {c["name"] for rep in json.loads(r2.out)["reports"] for c in rep["checks"] if c["status"] == "FAIL"}
    assert "bundle.resources" in failed and "artifact.warc" in failed


def test_bundle_moves_to_a_new_store_without_the_old_one(tmp_path: Path, site: SampleSite, tsa: LocalTSA,
                                                         cli) -> None:  # type: ignore[no-untyped-def]
    """One identity: the key id `archiver keys list` prints in A is the only thing B pins."""
    a, _ = Archive.init(tmp_path / "A", operator="Alice")
    for k, v in (("capture.allow_private", "true"), ("tsa.urls", tsa.url), ("tsa.certs", str(tsa.ca_pem))):
        a.config.set(k, v)
    ids = _two_records(a, site)
    bundle = tmp_path / "evidence.wacz"
    assert cli("export", *ids, "-o", str(bundle), "--store", str(a.root)).code == 0
    listed = cli("keys", "list", "--store", str(a.root)).out.split()
    signer = listed[0]
    assert signer.startswith("sha256:") and "signing" in listed[1]
    shutil.move(str(a.root), str(tmp_path / "A-moved-away"))  # no access to A from here on
    b, _ = Archive.init(tmp_path / "B", operator="Bob")
    b.config.set("tsa.certs", str(tsa.ca_pem))
    s = ["--store", str(b.root)]
    r = cli("verify", str(bundle), "--json", *s)  # B does not know A's key: intact, not trusted, not hidden
    assert r.code == 1
    report = json.loads(r.out)
    failed = {c["name"] for rep in report["reports"] for c in rep["checks"] if c["status"] == "FAIL"}
    assert failed == {"signer.trusted", "bundle.signer.trusted"} and report["verdict"] == "intact-untrusted"
    r = cli("verify", str(bundle), *s)
    assert r.code == 1 and "INTACT, SIGNER NOT TRUSTED" in r.out and "TAMPERED" not in r.out
    snap = store_snapshot(b.root)
    r = cli("import", str(bundle), *s)
    assert r.code == 1 and "nothing imported" in r.err and store_snapshot(b.root) == snap
    r = cli("verify", str(bundle), "--trust-key", signer, "--json", *s)  # exactly one key id
    assert r.code == 0, r.out
    report = json.loads(r.out)
    assert report["verdict"] == "verified"
    binding = next(c for c in report["reports"][0]["checks"] if c["name"] == "bundle.key-binding")
    assert binding["status"] == "PASS" and signer in binding["detail"]
    r = cli("import", str(bundle), "--trust-key", signer, *s)
    assert r.code == 0, r.err
    # no other step: the pinned key joined B's keyring (with a custody entry), so the records verify
    assert cli("verify", "--all", *s).code == 0
    assert sorted(r.record_id for r in b.list()) == sorted(ids)
    assert any(e.event == "import" for e in b.custody.entries())
    assert [e.detail["key_id"] for e in b.custody.entries() if e.event == "key-trust"] == [signer]
    r = cli("import", str(bundle), "--trust-key", signer, *s)  # again: nothing duplicated
    assert r.code == 0 and "already present" in r.out
    assert len(list(b.blobs.iter_all())) == len(set(b.blobs.iter_all()))
    assert [e.event for e in b.custody.entries()].count("key-trust") == 1
    # a store that imported the records untrusted (--force) can trust the key it has seen, by its id
    c, _ = Archive.init(tmp_path / "C", operator="Carol")
    c.config.set("tsa.certs", str(tsa.ca_pem))
    sc = ["--store", str(c.root)]
    assert cli("import", str(bundle), "--force", *sc).code == 0
    assert cli("verify", "--all", *sc).code == 1
    r = cli("keys", "trust", "sha256:" + "0" * 64, *sc)
    assert r.code != 0 and "has not seen" in r.err
    r = cli("keys", "trust", signer, *sc)
    assert r.code == 0 and signer in r.out, r.err
    assert cli("verify", "--all", *sc).code == 0


def test_tampered_is_told_from_untrusted(stamped: Archive, site: SampleSite, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    ids = _two_records(stamped, site)
    bundle = tmp_path / "e.wacz"
    assert cli("export", *ids, "-o", str(bundle), "--store", str(stamped.root)).code == 0
    signer = stamped.keys.list()[0].key_id
    bad = tmp_path / "bad.wacz"
    _rewrite_member(bundle, bad, f"archive/{ids[0]}.warc.gz", _flip)
    for extra in ([], ["--trust-key", signer]):
        r = cli("verify", str(bad), "--json", *extra)
        assert r.code == 1 and json.loads(r.out)["verdict"] == "tampered", r.out
    r = cli("verify", str(bad))
    assert "TAMPERED" in r.out
    # a binding from another operator's key does not vouch for this bundle key
    other, _ = Archive.init(tmp_path / "other", operator="Mallory")
    from archiver.bundle import BINDING, key_binding

    forged = key_binding(other.keys.load_private(lambda: None), other.keys.wacz_public_der())
    swapped = tmp_path / "swapped.wacz"
    _rewrite_member(bundle, swapped, BINDING, lambda _data: forged)
    r = cli("verify", str(swapped), "--json", "--trust-key", other.keys.list()[0].key_id)
    report = json.loads(r.out)
    assert r.code == 1 and report["verdict"] == "tampered"
    checks = {c["name"]: c for c in report["reports"][0]["checks"]}
    assert checks["bundle.key-binding"]["status"] == "FAIL" and checks["bundle.signer.trusted"]["status"] == "FAIL"


def test_hostile_zip_is_refused_without_writing_anything(archive: Archive, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    evil = tmp_path / "work" / "evil.wacz"
    evil.parent.mkdir()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/x", b"owned")
        zf.writestr("/abs/path", b"owned")
        zf.writestr("datapackage.json", b"{}")
        zf.writestr("archive/big.warc.gz", b"tiny")
        zf.filelist[-1].file_size = 10 * (1 << 30)  # the central directory will declare 10 GB
    with zipfile.ZipFile(evil) as zf:
        assert zf.getinfo("archive/big.warc.gz").file_size == 10 * (1 << 30)
    before = {p for p in tmp_path.rglob("*")}
    snap = store_snapshot(archive.root)
    r = cli("verify", str(evil), "--json", "--store", str(archive.root))
    assert r.code == 1
    detail = json.loads(r.out)["reports"][0]["checks"][0]["detail"]
    assert "../../etc/x" in detail and "/abs/path" in detail and "10,737,418,240" in detail
    r = cli("import", str(evil), "--store", str(archive.root))
    assert r.code == 1 and store_snapshot(archive.root) == snap
    assert {p for p in tmp_path.rglob("*")} == before and not (tmp_path / "etc").exists()


@pytest.mark.parametrize("damage", ["not-zip", "no-datapackage", "truncated", "other-key", "bad-signature"])
def test_damaged_bundles(stamped: Archive, site: SampleSite, tmp_path: Path, damage: str, cli) -> None:  # type: ignore[no-untyped-def]
    from archiver.bundle import _sign_p384

    good = tmp_path / "good.wacz"
    assert cli("export", _two_records(stamped, site)[0], "-o", str(good), "--store", str(stamped.root)).code == 0
    bad = tmp_path / "bad.wacz"
    if damage == "not-zip":
        bad.write_bytes(b"this is not a zip file at all\n" * 10)
    elif damage == "no-datapackage":
        with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
            for info in zin.infolist():
                if info.filename != "datapackage.json":
                    zout.writestr(info, zin.read(info))
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    else:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        other = ec.generate_private_key(ec.SECP384R1())

        def resign(data: bytes) -> bytes:
            d = json.loads(data)
            if damage == "other-key":  # a valid signature, by somebody else's key
                d["signedData"]["signature"] = _sign_p384(other, d["hash"].encode())
                d["signedData"]["publicKey"] = base64.b64encode(other.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
            else:
                sig = bytearray(base64.b64decode(d["signedData"]["signature"]))
                sig[5] ^= 1
                d["signedData"]["signature"] = base64.b64encode(bytes(sig)).decode()
            return json.dumps(d).encode()

        _rewrite_member(good, bad, "datapackage-digest.json", resign)
    snap = store_snapshot(stamped.root)
    r = cli("verify", str(bad), "--json", "--store", str(stamped.root))
    assert r.code == 1
    failed = {c["name"] for rep in json.loads(r.out)["reports"] for c in rep["checks"] if c["status"] == "FAIL"}
    expected = {"not-zip": "bundle.zip", "no-datapackage": "bundle.datapackage", "truncated": "bundle.zip",
                "other-key": "bundle.signer.trusted", "bad-signature": "bundle.signature"}[damage]
    assert expected in failed, failed
    if damage == "other-key":
        # the signature itself is fine, but no trusted key vouches for it, and the operator's binding
        # names the original bundle key, not this one
        assert failed == {"bundle.signer.trusted", "bundle.key-binding"}
    assert cli("import", str(bad), "--store", str(stamped.root)).code == 1
    assert store_snapshot(stamped.root) == snap
    assert Status.FAIL  # (statuses are strings in JSON; the enum is what the library returns)


def test_force_imports_an_untrusted_bundle_and_marks_it(stamped: Archive, site: SampleSite, tmp_path: Path,
                                                        cli) -> None:  # type: ignore[no-untyped-def]
    rid = _two_records(stamped, site)[0]
    bundle = tmp_path / "e.wacz"
    assert cli("export", rid, "-o", str(bundle), "--store", str(stamped.root)).code == 0
    other, _ = Archive.init(tmp_path / "other")
    s = ["--store", str(other.root)]
    assert cli("import", str(bundle), *s).code == 1
    r = cli("import", str(bundle), "--force", *s)
    assert r.code == 0 and rid in r.out
    (entry,) = [e for e in other.custody.entries() if e.record_id == rid]
    assert entry.event == "import-forced" and "signer.trusted" in entry.detail["forced"]
    check = next(c for c in other.verify(rid).checks if c.name == "custody.record")
    assert "FORCED" in check.detail


@pytest.mark.parametrize("header", ["compression method", "encryption flag"])
def test_flipped_zip_header_fields_are_reported_not_raised(stamped: Archive, site: SampleSite, tmp_path: Path,
                                                           header: str) -> None:
    """Found by the raw-zip fuzz: zipfile raises NotImplementedError / RuntimeError for these."""
    import struct

    from archiver.bundle import default_trust, export, verify_bundle

    good = tmp_path / "good.wacz"
    export(stamped, _two_records(stamped, site)[:1], good, passphrase=lambda: None, actor="tester")
    data = bytearray(good.read_bytes())
    cd = data.index(b"PK\x01\x02")  # first central-directory entry
    if header == "compression method":
        data[cd + 10:cd + 12] = struct.pack("<H", 99)
    else:
        data[cd + 8] |= 0x01
    bad = tmp_path / "bad.wacz"
    bad.write_bytes(bytes(data))
    reports = verify_bundle(bad, default_trust(stamped, [], None))
    assert not all(r.ok for r in reports)
