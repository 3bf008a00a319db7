"""S3 (SeaweedFS, Object Lock) blobs, PostgreSQL catalog and `store migrate`, on real local servers."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archiver.api import Archive, Backends
from archiver.errors import StoreConflictError
from archiver.options import CaptureOptions
from store.catalog import PostgresCatalog
from store.s3 import S3BlobStore, S3Settings, retain_until
from tests.conftest import STATE
from tests.services import LocalPostgres, LocalSeaweed


def _bucket() -> str:
    return "evidence-" + uuid.uuid4().hex[:12]


@pytest.fixture()
def s3_env(seaweed: LocalSeaweed, monkeypatch: pytest.MonkeyPatch) -> LocalSeaweed:
    for k, v in seaweed.env().items():
        monkeypatch.setenv(k, v)
    return seaweed


def _init_s3(cli, root: Path, sw: LocalSeaweed, bucket: str, *extra: str) -> Archive:  # type: ignore[no-untyped-def]
    r = cli("init", "--store", str(root), "--operator", "Test Operator", "--blobs", f"s3://{bucket}/cases/acme",
            "--s3-endpoint", sw.endpoint, *extra)
    assert r.code == 0, r.err
    a = Archive.open(root)
    a.config.set("capture.allow_private", "true")
    return a


def test_s3_compliance_lock_blocks_delete_and_overwrite_and_verify_reads_s3(
        cli, s3_env: LocalSeaweed, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bucket = _bucket()
    a = _init_s3(cli, tmp_path / "store", s3_env, bucket, "--object-lock", "compliance", "--retain", "7y")
    m = a.capture(site.base_url + "/policy", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    assert not (tmp_path / "store" / "objects").exists()  # nothing local: every blob is in the bucket
    s3 = s3_env.client()
    blobs = a.catalog.record_blobs(m.record_id)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="cases/acme/")["Contents"]}
    for name, sha in blobs.items():
        key = f"cases/acme/objects/sha256/{sha[:2]}/{sha[2:4]}/{sha}"
        assert key in keys, name
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=365 * 7 - 2)
        assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(sha)).decode()
    assert a.verify(m.record_id).ok

    warc = blobs["warc"]
    key = f"cases/acme/objects/sha256/{warc[:2]}/{warc[2:4]}/{warc}"
    version = s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="AccessDenied"):  # delete the locked version itself
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    with pytest.raises(ClientError, match="AccessDenied"):  # even bypassing governance
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version, BypassGovernanceRetention=True)
    with pytest.raises(ClientError, match="AccessDenied"):  # nor shorten the retention
        s3.put_object_retention(Bucket=bucket, Key=key, VersionId=version,
                                Retention={"Mode": "COMPLIANCE",
                                           "RetainUntilDate": datetime.now(UTC) + timedelta(days=1)})
    with pytest.raises(ClientError, match="PreconditionFailed"):  # overwrite-if-absent is refused
        s3.put_object(Bucket=bucket, Key=key, Body=b"forged", IfNoneMatch="*")
    # A plain PUT and a plain DELETE only stack a new version / a delete marker on the key; the locked
    # bytes stay, and the store keeps reading them.
    s3.put_object(Bucket=bucket, Key=key, Body=b"forged evidence")
    s3.delete_object(Bucket=bucket, Key=key)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)
    assert version in {v["VersionId"] for v in versions["Versions"]}
    assert hashlib.sha256(s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()).hexdigest() == warc
    r = cli("verify", "--store", str(tmp_path / "store"), m.record_id, "--json")
    assert r.code == 0, r.out
    report = json.loads(r.out)
    assert report["ok"] is True
    retention = {c["name"]: c for c in report["checks"]}["store.retention"]
    assert retention["status"] == "PASS" and "COMPLIANCE" in retention["detail"], retention
    out = tmp_path / "c.warc.gz"
    assert cli("get", "--store", str(tmp_path / "store"), m.record_id, "warc", "-o", str(out)).code == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == warc
    wacz = tmp_path / "evidence.wacz"  # a bundle made from S3 verifies like any other
    r = cli("export", "--store", str(tmp_path / "store"), m.record_id, "-o", str(wacz))
    assert r.code == 0, r.err
    assert cli("verify", "--store", str(tmp_path / "store"), str(wacz)).code == 0


def test_unlocked_s3_store_objects_can_be_deleted(cli, s3_env: LocalSeaweed, site,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    """The control for the test above: without Object Lock the same delete goes through, and verify
    notices the missing blob."""
    bucket = _bucket()
    a = _init_s3(cli, tmp_path / "store", s3_env, bucket)
    m = a.capture(site.base_url + "/policy")
    s3 = s3_env.client()
    warc = a.catalog.record_blobs(m.record_id)["warc"]
    key = f"cases/acme/objects/sha256/{warc[:2]}/{warc[2:4]}/{warc}"
    s3.delete_object(Bucket=bucket, Key=key)
    report = a.verify(m.record_id)
    assert not report.ok
    assert "artifact.warc" in {c.name for c in report.failures}


def test_s3_uploads_once_and_checks_sha256(cli, s3_env: LocalSeaweed, site,  # type: ignore[no-untyped-def]
                                         tmp_path: Path) -> None:
    bucket = _bucket()
    a = _init_s3(cli, tmp_path / "store", s3_env, bucket, "--object-lock", "governance", "--retain", "1d")
    m1 = a.capture(site.base_url + "/policy")
    m2 = a.capture(site.base_url + "/policy")
    assert m1.digests.content_sha256 == m2.digests.content_sha256
    sha = m1.digests.content_sha256
    key = f"cases/acme/objects/sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    versions = s3_env.client().list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert len(versions) == 1  # the second capture found it and did not upload again
    assert isinstance(a.blobs, S3BlobStore)
    data = b"the bytes we mean"
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    with pytest.raises(StoreConflictError, match="rejected"):  # the server checks ChecksumSHA256
        a.blobs._upload(io.BytesIO(data), wrong, len(data))
    assert not a.blobs.exists(wrong)
    assert a.rebuild_index().records == 2  # the index can be rebuilt from the manifests in the bucket


def test_s3_settings_are_validated(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = str(tmp_path / "s")
    for args, msg in ((["--blobs", "s3://Bad_Bucket"], "bucket"),
                      (["--blobs", "s3://evidence", "--object-lock", "compliance"], "--retain"),
                      (["--blobs", "s3://evidence", "--object-lock", "forever", "--retain", "1y"], "compliance or"),
                      (["--blobs", "s3://evidence", "--object-lock", "compliance", "--retain", "2001-01-01"],
                       "future"),
                      (["--object-lock", "compliance", "--retain", "1y"], "need --blobs"),
                      (["--catalog", "sqlite:///x"], "postgresql://")):
        r = cli("init", "--store", root, *args)
        assert r.code == 2, (args, r.out, r.err)
        assert msg in r.err, (args, r.err)
        assert not Path(root).exists()
    assert retain_until("7y", datetime(2024, 2, 29, tzinfo=UTC)) == datetime(2031, 2, 28, tzinfo=UTC)
    assert S3Settings.from_url("s3://evidence/a/b/").prefix == "a/b/"


def test_unreachable_catalog_is_a_store_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.services import free_port

    r = cli("init", "--store", str(tmp_path / "s"), "--catalog", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    assert r.code == 4
    assert "cannot connect to catalog" in r.err
    assert not (tmp_path / "s").exists()  # nothing half-made


def test_unreachable_or_refusing_s3_is_a_store_error(cli, s3_env: LocalSeaweed, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.services import free_port

    r = cli("init", "--store", str(tmp_path / "a"), "--blobs", "s3://evidence-x", "--s3-endpoint",
            f"http://127.0.0.1:{free_port()}")
    assert r.code == 4 and "cannot reach" in r.err, r.err
    assert not (tmp_path / "a").exists()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    r = cli("init", "--store", str(tmp_path / "b"), "--blobs", "s3://evidence-y", "--s3-endpoint", s3_env.endpoint)
    assert r.code == 4 and "access denied" in r.err, r.err
    assert not (tmp_path / "b").exists()
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    r = cli("init", "--store", str(tmp_path / "c"), "--blobs", "s3://evidence-z", "--s3-endpoint", s3_env.endpoint)
    assert r.code == 4 and "no S3 credentials" in r.err, r.err


def test_capture_verify_lookup_history_on_both_catalogs(archive: Archive, site, catalog: str, tsa) -> None:  # type: ignore[no-untyped-def]
    """The same API slice on SQLite and PostgreSQL: capture, timestamp addenda, verify, lookup by hash,
    history, rebuild-index."""
    assert archive.catalog.backend == catalog
    archive.config.set("tsa.urls", tsa.url)
    archive.config.set("tsa.certs", str(tsa.ca_pem))
    url = site.base_url + "/policy"
    m1 = archive.capture(url, CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    STATE["policy"] = 2
    try:
        m2 = archive.capture(url, CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    finally:
        STATE["policy"] = 1
    assert m2.previous is not None and m2.previous.record_id == m1.record_id
    assert [r.ok for r in archive.verify_all()] == [True, True]
    hits = archive.lookup("sha256:" + m2.digests.content_sha256)
    assert [(h.record_id, h.artifact) for h in hits] == [(m2.record_id, "content")]
    from archiver.monitor import versions

    assert [v.record_ids for v in versions(archive, url)] == [(m1.record_id,), (m2.record_id,)]
    assert archive.custody.verify_chain().ok
    token = archive.artifact_sha256(m1.record_id, "timestamp")
    assert archive.rebuild_index().records == 2
    assert [s.record_id for s in archive.list()] == [m1.record_id, m2.record_id]
    assert archive.artifact_sha256(m1.record_id, "timestamp") == token  # addenda re-indexed too
    report = archive.verify(m2.record_id)
    assert report.ok and any(c.name.startswith("timestamp.1") and c.status == "PASS" for c in report.checks)
    events = [e.event for e in archive.custody.entries()]
    assert events.count("capture") == 2 and events.count("timestamp") == 2


def test_store_migrate_sqlite_to_postgresql(cli, postgres: LocalPostgres, site,  # type: ignore[no-untyped-def]
                                            tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    assert cli("init", "--store", root, "--operator", "Mover").code == 0
    a = Archive.open(Path(root))
    a.config.set("capture.allow_private", "true")
    ids = [a.capture(site.base_url + p).record_id for p in ("/policy", "/policy", "/terms.pdf")]
    assert cli("watch", "add", "--store", root, site.base_url + "/policy", "--every", "1d").code == 0
    a.config.set("queue.host_interval", "0.25")
    before = list(a.custody.lines())
    url = postgres.database()
    r = cli("store", "migrate", "--store", root, "--to", url, "--json")
    assert r.code == 0, r.err
    rep = json.loads(r.out)
    assert rep["rows"]["records"] == 3 and rep["custody_entries"] == len(before)
    b = Archive.open(Path(root))
    assert isinstance(b.catalog, PostgresCatalog)
    assert b.config.float_("queue.host_interval") == 0.25  # carried into the catalog with the rest
    info = json.loads(cli("store", "info", "--store", root, "--json").out)
    assert info["catalog"] == "postgresql" and info["records"] == 3 and info["custody"] == "catalog table custody"
    assert [s.record_id for s in b.list()] == ids
    assert list(b.custody.lines())[:len(before)] == before  # entries carried over verbatim
    r = cli("verify", "--store", root, "--all", "--json")
    assert r.code == 0, r.out
    m = b.capture(site.base_url + "/policy")  # new records go to PostgreSQL and chain on
    assert m.previous is not None and m.previous.record_id == ids[1]
    assert b.custody.verify_chain().ok
    assert [w.url for w in __import__("archiver.monitor").monitor.list_watches(b)] == [site.base_url + "/policy"]
    r = cli("store", "migrate", "--store", root, "--to", url)
    assert r.code == 2 and "already" in r.err
    c = tmp_path / "other"
    assert cli("init", "--store", str(c)).code == 0
    r = cli("store", "migrate", "--store", str(c), "--to", url)  # the database is taken
    assert r.code == 4 and "already holds" in r.err


def test_host_slots_are_distinct_across_threads(postgres: LocalPostgres, tmp_path: Path) -> None:
    a, _ = Archive.init(tmp_path / "s", backends=Backends(catalog=postgres.database()))
    waits: list[float] = []
    lock = threading.Lock()

    def book() -> None:
        for _ in range(10):
            w = a.catalog.reserve_host_slot("example.org", 0.05)
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=book) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    waits.sort()
    assert len(waits) == 40
    # 40 bookings 50 ms apart: the last one waits about 39 * 50 ms, whatever the interleaving
    assert waits[-1] == pytest.approx(39 * 0.05, abs=0.5)
    assert a.catalog.reserve_host_slot("other.example", 0.05) == pytest.approx(0.0, abs=0.01)


def test_governance_lock_with_legal_hold(cli, s3_env: LocalSeaweed, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """GOVERNANCE lets a privileged user bypass retention; a legal hold still stops the delete."""
    bucket = _bucket()
    a = _init_s3(cli, tmp_path / "store", s3_env, bucket, "--object-lock", "governance", "--retain", "30d",
                 "--legal-hold")
    m = a.capture(site.base_url + "/policy")
    sha = m.digests.content_sha256
    key = f"cases/acme/objects/sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    s3 = s3_env.client()
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockLegalHoldStatus"] == "ON"
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"], BypassGovernanceRetention=True)
    assert a.verify(m.record_id).ok


def test_queue_settings_are_shared_by_every_machine(postgres: LocalPostgres, tmp_path: Path) -> None:
    """Two store directories (two machines) on one catalog: a politeness limit set on one binds both."""
    url = postgres.database()
    a, _ = Archive.init(tmp_path / "machine-a", backends=Backends(catalog=url))
    b, _ = Archive.init(tmp_path / "machine-b", backends=Backends(catalog=url))
    a.config.set("queue.host_interval", "5")
    assert b.config.float_("queue.host_interval") == 5.0
    cfg = b.root / "config.json"
    assert not cfg.exists() or "queue." not in cfg.read_text()
    b.config.set("capture.timeout", "7")  # ordinary settings stay per machine
    assert a.config.float_("capture.timeout") == 30.0
    b.config.unset("queue.host_interval")
    assert a.config.float_("queue.host_interval") == 1.0


def test_two_machines_share_s3_and_postgresql(cli, s3_env: LocalSeaweed, postgres: LocalPostgres, site,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    """Two store directories with the same --blobs and --catalog (two machines): one archive, one
    custody chain; each machine signs with its own key, which the other trusts only when told to."""
    bucket, url = _bucket(), postgres.database()
    roots = [tmp_path / "machine-a", tmp_path / "machine-b"]
    r = cli("init", "--store", str(roots[0]), "--blobs", f"s3://{bucket}/fleet", "--s3-endpoint", s3_env.endpoint,
            "--object-lock", "compliance", "--retain", "1d", "--catalog", url)
    assert r.code == 0, r.err
    # the two steps on machine b: blobs first, then the catalog
    r = cli("init", "--store", str(roots[1]), "--blobs", f"s3://{bucket}/fleet", "--s3-endpoint", s3_env.endpoint,
            "--object-lock", "compliance", "--retain", "1d")
    assert r.code == 0, r.err
    r = cli("init", "--store", str(roots[1]), "--catalog", url)
    assert r.code == 0 and "postgresql://" in r.out and "Object Lock compliance" in r.out, r.out
    a, b = (Archive.open(r) for r in roots)
    a.config.set("capture.allow_private", "true")
    b.config.set("capture.allow_private", "true")
    ma = a.capture(site.base_url + "/policy")
    mb = b.capture(site.base_url + "/terms.pdf")
    r = cli("init", "--store", str(roots[1]), "--catalog", postgres.database())  # records exist now
    assert r.code == 2 and "store migrate" in r.err
    assert [s.record_id for s in a.list()] == [s.record_id for s in b.list()] == [ma.record_id, mb.record_id]
    assert a.custody.verify_chain().ok and a.custody.verify_chain().entries == b.custody.verify_chain().entries
    report = a.verify(mb.record_id)  # b's key is known (catalog + bucket) but not trusted by a
    assert {c.name for c in report.failures} == {"signer.trusted"}
    pub = tmp_path / "b.pub.pem"
    assert cli("keys", "export-public", "-o", str(pub), "--store", str(roots[1])).code == 0
    assert cli("keys", "trust", str(pub), "--store", str(roots[0])).code == 0
    assert all(r.ok for r in a.verify_all())
