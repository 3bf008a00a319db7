"""The one write path (store.ledger): chains that cannot fork, the actor as an argument, the outbox in
commit order, and a commit cut off between its custody entry and its catalog rows replayed at open.

Every test here failed on the code before the write path (ec710c2): four concurrent captures of a URL
all signed the same ``previous``; a batch's custody entries named the operator, not the caller; there
was no outbox; a record whose catalog commit was cut off stayed invisible until ``rebuild-index``.
"""

from __future__ import annotations

import gc
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.options import CaptureOptions
from store.custody import CustodyEntry


@pytest.fixture(autouse=True)
def _collect_threads_connections() -> Iterator[None]:
    """Connections of the capture threads' PostgreSQL catalogs are closed when those threads' locals
    go; collect them here, inside this module, rather than in whichever test runs next."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _chain_of(archive: Archive, url: str) -> list[tuple[str, str | None]]:
    """(record, previous) of every record of ``url``, from the signed manifests."""
    out = []
    for s in archive.list(url=url):
        m = archive.manifest(s.record_id)
        out.append((m.record_id, m.previous.record_id if m.previous else None))
    return out


def _assert_linear(chain: list[tuple[str, str | None]]) -> None:
    """One first record, every other record names a distinct predecessor, and the links cover them all."""
    ids = {r for r, _ in chain}
    prevs = [p for _, p in chain]
    assert prevs.count(None) == 1, f"{prevs.count(None)} records start a chain: {chain}"
    named = [p for p in prevs if p is not None]
    assert len(named) == len(set(named)), f"the chain forks: {chain}"
    assert set(named) <= ids
    heads = ids - set(named)
    assert len(heads) == 1, f"{len(heads)} heads: {chain}"


def test_concurrent_captures_of_one_url_make_one_chain(archive: Archive, site) -> None:
    url = site.base_url + "/slowish"
    errors: list[BaseException] = []

    def one() -> None:
        try:
            archive.capture(url, passphrase=lambda: None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    chain = _chain_of(archive, url)
    assert len(chain) == 4
    _assert_linear(chain)
    assert archive.verify_all() and all(v.ok for v in archive.verify_all())


def test_a_batch_of_one_url_on_worker_processes_makes_one_chain(archive: Archive, site) -> None:
    url = site.base_url + "/slowish"
    results = archive.capture_batch([(url, None, None)] * 8, jobs=8, passphrase=lambda: None)
    assert all(r.ok for r in results)
    chain = _chain_of(archive, url)
    assert len(chain) == 8
    _assert_linear(chain)


def test_the_actor_is_passed_to_every_entry_of_a_batch(stamped: Archive, site) -> None:
    """A batch on worker processes, stamped in two parts (one on a background thread): every capture and
    timestamp entry names the caller, not the operator."""
    items = [(f"{site.base_url}/plain?actor={i}", None, None) for i in range(40)]
    results = stamped.capture_batch(items, jobs=8, passphrase=lambda: None, actor="token:alice")
    assert all(r.ok for r in results)
    entries = [e for e in stamped.custody.entries() if e.event in ("capture", "timestamp")]
    assert {e.event for e in entries} == {"capture", "timestamp"}
    assert {e.actor for e in entries} == {"token:alice"}


def test_watch_add_and_remove_are_custody_events_on_the_cli(archive: Archive, site, cli) -> None:
    url = site.base_url + "/plain"
    assert cli("watch", "add", url, "--every", "1d", "--store", str(archive.root)).code == 0
    assert cli("watch", "remove", url, "--store", str(archive.root)).code == 0
    assert cli("watch", "remove", url, "--store", str(archive.root)).code == 2  # not watched: refused, not logged
    events = [(e.event, e.actor, e.detail.get("url")) for e in archive.custody.entries()
              if e.event.startswith("watch")]
    assert events == [("watch-add", "Test Operator", url), ("watch-remove", "Test Operator", url)]


def test_the_outbox_lists_evidence_in_commit_order(stamped: Archive, site, tmp_path: Path) -> None:
    a = stamped.capture(site.base_url + "/plain", passphrase=lambda: None)
    b = stamped.capture(site.base_url + "/gzip", CaptureOptions(entity="Example Inc."), passphrase=lambda: None)
    stamped.get(a.record_id, "content", tmp_path / "copy")  # a custody fact, not evidence: not in the outbox
    rows = stamped.ledger.outbox()
    assert [(r["event"], r["record_id"]) for r in rows] == [
        ("capture", a.record_id), ("timestamp", a.record_id), ("capture", b.record_id), ("timestamp", b.record_id)]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    by_hash = {e.hash: e for e in stamped.custody.entries()}
    for r in rows:  # each row is exactly its custody entry
        e = by_hash[r["detail"]["custody_hash"]]
        assert (e.event, e.record_id, e.subject_sha256, e.actor) == (r["event"], r["record_id"], r["subject_sha256"],
                                                                      r["actor"])
    assert stamped.ledger.outbox(after=rows[1]["seq"])[0]["record_id"] == b.record_id


def _forget(archive: Archive, record_id: str, entry: CustodyEntry) -> None:
    """What a kill between the custody append and the catalog COMMIT leaves: the custody entry, the blobs,
    no catalog rows, and a journal position before the entry."""
    with archive.catalog.db() as d, d.tx():
        for table in ("artifacts", "addenda", "outbox"):
            d.run(f"DELETE FROM {table} WHERE record_id=?", (record_id,))
        d.run("UPDATE documents SET last_record=NULL WHERE last_record=?", (record_id,))
        d.run("DELETE FROM records WHERE record_id=?", (record_id,))
        line = (entry.to_json() + "\n").encode()
        data = archive.custody.path.read_bytes()
        d.run("UPDATE journal SET position=? WHERE name='custody'", (data.index(line),))


def test_a_commit_cut_off_after_its_custody_entry_is_replayed_at_open(archive: Archive, site) -> None:
    if archive.catalog.backend == "postgresql":
        pytest.skip("on PostgreSQL the custody row commits in the catalog's transaction: nothing to replay")
    m = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    entry = next(e for e in archive.custody.entries() if e.event == "capture")
    _forget(archive, m.record_id, entry)
    assert not archive.catalog.has_record(m.record_id)
    assert archive.ledger.pending()

    reopened = Archive.open(archive.root)
    assert reopened.catalog.has_record(m.record_id)
    assert not reopened.ledger.pending()
    assert [(r["event"], r["record_id"]) for r in reopened.ledger.outbox()] == [("capture", m.record_id)]
    assert reopened.verify(m.record_id).ok
    # the next capture of the URL chains onto the recovered record
    n = reopened.capture(site.base_url + "/plain", passphrase=lambda: None)
    assert n.previous is not None and n.previous.record_id == m.record_id


def test_a_failure_inside_the_unit_of_work(archive: Archive, site, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: nothing of the act remains. SQLite: the custody entry is the journal, so once it is
    written the act is committed and the next open indexes it (never a custody entry without its record)."""
    from store.ledger import Ledger

    def broken(*_args: object) -> None:
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(Ledger, "_outbox", staticmethod(broken))
    with pytest.raises(RuntimeError):
        archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    monkeypatch.undo()
    captures = [e for e in archive.custody.entries() if e.event == "capture"]
    reopened = Archive.open(archive.root)
    if archive.catalog.backend == "postgresql":
        assert captures == [] and reopened.catalog.count() == 0
        reopened.catalog.close()  # type: ignore[attr-defined]
    else:
        assert len(captures) == 1 and reopened.catalog.has_record(str(captures[0].record_id))
        assert reopened.verify(str(captures[0].record_id)).ok


def test_reads_after_other_processes_custody_facts_do_not_write(archive: Archive, site, tmp_path: Path) -> None:
    """A custody fact (a download) moves no journal: opening the store afterwards is a pure read."""
    m = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    archive.get(m.record_id, "content", tmp_path / "c")
    before = archive.catalog.path.stat().st_mtime_ns if hasattr(archive.catalog, "path") else None
    assert not Archive.open(archive.root).ledger.pending()
    if before is not None:
        assert archive.catalog.path.stat().st_mtime_ns == before


def test_an_import_is_one_unit_of_work_naming_its_addenda(stamped: Archive, site, tmp_path: Path) -> None:
    from archiver.bundle import default_trust, export, import_bundle

    m = stamped.capture(site.base_url + "/plain", passphrase=lambda: None)
    bundle = tmp_path / "b.wacz"
    export(stamped, [m.record_id], bundle, passphrase=lambda: None, actor="tester")
    other, _ = Archive.init(tmp_path / "other", operator="Other")
    other.config.set("tsa.certs", stamped.config.str_("tsa.certs"))
    from archiver.provenance.keys import key_id_of

    trust = default_trust(other, [key_id_of(stamped.keys.signing_public_key())], None)
    _, imported = import_bundle(other, bundle, trust, actor="token:bob")
    assert imported == [m.record_id]
    entry = next(e for e in other.custody.entries() if e.event == "import")
    assert entry.actor == "token:bob"
    assert len(entry.detail["addenda"].split(",")) == len(other.addenda(m.record_id)) == 1
    rows = other.ledger.outbox()
    assert [(r["event"], r["record_id"], r["actor"]) for r in rows] == [("import", m.record_id, "token:bob")]
    assert json.loads(json.dumps(rows[0]["detail"]))["addenda"] == entry.detail["addenda"]


def test_rebuild_index_keeps_the_committed_signing_of_a_record(archive: Archive, site) -> None:
    """A commit signed again because its chain moved leaves the first signing among the blobs (same record
    ID, another ``previous``): rebuild-index indexes the one custody names, never both or the orphan."""
    import dataclasses

    from archiver.provenance.signing import sign_manifest_file
    from archiver.records import PreviousRef

    a = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    b = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    assert b.previous is not None and b.previous.record_id == a.record_id
    _orphan, data = sign_manifest_file(dataclasses.replace(b, previous=PreviousRef("ZZZZ-ZZZZ", "0" * 64),
                                                          captured_at="2099-01-01T00:00:00.000Z"),
                                      archive.keys.load_private(lambda: None))
    archive.blobs.put_bytes(data)
    assert archive.rebuild_index().records == 2
    assert archive.manifest(b.record_id) == b
    assert all(v.ok for v in archive.verify_all())


def test_a_replayed_capture_claims_its_job_again(archive: Archive, site) -> None:
    """A web or queue job's capture cut off before COMMIT is replayed with its job claim, so the job,
    run again after the restart, finds its record instead of capturing twice."""
    if archive.catalog.backend == "postgresql":
        pytest.skip("nothing to replay on PostgreSQL")
    m = archive.capture(site.base_url + "/plain", CaptureOptions(job_key="web:42"), passphrase=lambda: None)
    entry = next(e for e in archive.custody.entries() if e.event == "capture")
    assert entry.detail["job_key"] == "web:42"
    with archive.catalog.db() as d:
        d.run("DELETE FROM job_records WHERE job_key='web:42'")
    _forget(archive, m.record_id, entry)
    reopened = Archive.open(archive.root)
    assert reopened.catalog.job_record("web:42") == m.record_id


def test_replay_waits_for_a_blob_it_cannot_read(archive: Archive, site, tmp_path: Path) -> None:
    """The journal never moves past an entry whose document is missing, and the outbox announces it
    only once it is indexed (restoring the blob is enough)."""
    if archive.catalog.backend == "postgresql":
        pytest.skip("nothing to replay on PostgreSQL")
    m = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    entry = next(e for e in archive.custody.entries() if e.event == "capture")
    _forget(archive, m.record_id, entry)
    blob = archive.blobs.path(str(entry.subject_sha256))
    saved = blob.read_bytes()
    blob.chmod(0o644)
    blob.unlink()
    again = Archive.open(archive.root)  # cannot index it: nothing moves
    assert not again.catalog.has_record(m.record_id) and again.ledger.pending()
    assert again.ledger.outbox() == []
    from archiver.errors import StoreError

    with pytest.raises(StoreError, match="cannot be read, so its version chain cannot go on"):
        again.capture(site.base_url + "/plain", passphrase=lambda: None)  # it would fork the chain
    n = again.capture(site.base_url + "/gzip", passphrase=lambda: None)  # other URLs go on meanwhile
    assert [r["record_id"] for r in again.ledger.outbox()] == [n.record_id]
    archive.blobs.put_bytes(saved)
    restored = Archive.open(archive.root)
    assert restored.catalog.has_record(m.record_id) and not restored.ledger.pending()
    assert [r["record_id"] for r in restored.ledger.outbox()] == [n.record_id, m.record_id]


def test_a_capture_during_rebuild_index_is_kept_and_chains_on(archive: Archive, site) -> None:
    """rebuild-index is one unit of work (scan included): a capture committing meanwhile waits for it,
    then chains to the rebuilt tip; before, it could be cleared away after the scan, or fork the chain
    (the rebuilt tip was the latest captured, not the chain's end)."""
    import time

    url = site.base_url + "/plain"
    first = archive.capture(url, passphrase=lambda: None)
    scanning = threading.Event()
    original = archive.blobs.iter_all

    def slow_scan():  # type: ignore[no-untyped-def]
        scanning.set()
        time.sleep(0.5)
        yield from original()

    archive.blobs.iter_all = slow_scan  # type: ignore[method-assign]
    rebuilt: list[int] = []
    t = threading.Thread(target=lambda: rebuilt.append(archive.rebuild_index().records))
    t.start()
    assert scanning.wait(10)
    other = Archive.open(archive.root)
    late = other.capture(url, passphrase=lambda: None)
    t.join(60)
    assert rebuilt == [1]
    again = Archive.open(archive.root)
    assert again.catalog.has_record(late.record_id)
    assert late.previous is not None and late.previous.record_id == first.record_id
    third = again.capture(url, passphrase=lambda: None)
    assert third.previous is not None and third.previous.record_id == late.record_id
    _assert_linear(_chain_of(again, url))


def test_a_custody_log_cut_short_is_tampering(archive: Archive, site) -> None:
    """A prefix of a hash chain is still a chain; the catalog's outbox and journal name the entries a cut
    removed, so verification calls it tampered instead of a merely incomplete record."""
    import os

    from archiver.records import Verdict

    if archive.catalog.backend == "postgresql":
        pytest.skip("the custody table lives in the catalog's own database")
    archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    cut = os.path.getsize(archive.custody.path)
    second = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    os.truncate(archive.custody.path, cut)
    again = Archive.open(archive.root)
    report = again.verify(second.record_id, log=False)
    assert report.verdict is Verdict.TAMPERED
    chain = next(c for c in report.checks if c.name == "custody.chain")
    assert chain.status.value == "FAIL" and "missing from the custody log" in chain.detail


def test_import_takes_exactly_the_bytes_it_verified(stamped: Archive, site, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle rewritten in place between its verification and its import (a shared inbox): the store
    imports the verified bytes (a private copy), never the new ones."""
    import shutil
    import zipfile

    import archiver.bundle.importing as importing
    from archiver.bundle import default_trust, export
    from archiver.provenance.keys import key_id_of

    m = stamped.capture(site.base_url + "/plain", passphrase=lambda: None)
    good = tmp_path / "b.wacz"
    export(stamped, [m.record_id], good, passphrase=lambda: None, actor="tester")
    bad = tmp_path / "bad.wacz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(".addendum.1.json"):
                doc = json.loads(data)
                doc["created_at"] = "2001-01-01T00:00:00.000Z"
                data = json.dumps(doc).encode()
            zout.writestr(info, data)
    real = importing.verify_bundle

    def verify_then_rewrite(path, trust, fh=None):  # type: ignore[no-untyped-def]
        reports = real(path, trust, fh=fh)
        shutil.copy(bad, path)  # rewritten in place, same inode
        return reports

    monkeypatch.setattr(importing, "verify_bundle", verify_then_rewrite)
    other, _ = Archive.init(tmp_path / "other", operator="Receiver")
    other.config.set("tsa.certs", stamped.config.str_("tsa.certs"))
    trust = default_trust(other, [key_id_of(stamped.keys.signing_public_key())], None)
    _, imported = importing.import_bundle(other, good, trust, actor="receiver")
    assert imported == [m.record_id]
    assert other.verify(m.record_id, log=False).ok


def test_rebuild_index_keeps_records_a_lost_custody_log_no_longer_names(archive: Archive, site) -> None:
    """The catalog indexes the signed documents: a custody log lost and started again must not make
    genuine records vanish from the catalog (the chain check then reports the lost log)."""
    a = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    b = archive.capture(site.base_url + "/plain", passphrase=lambda: None)
    if archive.catalog.backend == "postgresql":
        pytest.skip("the custody table lives in the catalog's own database")
    archive.custody.path.unlink()
    c = Archive.open(archive.root).capture(site.base_url + "/gzip", passphrase=lambda: None)
    report = Archive.open(archive.root).rebuild_index()
    assert report.records == 3 and len(report.uncommitted) == 2
    assert {s.record_id for s in archive.list()} == {a.record_id, b.record_id, c.record_id}


def test_rebuild_index_keeps_the_stores_own_chain_end_beside_an_import(stamped: Archive, site,
                                                                       tmp_path: Path) -> None:
    from archiver.bundle import default_trust, export, import_bundle
    from archiver.provenance.keys import key_id_of

    url = site.base_url + "/plain"
    other, _ = Archive.init(tmp_path / "other", operator="Other")
    other.config.set("capture.allow_private", "true")
    x = other.capture(url, passphrase=lambda: None, stamp=False)
    bundle = tmp_path / "x.wacz"
    export(other, [x.record_id], bundle, passphrase=lambda: None, actor="other")
    a1 = stamped.capture(url, passphrase=lambda: None)
    a2 = stamped.capture(url, passphrase=lambda: None)
    import_bundle(stamped, bundle, default_trust(stamped, [key_id_of(other.keys.signing_public_key())], None),
                  actor="tester", force=True)
    stamped.rebuild_index()
    a3 = stamped.capture(url, passphrase=lambda: None)
    assert a2.previous is not None and a2.previous.record_id == a1.record_id
    assert a3.previous is not None and a3.previous.record_id == a2.record_id  # not the imported record
