"""Formats that can grow (docs/formats.md): one registry decides what a stored document is, by its
``schema`` and ``kind``; a document from a newer release is reported by every reader, never skipped and
never called tampered."""

from __future__ import annotations

import json

from archiver.api import Archive
from archiver.canonical import canonical
from archiver.formats import classify
from archiver.provenance.signing import _sign
from archiver.records import Verdict
from store.custody import Event


def _newer_addendum(archive: Archive, record_id: str, kind: str = "provision") -> tuple[str, bytes]:
    """A signed addendum of a kind this release does not know, as a newer release would write it."""
    summary = archive.resolve(record_id)
    doc = {"schema": "archiver.addendum/v1", "kind": kind, "record_id": record_id,
           "manifest_sha256": summary.manifest_sha256, "created_at": "2027-01-01T00:00:00.000Z",
           kind: {"excerpt_sha256": "0" * 64, "status": "unchanged"}}
    key = archive.keys.load_private(lambda: None)
    doc["signature"] = _sig_dict(_sign(canonical(doc), key))
    data = canonical(doc)
    sha = archive.blobs.put_bytes(data)

    def index(d) -> None:  # type: ignore[no-untyped-def]
        d.run("INSERT INTO addenda VALUES (?,?,?,?)", (sha, record_id, kind, doc["created_at"]))
    archive.ledger.commit([Event(kind, record_id, sha, {"manifest_sha256": summary.manifest_sha256})],
                          actor="newer release", index=index)
    return sha, data


def _sig_dict(sig: object) -> dict[str, str]:
    return {"alg": sig.alg, "key_id": sig.key_id, "value": sig.value}  # type: ignore[attr-defined]


def test_classify_by_schema_and_kind(archive: Archive, site) -> None:
    m = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    data = archive.blobs.read_bytes(archive.resolve(m.record_id).manifest_sha256)
    assert classify(data).role == "manifest" and classify(data).manifest == m
    newer = json.loads(data)
    newer["schema"] = "archiver.manifest/v2"
    newer["aaa_sorts_first"] = True  # the member that used to make rebuild-index skip a manifest silently
    got = classify(canonical(newer))
    assert got.role == "newer" and got.schema == "archiver.manifest/v2" and "newer" in got.reason
    assert classify(b'{"schema":"archiver.addendum/v1","kind":"provision"}').role == "newer"
    assert classify(b'{"schema":"something-else/v1"}').role == "other"
    assert classify(b"WARC/1.1\r\n").role == "other"
    assert classify(b'{"schema":"archiver.manifest/v1"}').role == "other"  # ours but malformed: not a record


def test_a_newer_addendum_kind_is_reported_not_tampered(archive: Archive, site, cli) -> None:
    m = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    _newer_addendum(archive, m.record_id)
    report = archive.verify(m.record_id)
    newer = [c for c in report.checks if c.name.startswith("provision")]
    assert newer and newer[0].status.value == "FAIL" and newer[0].category.value == "completeness"
    assert "newer than this release" in newer[0].detail
    assert report.verdict is Verdict.INCOMPLETE
    r = cli("verify", m.record_id, "--store", str(archive.root))
    assert r.code == 1 and "provision" in r.out


def test_rebuild_index_reports_what_it_cannot_read(archive: Archive, site, cli) -> None:
    m = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    sha, _ = _newer_addendum(archive, m.record_id)
    data = json.loads(archive.blobs.read_bytes(archive.resolve(m.record_id).manifest_sha256))
    data["schema"] = "archiver.manifest/v2"
    data["aaa_sorts_first"] = True
    v2 = archive.blobs.put_bytes(canonical(data))
    r = cli("store", "rebuild-index", "--json", "--store", str(archive.root))
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["records"] == 1
    assert sorted(x.split()[0] for x in report["newer"]) == sorted([sha, v2])
    r = cli("store", "rebuild-index", "--store", str(archive.root))
    assert "not indexed (format newer than this release)" in r.out and v2 in r.out


def test_a_forgery_relabelled_as_newer_is_still_tampered(archive: Archive, site) -> None:
    """The signature of a document of an unknown format is checked all the same: editing a record and
    calling it ``archiver.manifest/v2`` (or an addendum of a new kind) cannot turn tampered into incomplete."""
    m = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    _, data = _newer_addendum(archive, m.record_id, kind="provision")
    forged = json.loads(data)
    forged["provision"]["status"] = "removed"  # after signing
    sha = archive.blobs.put_bytes(canonical(forged))

    def index(d) -> None:  # type: ignore[no-untyped-def]
        d.run("INSERT INTO addenda VALUES (?,?,?,?)", (sha, m.record_id, "provision", "2027-01-02T00:00:00.000Z"))
    archive.ledger.commit([Event("provision", m.record_id, sha, {})], actor="forger", index=index)
    report = archive.verify(m.record_id)
    assert report.verdict is Verdict.TAMPERED
    assert any(c.status.value == "FAIL" and c.category.value == "integrity" and "does not verify" in c.detail
               for c in report.checks if c.name.startswith("provision"))


def test_a_newer_signature_algorithm_is_incomplete_not_tampered(archive: Archive, site) -> None:
    """A newer release may sign with an algorithm this one cannot check: incomplete, never tampered."""
    m = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    summary = archive.resolve(m.record_id)
    doc = {"schema": "archiver.addendum/v1", "kind": "attestation", "record_id": m.record_id,
           "manifest_sha256": summary.manifest_sha256, "created_at": "2027-01-01T00:00:00.000Z",
           "attestation": {}, "signature": {"alg": "ML-DSA-65", "key_id": "mldsa:0000", "value": "AAAA"}}
    sha = archive.blobs.put_bytes(canonical(doc))

    def index(d) -> None:  # type: ignore[no-untyped-def]
        d.run("INSERT INTO addenda VALUES (?,?,?,?)", (sha, m.record_id, "attestation", doc["created_at"]))
    archive.ledger.commit([Event("attestation", m.record_id, sha, {})], actor="newer release", index=index)
    report = archive.verify(m.record_id)
    assert report.verdict is Verdict.INCOMPLETE
    assert any("cannot check" in c.detail for c in report.failures)
