"""Issue 30, items 3-4 wired into the product: every exported bundle carries a c2sp.org/tlog-proof@v1
file per record, the checkpoint and the log's vkey; ``verify`` checks inclusion offline
(``log.inclusion``), trusting a log key only when the verifier knows it; ``archiver serve`` serves the
log as tlog-tiles when ``log.public`` is true; the record pages say where the record is in the log.

Hostile bundles are re-signed with the exporter's own bundle key (tests/test_replay_index.py
``_repack``), so only the log members differ from a genuine bundle."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.tlog.entries import LogEntry
from archiver.tlog.proofs import ProofFile, verify_proof
from tests.test_replay_index import _members, _repack

LOG_FILES = ("provenance/log.checkpoint", "provenance/log.vkey")


def _kid(archive: Archive) -> str:
    from archiver.provenance.keys import key_id_of

    return key_id_of(archive.keys.signing_public_key())


def _verify(cli: Any, bundle: Path, store: Path, *extra: str) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    r = cli("verify", str(bundle), "--json", "--store", str(store), *extra)
    report = json.loads(r.out)
    checks: dict[str, list[dict[str, Any]]] = {}
    for rep in report["reports"]:
        for c in rep["checks"]:
            checks.setdefault(c["name"], []).append(c)
    return r.code, checks


def _logged_export(archive: Archive, site: SampleSite, tmp: Path, cli: Any) -> tuple[Path, list[str]]:
    """Two records under a checkpoint and one after it: the export signs a checkpoint for the third."""
    first = [archive.capture(site.base_url + f"/plain?w={i}").record_id for i in range(2)]
    archive.log.checkpoint(stamp=False)
    late = archive.capture(site.base_url + "/plain?w=late").record_id
    out = tmp / "logged.wacz"
    assert cli("export", first[0], late, "-o", str(out), "--store", str(archive.root)).code == 0
    return out, [first[0], late]


def test_an_export_carries_a_proof_per_record_and_verify_checks_it(archive: Archive, site: SampleSite,
                                                                    tmp_path: Path, cli: Any) -> None:
    bundle, ids = _logged_export(archive, site, tmp_path, cli)
    members = _members(bundle)
    listed = {r["path"] for r in json.loads(members["datapackage.json"])["resources"]}
    for name in [f"provenance/{rid}.tlog-proof" for rid in ids] + list(LOG_FILES):
        assert name in members and name in listed, name
    vkey = members["provenance/log.vkey"].decode().strip()
    assert vkey == archive.log.vkey()
    latest = archive.log.latest()
    assert latest is not None and latest.size >= 3  # the export signed one covering the late record
    assert members["provenance/log.checkpoint"] == latest.note
    for rid in ids:
        proof = members[f"provenance/{rid}.tlog-proof"]
        assert ProofFile.parse(proof).checkpoint == latest.note  # one checkpoint for the whole bundle
        msha = archive.resolve(rid).manifest_sha256
        assert verify_proof(proof, vkey, LogEntry("manifest", rid, msha), witnesses=[], min_cosignatures=0)
    # the exporter's own store knows the log key: integrity PASS, "trusted"
    code, checks = _verify(cli, bundle, archive.root)
    assert code == 0
    got = checks["log.inclusion"]
    assert len(got) == 2 and all(c["status"] == "PASS" and c["category"] == "integrity" for c in got), got
    assert all("trusted (this store's own log key)" in c["detail"] and "at index" in c["detail"] for c in got)
    # a stranger's store: the carried key proves only consistency (context), the verdict is unchanged
    other, _ = Archive.init(tmp_path / "other", operator="Someone Else")
    code, checks = _verify(cli, bundle, other.root, "--trust-key", _kid(archive))
    assert code == 0, checks
    assert all(c["status"] == "PASS" and c["category"] == "context" and "carried by the bundle" in c["detail"]
               and "not known here" in c["detail"] for c in checks["log.inclusion"])
    # pinned with --trust-log-key: evidence again
    code, checks = _verify(cli, bundle, other.root, "--trust-key", _kid(archive),
                           "--trust-log-key", vkey)
    assert code == 0 and all(c["category"] == "integrity" and "pinned (--trust-log-key)" in c["detail"]
                             for c in checks["log.inclusion"])


def _flip_hash(proof: bytes) -> bytes:
    p = ProofFile.parse(proof)
    assert p.hashes, "a proof in a log of three leaves has hashes"
    first = bytes([p.hashes[0][0] ^ 1]) + p.hashes[0][1:]
    return ProofFile(p.index, (first, *p.hashes[1:]), p.checkpoint, p.extra).to_bytes()


def test_a_tampered_or_swapped_proof_fails_and_a_missing_one_is_skipped(archive: Archive, site: SampleSite,
                                                                        tmp_path: Path, cli: Any) -> None:
    bundle, (a, b) = _logged_export(archive, site, tmp_path, cli)
    other, _ = Archive.init(tmp_path / "other", operator="Someone Else")
    trust = ("--trust-key", _kid(archive))

    def changed(name: str, change: Any) -> Path:
        out = tmp_path / f"{name}.wacz"
        _repack(bundle, out, archive, change)
        return out

    pa, pb = f"provenance/{a}.tlog-proof", f"provenance/{b}.tlog-proof"
    flipped = changed("flipped", lambda m: {**m, pa: _flip_hash(m[pa])})
    swapped = changed("swapped", lambda m: {**m, pa: m[pb]})
    stripped = changed("stripped", lambda m: {k: v for k, v in m.items()
                                              if not k.endswith(".tlog-proof") and k not in LOG_FILES})
    garbage = changed("garbage", lambda m: {**m, "provenance/log.vkey": b"\x1b[2J" * 10_000})
    code, checks = _verify(cli, garbage, other.root, *trust)  # the sender's text is checked, never echoed
    assert code == 1 and {c["detail"] for c in checks["log.inclusion"]} == {
        "the bundle's provenance/log.vkey is not a log's verifier key"}
    for store in (archive.root, other.root):  # trusted key or carried key: a bad proof fails either way
        for bad in (flipped, swapped):
            code, checks = _verify(cli, bad, store, *trust)
            by_subject = checks["log.inclusion"]
            assert code == 1, (bad, by_subject)
            failed = [c for c in by_subject if c["status"] == "FAIL"]
            assert len(failed) == 1 and failed[0]["category"] == "integrity", by_subject
        code, checks = _verify(cli, stripped, store, *trust)
        assert code == 0, checks  # a bundle from before the log still verifies
        assert all(c["status"] == "SKIPPED" and "no transparency-log proof" in c["detail"]
                   for c in checks["log.inclusion"])


def test_a_proof_signed_by_another_key_for_a_log_we_know_is_not_trusted(archive: Archive, site: SampleSite,
                                                                         tmp_path: Path, cli: Any) -> None:
    """An impostor log with our origin: its proof and vkey agree with each other, not with our key."""
    archive.config.set("log.origin", "archive.example.org/evidence")
    bundle, (a, _b) = _logged_export(archive, site, tmp_path, cli)
    impostor, _ = Archive.init(tmp_path / "impostor", operator="Impostor")
    impostor.config.set("log.origin", "archive.example.org/evidence")
    impostor.config.set("capture.allow_private", "true")
    impostor.capture(site.base_url + "/plain?w=x")
    impostor.log.checkpoint(stamp=False)
    from archiver.tlog.note import Checkpoint, sign_note

    members = _members(bundle)
    real = ProofFile.parse(members[f"provenance/{a}.tlog-proof"])
    root = real.checkpoint.split(b"\n")[2].decode()
    size = int(real.checkpoint.split(b"\n")[1])
    forged = sign_note(Checkpoint("archive.example.org/evidence", size, base64.b64decode(root)).text(),
                       impostor.log.signer())
    proof = ProofFile(real.index, real.hashes, forged, real.extra).to_bytes()
    out = tmp_path / "impostor.wacz"
    _repack(bundle, out, archive, lambda m: {**m, f"provenance/{a}.tlog-proof": proof,
                                             "provenance/log.vkey": (impostor.log.vkey() + "\n").encode()})
    code, checks = _verify(cli, out, archive.root)
    failed = [c for c in checks["log.inclusion"] if c["status"] == "FAIL"]
    assert code == 1 and len(failed) == 1 and failed[0]["category"] == "trust", checks["log.inclusion"]
    assert "not by the key trusted here" in failed[0]["detail"]


def test_a_store_without_a_log_key_exports_without_proofs(archive: Archive, site: SampleSite, tmp_path: Path,
                                                           cli: Any) -> None:
    rid = archive.capture(site.base_url + "/plain").record_id
    out = tmp_path / "plain.wacz"
    assert cli("export", rid, "-o", str(out), "--store", str(archive.root)).code == 0
    names = set(_members(out))
    assert not any(n.endswith(".tlog-proof") for n in names) and not set(LOG_FILES) & names
    assert not archive.log.key.exists()  # exporting made no log identity
    code, checks = _verify(cli, out, archive.root)
    assert code == 0 and checks["log.inclusion"][0]["status"] == "SKIPPED"


def test_verify_of_a_stored_record_says_where_it_is_in_the_log(archive: Archive, site: SampleSite, cli: Any) -> None:
    rid = archive.capture(site.base_url + "/plain").record_id
    report = archive.verify(rid, log=False)  # the library, as `archiver verify ID` (the CLI: below, on SQLite)
    check = next(c for c in report.checks if c.name == "log.inclusion")
    assert report.ok and check.status.value == "SKIPPED" and "at index 0" in check.detail
    archive.log.checkpoint(stamp=False)
    report = archive.verify(rid, log=False)
    check = next(c for c in report.checks if c.name == "log.inclusion")
    assert report.ok and check.status.value == "PASS" and check.category.value == "integrity"
    assert "at index 0, checkpoint of size 1 signed" in check.detail and "inclusion verified" in check.detail
    r = cli("verify", rid, "--json", "--store", str(archive.root))
    shown = next(c for c in json.loads(r.out)["checks"] if c["name"] == "log.inclusion")
    assert r.code == 0 and shown["detail"] == check.detail


def test_import_pins_a_log_key(archive: Archive, site: SampleSite, tmp_path: Path, cli: Any) -> None:
    bundle, _ = _logged_export(archive, site, tmp_path, cli)
    vkey = archive.log.vkey()
    other, _ = Archive.init(tmp_path / "other", operator="Someone Else")
    r = cli("import", str(bundle), "--store", str(other.root), "--trust-key", _kid(archive),
            "--trust-log-key", vkey)
    assert r.code == 0, r.out + r.err
    code, checks = _verify(cli, bundle, other.root)
    assert code == 0 and all(c["category"] == "integrity" and "pinned" in c["detail"] for c in checks["log.inclusion"])
    assert any(e.event == "key-trust" and e.detail.get("log_key") == vkey for e in other.custody.entries())


# ---- serving --------------------------------------------------------------------------------------
def test_the_log_is_served_only_when_public_and_only_by_the_specs_paths(archive: Archive, site: SampleSite) -> None:
    from archiver.web.app import create_app

    rid = archive.capture(site.base_url + "/plain").record_id
    archive.capture(site.base_url + "/plain?n=2")
    cp = archive.log.checkpoint(stamp=False)
    app = create_app(archive, start_jobs=False)
    partial = f"/log/tile/0/000.p/{cp.size}"
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/log/checkpoint").status_code == 404  # log.public is false by default
        assert client.get(partial).status_code == 404
        archive.config.set("log.public", "true")
        got = client.get("/log/checkpoint")
        assert got.status_code == 200 and got.content == (archive.root / "log" / "checkpoint").read_bytes()
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
        assert got.headers["cache-control"] == "public, max-age=5"
        tile = client.get(partial)
        assert tile.status_code == 200 and len(tile.content) == 32 * cp.size
        assert tile.headers["cache-control"] == "public, max-age=60"
        entries = client.get(f"/log/tile/entries/000.p/{cp.size}")
        assert entries.status_code == 200 and rid.encode() in entries.content
        for bad in ("/log/tile/0/0.p/2", "/log/tile/00/000.p/2", "/log/tile/0/x000/000.p/2", "/log/tile/64/000",
                    "/log/tile/0/000.p/0", "/log/tile/0/000.p/256", "/log/tile/0/000.p/02", "/log/tile/0/000/",
                    "/log/tile/0/%2e%2e/checkpoint", "/log/tile/0/000.p/2/../../../checkpoints/2",
                    "/log/tile/../checkpoints/2", "/log/tile/0/000.p/2.tsr", "/log/checkpoints/2"):
            assert client.get(bad).status_code == 404, bad
    app.state.web.runner.shutdown(wait=True)


def test_a_full_tile_is_immutable(archive: Archive, site: SampleSite) -> None:
    from archiver.web.app import create_app

    archive.config.set("capture.per_host", "8")
    items = [(f"{site.base_url}/plain?full={i}", None, None) for i in range(256)]
    archive.capture_batch(items, jobs=4, passphrase=lambda: None)  # signs a checkpoint at its end
    archive.config.set("log.public", "true")
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        full = client.get("/log/tile/0/000")
        assert full.status_code == 200 and len(full.content) == 8192
        assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert full.content == (archive.root / "log" / "tile" / "0" / "000").read_bytes()
        assert client.get("/log/tile/entries/000").headers["cache-control"].endswith("immutable")
    app.state.web.runner.shutdown(wait=True)


# ---- the record pages -------------------------------------------------------------------------------
def test_the_record_pages_say_where_the_record_is_in_the_log(archive: Archive, site: SampleSite) -> None:
    from archiver.access import create_token
    from archiver.web.app import create_app

    rid = archive.capture(site.base_url + "/plain").record_id
    archive.publications.publish([rid], actor="tester", passphrase=lambda: None)
    viewer = {"Authorization": f"Bearer {create_token(archive, 'v', 'viewer', actor='tester').token}"}
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        public = client.get(f"/r/{rid}")
        assert public.status_code == 200 and "in the log at index 0, not yet under a signed checkpoint" in public.text
        archive.log.checkpoint(stamp=False)  # the log's key; then a record newer than its only checkpoint
        rid = archive.capture(site.base_url + "/plain?p=2").record_id
        archive.publications.publish([rid], actor="tester", passphrase=lambda: None)
        kept = client.get(f"/r/{rid}/bundle.wacz")  # a GET: no checkpoint signed for it, so no proof yet
        assert kept.status_code == 200 and f"provenance/{rid}.tlog-proof".encode() not in kept.content
        cp = archive.log.checkpoint(stamp=False)  # a new checkpoint is a new public page (its cache key)
        index = archive.log.leaves_of(rid)[0][0]
        line = f"in the log at index {index}, checkpoint of size {cp.size} signed {cp.signed_at}, inclusion verified"
        public = client.get(f"/r/{rid}")
        assert public.status_code == 200 and line in public.text
        kept = client.get(f"/r/{rid}/bundle.wacz")  # covered now: the kept public bundle gains its proof
        assert kept.status_code == 200 and f"provenance/{rid}.tlog-proof".encode() in kept.content
        twin = client.get(f"/r/{rid}.json").json()["log"]
        assert twin["verified"] is True and twin["index"] == index and twin["checkpoint_size"] == cp.size
        private = client.get(f"/records/{rid}", headers=viewer)
        assert private.status_code == 200 and line in private.text
        api = client.get(f"/api/v1/records/{rid}/provenance", headers=viewer).json()["log"]
        assert api["summary"] == line and api["status"] == "PASS"
    app.state.web.runner.shutdown(wait=True)


def test_go_sumdb_checks_a_bundles_proof_and_the_served_tiles(archive: Archive, site: SampleSite, tmp_path: Path,
                                                              cli: Any) -> None:
    """Third-party code, not ours: Go's sumdb note/tlog (tests/tlogcheck) checks the proof file a bundle
    carries with the bundle's vkey, and the checkpoint, tiles and entries as `archiver serve` serves them."""
    from archiver.web.app import create_app
    from tests.test_tlog_verifiers import build_tlogcheck, run_go

    binary = build_tlogcheck(tmp_path)
    bundle, ids = _logged_export(archive, site, tmp_path, cli)
    members = _members(bundle)
    proof = tmp_path / f"{ids[1]}.tlog-proof"
    proof.write_bytes(members[f"provenance/{ids[1]}.tlog-proof"])
    vkey = members["provenance/log.vkey"].decode().strip()
    archive.config.set("log.public", "true")
    served = tmp_path / "served"
    size = int(members["provenance/log.checkpoint"].split(b"\n")[1])
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for path in ("checkpoint", f"tile/0/000.p/{size}", f"tile/entries/000.p/{size}"):
            r = client.get(f"/log/{path}")
            assert r.status_code == 200, path
            (served / path).parent.mkdir(parents=True, exist_ok=True)
            (served / path).write_bytes(r.content)
    app.state.web.runner.shutdown(wait=True)
    got = run_go(binary, "-dir", str(served), "-vkey", vkey, "-entries", "-proof", str(proof))
    assert got.returncode == 0, got.stdout + got.stderr
    assert f"OK proof {proof.name}: entry" in got.stdout and f"OK tiles: the tree hash of {size} entries" in got.stdout


def test_an_export_after_log_origin_changed_still_carries_the_logs_own_proof(archive: Archive, site: SampleSite,
                                                                            tmp_path: Path, cli: Any) -> None:
    """Signing is refused under a new origin (the log's identity); the export stands with the proofs the
    latest checkpoint gives, and its vkey is named as that checkpoint names the log."""
    old = archive.capture(site.base_url + "/plain?o=1").record_id
    cp = archive.log.checkpoint(stamp=False)
    late = archive.capture(site.base_url + "/plain?o=2").record_id
    archive.config.set("log.origin", "renamed.example/evidence")
    out = tmp_path / "renamed.wacz"
    r = cli("export", old, late, "-o", str(out), "--store", str(archive.root))
    assert r.code == 0, r.out + r.err
    members = _members(out)
    assert f"provenance/{late}.tlog-proof" not in members  # newer than the only checkpoint it could sign
    vkey = members["provenance/log.vkey"].decode().strip()
    assert vkey.startswith(cp.origin + "+")
    msha = archive.resolve(old).manifest_sha256
    assert verify_proof(members[f"provenance/{old}.tlog-proof"], vkey, LogEntry("manifest", old, msha)).index == 0
    # and the stored record still verifies against its own log, named as its checkpoints name it
    r = cli("verify", old, "--json", "--store", str(archive.root))
    check = next(c for c in json.loads(r.out)["checks"] if c["name"] == "log.inclusion")
    assert r.code == 0 and check["status"] == "PASS", check
