"""RFC 3161 timestamps against a real local OpenSSL TSA: stamping, batches, outages, bad TSAs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.batchstamps import EARLY_MIN, BatchStamps
from archiver.demo.server import SampleSite
from archiver.demo.tsa import LocalTSA
from archiver.errors import StoreError
from archiver.provenance import merkle
from archiver.records import BatchItem, StampResult, Status
from archiver.verify import token_checks

from .conftest import store_snapshot


def _checks(report, prefix: str = "timestamp") -> dict[str, Status]:  # type: ignore[no-untyped-def]
    return {c.name: c.status for c in report.checks if c.name.startswith(prefix)}


def _token(archive: Archive, rid: str) -> bytes:
    return archive.blobs.read_bytes(archive.artifact_sha256(rid, "timestamp"))


def test_capture_is_stamped_and_openssl_accepts_the_token(stamped: Archive, site: SampleSite, tsa: LocalTSA,
                                                          tmp_path: Path) -> None:
    stamps = []
    m = stamped.capture(site.base_url + "/chunked", on_stamp=stamps.append)
    assert [s.ok for s in stamps] == [True] and tsa.requests == 1
    report = stamped.verify(m.record_id)
    assert report.ok, report.failures
    assert _checks(report) == {"timestamp.1.addendum": Status.PASS, "timestamp.1.chain": Status.PASS,
                               "timestamp.1.token": Status.PASS,
                               "timestamp.1.tsa": Status.PASS, "timestamp.1.time": Status.PASS}
    # third party: exactly the README's command
    tsr, chain = tmp_path / "manifest.tsr", tmp_path / "tsa-chain.pem"
    stamped.get(m.record_id, "timestamp", tsr)
    stamped.get(m.record_id, "tsa-chain", chain)
    digest = stamped.artifact_sha256(m.record_id, "manifest")
    out = subprocess.run(["openssl", "ts", "-verify", "-digest", digest, "-in", str(tsr), "-CAfile", str(chain)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "Verification: OK" in out.stdout
    # and the imprint is the manifest file's sha256, so -data works too
    mf = tmp_path / "manifest.json"
    stamped.get(m.record_id, "manifest", mf)
    out = subprocess.run(["openssl", "ts", "-verify", "-data", str(mf), "-in", str(tsr), "-CAfile", str(chain)],
                         capture_output=True, text=True, check=False)
    assert "Verification: OK" in out.stdout


def test_swapped_or_flipped_token_fails_the_timestamp_check(stamped: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    a = stamped.capture(site.base_url + "/chunked")
    b = stamped.capture(site.base_url + "/plain")
    # in the store: overwrite A's token blob with B's token
    path = stamped.blobs.path(stamped.artifact_sha256(a.record_id, "timestamp"))
    path.chmod(0o644)
    path.write_bytes(_token(stamped, b.record_id))
    r = cli("verify", a.record_id, "--json", "--store", str(stamped.root))
    assert r.code == 1
    failed = {c["name"] for c in json.loads(r.out)["checks"] if c["status"] == "FAIL"}
    assert failed == {"timestamp.1.token"}
    assert stamped.verify(b.record_id).ok

    # from bytes alone (what a bundle verifier sees): B's token on A's manifest names the imprint
    summary = stamped.resolve(a.record_id)
    ev = next(x for _, x in stamped.addenda(a.record_id, "timestamp") if x is not None).timestamp
    assert ev is not None
    from archiver.stamping import trust_anchors

    kw = {"manifest_sha256": summary.manifest_sha256, "captured_at": a.captured_at,
          "stored_chain": stamped.blobs.read_bytes(ev.chain_sha256), "anchors": trust_anchors(stamped),
          "tolerance": 600.0, "deferred": False}
    res = token_checks("timestamp.1", ev, token=_token(stamped, b.record_id), **kw)
    bad = [c for c in res if c.status is Status.FAIL]
    assert [c.name for c in bad] == ["timestamp.1.token"] and "not this record's manifest" in bad[0].detail

    # every single-byte flip of B's genuine token (seeded) is caught by some timestamp check
    b_summary = stamped.resolve(b.record_id)
    b_ev = next(x for _, x in stamped.addenda(b.record_id, "timestamp") if x is not None).timestamp
    assert b_ev is not None
    good = _token(stamped, b.record_id)
    kw.update(manifest_sha256=b_summary.manifest_sha256, captured_at=b.captured_at,
              stored_chain=stamped.blobs.read_bytes(b_ev.chain_sha256))
    assert all(c.status is Status.PASS for c in token_checks("t", b_ev, token=good, **kw))
    rng = random.Random(3161)
    offsets = sorted({0, len(good) - 1, *rng.sample(range(len(good)), 60)})
    crypto_caught = 0
    for off in offsets:
        flipped = bytearray(good)
        flipped[off] ^= 1 << rng.randrange(8)
        res = token_checks("t", b_ev, token=bytes(flipped), **kw)
        assert any(c.status is Status.FAIL for c in res), f"flip at byte {off} went unnoticed"
        # without the addendum's hash binding, the RFC 3161 checks alone catch almost every flip; the
        # rest land in bytes CMS leaves unsigned (e.g. the SignerInfo's signatureAlgorithm OID)
        unbound = dataclasses.replace(b_ev, token_sha256=hashlib.sha256(bytes(flipped)).hexdigest())
        if any(c.status is Status.FAIL for c in token_checks("t", unbound, token=bytes(flipped), **kw)):
            crypto_caught += 1
    assert crypto_caught >= len(offsets) - 3


def test_batch_of_200_makes_two_tsa_requests(stamped: Archive, site: SampleSite, tsa: LocalTSA) -> None:
    """One token for what finished while the last downloads ran (stamped meanwhile), one for those."""
    items = [(f"{site.base_url}/plain?n={i}", None, None) for i in range(200)]
    stamps = []
    results = stamped.capture_batch(items, jobs=8, on_stamp=stamps.append)
    assert all(r.ok for r in results) and len(results) == 200
    # two TSA round-trips for the batch's records, and one for the log checkpoint signed at its end
    # (issue 30: it covers the records and their timestamps, so it cannot share their token)
    assert tsa.requests == 3, "two TSA round-trips for the records, one for the checkpoint"
    assert [p for p in stamped.log.files.list("checkpoints/") if p.endswith(".tsr")]
    assert len(stamps) == 2 and all(st.ok and st.batch_root for st in stamps)
    early, rest = stamps
    ids = [r.record_id for r in results if r.record_id]
    assert len(early.record_ids) >= 192 and len(rest.record_ids) <= 8
    assert sorted(early.record_ids + rest.record_ids) == sorted(ids)
    assert {r.timestamp for r in results} == {"stamped"}
    for rid in ids[:50]:  # verifying all 200 costs ~10 s more and proves nothing new
        rep = stamped.verify(rid, log=False)
        assert rep.ok, (rid, rep.failures)
        assert _checks(rep)["timestamp.1.merkle"] is Status.PASS
    # every record's inclusion proof leads to the same root, and the token stamps sha256(root)
    roots = set()
    for rid in ids:
        (_, add), = stamped.addenda(rid, "timestamp")
        assert add is not None and add.timestamp is not None and add.timestamp.merkle is not None
        mk = add.timestamp.merkle
        leaf = bytes.fromhex(stamped.resolve(rid).manifest_sha256)
        assert merkle.verify_inclusion(leaf, mk.leaf_index, mk.tree_size, [bytes.fromhex(p) for p in mk.path],
                                       bytes.fromhex(mk.root))
        assert add.timestamp.imprint == hashlib.sha256(bytes.fromhex(mk.root)).hexdigest()
        roots.add(mk.root)
    assert roots == {early.batch_root, rest.batch_root}

    # alter one record's manifest: only that record fails, and its Merkle check names why
    victim = ids[77]
    path = stamped.blobs.path(stamped.resolve(victim).manifest_sha256)
    data = bytearray(path.read_bytes())
    data[data.index(b'"captured_at":"') + 20] ^= 1
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    rep = stamped.verify(victim, log=False)
    assert not rep.ok and _checks(rep)["timestamp.1.merkle"] is Status.FAIL
    for rid in (ids[0], ids[76], ids[78], ids[199]):
        assert stamped.verify(rid, log=False).ok


def test_tsa_down_captures_unstamped_then_pending_stamps_all(stamped: Archive, site: SampleSite, tsa: LocalTSA,
                                                            cli) -> None:  # type: ignore[no-untyped-def]
    tsa.mode = "http500"
    single = stamped.capture(site.base_url + "/plain")
    results = stamped.capture_batch([(f"{site.base_url}/chunked?{i}", None, None) for i in range(5)], jobs=2)
    assert all(r.ok for r in results)
    assert all(r.timestamp and r.timestamp.startswith("unstamped: HTTP 500") for r in results)
    pending = stamped.pending_timestamps()
    assert set(pending) == {single.record_id, *(r.record_id for r in results)}
    rep = stamped.verify(single.record_id)
    assert rep.ok and _checks(rep) == {"timestamp": Status.SKIPPED}
    r = cli("timestamp", "--pending", "--store", str(stamped.root))
    assert r.code == 3 and "HTTP 500" in r.err
    tsa.mode = "ok"
    before = tsa.requests
    r = cli("timestamp", "--pending", "--json", "--store", str(stamped.root))
    assert r.code == 0, r.err
    assert tsa.requests == before + 1
    assert json.loads(r.out)[0]["ok"] is True
    assert stamped.pending_timestamps() == []
    for rid in pending:
        rep = stamped.verify(rid, log=False)
        assert rep.ok and _checks(rep)["timestamp.1.time"] is Status.PASS
    r = cli("timestamp", "--pending", "--store", str(stamped.root))
    assert r.code == 0 and "nothing to stamp" in r.out


@pytest.mark.parametrize(("mode", "message"), [
    ("http500", "HTTP 500"),
    ("reject", "refused the request: status 2 (rejection)"),
    ("garbage", "not a valid timestamp response"),
    ("wrong-imprint", "not ours"),
    ("wrong-nonce", "different nonce"),
    ("slow", "did not answer within"),
])
def test_misbehaving_tsa_never_fails_the_capture(stamped: Archive, site: SampleSite, tsa: LocalTSA,
                                                 mode: str, message: str, cli) -> None:  # type: ignore[no-untyped-def]
    tsa.mode, tsa.delay = mode, 3.0
    stamped.config.set("tsa.timeout", "0.5")
    stamps = []
    m = stamped.capture(site.base_url + "/plain", on_stamp=stamps.append)
    assert len(stamps) == 1 and not stamps[0].ok
    assert message in (stamps[0].error or "")
    assert stamped.addenda(m.record_id) == []
    snap = store_snapshot(stamped.root)
    r = cli("timestamp", m.record_id, "--store", str(stamped.root))
    assert r.code == 3 and message in r.err
    assert store_snapshot(stamped.root) == snap  # nothing half-written
    assert stamped.verify(m.record_id).ok


def test_unreachable_tsa(archive: Archive, site: SampleSite) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    archive.config.set("tsa.urls", f"http://127.0.0.1:{port}/tsr")
    archive.config.set("tsa.retries", "1")
    stamps = []
    m = archive.capture(site.base_url + "/plain", on_stamp=stamps.append)
    assert m.record_id and "cannot reach TSA" in (stamps[0].error or "") and "after 2 attempts" in stamps[0].error


def test_tsa_with_unknown_ca_or_expired_certificate_is_refused(archive: Archive, site: SampleSite,
                                                               tsa: LocalTSA) -> None:
    archive.config.set("tsa.certs", str(tsa.ca_pem))  # trust the first TSA only
    with LocalTSA(label="Stranger TSA") as stranger, LocalTSA(label="Expired TSA", expired=True) as expired:
        archive.config.set("tsa.urls", stranger.url)
        stamps = []
        archive.capture(site.base_url + "/plain", on_stamp=stamps.append)
        assert not stamps[0].ok and "does not verify against tsa.certs" in (stamps[0].error or "")
        (archive.root.parent / "both.pem").write_bytes(tsa.ca_pem.read_bytes() + expired.ca_pem.read_bytes())
        archive.config.set("tsa.certs", str(archive.root.parent / "both.pem"))
        archive.config.set("tsa.urls", expired.url)
        stamps = []
        archive.capture(site.base_url + "/plain", on_stamp=stamps.append)
        assert not stamps[0].ok and "certificate" in (stamps[0].error or "").lower()
        assert "expired" in (stamps[0].error or "")


def test_untrusted_tsa_is_reported_as_such(archive: Archive, site: SampleSite, tsa: LocalTSA) -> None:
    archive.config.set("tsa.urls", tsa.url)  # no tsa.certs: the token is kept but nobody vouches for the TSA
    m = archive.capture(site.base_url + "/plain")
    rep = archive.verify(m.record_id)
    assert not rep.ok
    check = next(c for c in rep.checks if c.name == "timestamp.1.tsa")
    assert check.status is Status.FAIL and "is not trusted here" in check.detail
    assert _checks(rep)["timestamp.1.token"] is Status.PASS
    archive.config.set("tsa.certs", str(tsa.ca_pem))
    assert archive.verify(m.record_id).ok
    # stamped while trusted; later verified by someone who trusts another TSA only
    m2 = archive.capture(site.base_url + "/chunked")
    with LocalTSA(label="Other TSA") as other:
        archive.config.set("tsa.certs", str(other.ca_pem))
        rep = archive.verify(m2.record_id)
    check = next(c for c in rep.checks if c.name == "timestamp.1.tsa")
    assert check.status is Status.FAIL and "token is intact but its TSA" in check.detail


def test_second_tsa_adds_a_second_token(stamped: Archive, site: SampleSite, tsa: LocalTSA, cli) -> None:  # type: ignore[no-untyped-def]
    m = stamped.capture(site.base_url + "/plain")
    with LocalTSA(label="Second TSA") as second:
        both = stamped.root.parent / "both.pem"
        both.write_bytes(tsa.ca_pem.read_bytes() + second.ca_pem.read_bytes())
        stamped.config.set("tsa.certs", str(both))
        r = cli("timestamp", m.record_id, "--tsa", second.url, "--store", str(stamped.root))
        assert r.code == 0, r.err
        assert second.requests == 1
    rep = stamped.verify(m.record_id)
    assert rep.ok
    assert _checks(rep)["timestamp.2.tsa"] is Status.PASS
    assert "Second TSA" in cli("show", m.record_id, "--store", str(stamped.root)).out


def test_gentime_tolerance(stamped: Archive, site: SampleSite) -> None:
    from archiver.stamping import trust_anchors

    m = stamped.capture(site.base_url + "/plain")
    (_, add), = stamped.addenda(m.record_id, "timestamp")
    assert add is not None and add.timestamp is not None
    kw = {"manifest_sha256": stamped.resolve(m.record_id).manifest_sha256,
          "stored_chain": stamped.blobs.read_bytes(add.timestamp.chain_sha256),
          "token": _token(stamped, m.record_id), "anchors": trust_anchors(stamped), "tolerance": 600.0}
    hour_before = "2000-01-01T00:00:00.000Z"
    late = token_checks("t", add.timestamp, captured_at=hour_before, deferred=False, **kw)
    assert next(c for c in late if c.name == "t.time").status is Status.FAIL
    deferred = token_checks("t", add.timestamp, captured_at=hour_before, deferred=True, **kw)
    assert next(c for c in deferred if c.name == "t.time").status is Status.PASS
    future = token_checks("t", add.timestamp, captured_at="2999-01-01T00:00:00.000Z", deferred=False, **kw)
    t = next(c for c in future if c.name == "t.time")
    assert t.status is Status.FAIL and "BEFORE captured_at" in t.detail


def test_rebuild_index_recovers_timestamps(stamped: Archive, site: SampleSite) -> None:
    m = stamped.capture(site.base_url + "/plain")
    stamped.catalog.clear_index()
    assert stamped.rebuild_index().records == 1
    assert len(stamped.addenda(m.record_id, "timestamp")) == 1
    assert stamped.verify(m.record_id).ok


def test_merkle_matches_certificate_transparency_vectors() -> None:
    leaves = [bytes.fromhex(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]
    # RFC 6962 reference roots (certificate-transparency merkle_tree_test) for 1, 3 and 8 leaves
    assert merkle.root(leaves[:1]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.root(leaves[:3]).hex() == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
    assert merkle.root(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    rng = random.Random(6962)
    for n in (1, 2, 3, 5, 8, 13, 64, 200):
        ls = [rng.randbytes(32) for _ in range(n)]
        root, paths = merkle.inclusion_proofs(ls)
        assert root == merkle.root(ls)
        for i in range(n):
            assert merkle.verify_inclusion(ls[i], i, n, paths[i], root)
            assert not merkle.verify_inclusion(ls[i] + b"x", i, n, paths[i], root)
            if n > 1:
                assert not merkle.verify_inclusion(ls[i], (i + 1) % n, n, paths[i], root)


class _ScriptedTSA:
    """Stands in for ``Archive.timestamp`` to test only how a batch is split (the real TSA round-trip
    and Merkle proofs are covered above). ``answers`` says, call by call, ok / refused / store error;
    ``slow``: the first call (the early part, from its thread) answers only once ``release`` is set,
    like a TSA that times out, and its answer is then ``slow``."""

    def __init__(self, *answers: str, slow: str | None = None) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []
        self.slow = slow
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, ids: list[str]) -> list[StampResult]:
        with self._lock:
            first = not self.calls
            self.calls.append(list(ids))
            answer = self.answers.pop(0) if self.answers and not (first and self.slow) else "ok"
        if first and self.slow:
            assert self.release.wait(10)
            answer = self.slow
        if answer == "store-error":
            raise StoreError("disk full")
        return [StampResult("http://tsa", tuple(ids), ok=answer == "ok", error=None if answer == "ok" else "HTTP 500")]


def _feed(split: BatchStamps, n: int, failed: frozenset[int] = frozenset(), settle: bool = True) -> list[BatchItem]:
    """Results as a batch reports them. ``settle``: let the early request (started from ``add``) end
    before the caller goes on, as it does when the last downloads take longer than one TSA round-trip."""
    items = [BatchItem(f"u{i}", error="boom" if i in failed else None, record_id=None if i in failed else f"r{i}")
             for i in range(n)]
    for item in items:
        split.add(item)
    if settle and split._thread is not None:
        split._thread.join(10)
    return items


@pytest.mark.parametrize(("total", "jobs", "sizes"), [
    (10, 4, [10]),          # small: one token
    (EARLY_MIN, 8, [EARLY_MIN]),  # never EARLY_MIN finished while some remain
    (EARLY_MIN + 4, 8, [EARLY_MIN, 4]),  # not when 8 remain (too few finished), when 4 remain
    (100, 16, [84, 16]),    # early part while the last 16 download
    (200, 8, [192, 8]),
])
def test_a_batch_is_stamped_in_at_most_two_parts(total: int, jobs: int, sizes: list[int]) -> None:
    tsa = _ScriptedTSA()
    split = BatchStamps(tsa, total=total, jobs=jobs)
    items = _feed(split, total)
    stamps = split.finish()
    assert [len(c) for c in tsa.calls] == sizes
    assert sorted(rid for call in tsa.calls for rid in call) == sorted(i.record_id for i in items if i.record_id)
    assert {r.timestamp for r in BatchStamps.mark(items, stamps)} == {"stamped"}


@pytest.mark.parametrize("early", ["refused", "store-error"])
def test_a_failed_early_part_is_stamped_with_the_rest(early: str) -> None:
    tsa = _ScriptedTSA(early, "ok")
    split = BatchStamps(tsa, total=100, jobs=16)
    items = _feed(split, 100, failed=frozenset({3, 97}))
    stamps = split.finish()
    assert [len(c) for c in tsa.calls] == [83, 98]  # the 83 early ones again, with the other 15
    assert stamps[-1].ok and len(stamps) == (2 if early == "refused" else 1)
    marked = BatchStamps.mark(items, stamps)
    assert {r.timestamp for r in marked if r.record_id} == {"stamped"}
    assert [r.timestamp for r in marked if not r.record_id] == [None, None]


@pytest.mark.parametrize(("rest", "calls", "stamped"), [
    ("ok", [84, 16, 84], 100),  # a TSA answers the rest: the early records are asked again, after it
    ("refused", [84, 16], 0),  # none answers: no second wait on a TSA that is down
])
def test_a_slow_early_request_is_not_waited_for_before_the_rest(rest: str, calls: list[int], stamped: int) -> None:
    tsa = _ScriptedTSA(rest, slow="refused")
    split = BatchStamps(tsa, total=100, jobs=16)
    items = _feed(split, 100, settle=False)
    finished = threading.Event()
    out: list[StampResult] = []
    worker = threading.Thread(target=lambda: (out.extend(split.finish()), finished.set()))
    worker.start()
    deadline = time.monotonic() + 10
    while len(tsa.calls) < 2 and time.monotonic() < deadline:  # the rest goes out while the early one waits
        time.sleep(0.005)
    assert [len(c) for c in tsa.calls] == [84, 16] and not finished.is_set()
    tsa.release.set()
    worker.join(10)
    assert [len(c) for c in tsa.calls] == calls
    marked = BatchStamps.mark(items, out)
    assert sum(r.timestamp == "stamped" for r in marked) == stamped
    assert all(r.timestamp == "stamped" or r.timestamp == "unstamped: HTTP 500" for r in marked)


def test_records_no_token_covers_say_why() -> None:
    tsa = _ScriptedTSA("ok", "refused")
    split = BatchStamps(tsa, total=100, jobs=16)
    items = _feed(split, 100)
    marked = BatchStamps.mark(items, split.finish())
    states = [r.timestamp for r in marked]
    assert states[:84] == ["stamped"] * 84 and set(states[84:]) == {"unstamped: HTTP 500"}


# ---- a TSA whose clock is off (issue 28, 12) ----------------------------------------------------
def _faketime() -> None:
    import shutil

    if shutil.which("faketime") is None:
        pytest.skip("faketime is not installed (Debian package faketime; `make test` installs it)")


def test_a_token_from_a_tsa_whose_clock_is_off_is_not_attached(stamped: Archive, tsa: LocalTSA, site, cli) -> None:
    """The TSA's clock is 20 minutes ahead: the capture says so and keeps the record unstamped (the
    token kept, its rejection in custody), ``timestamp --pending`` stamps it from a TSA whose clock is
    right, and the record verifies. Before, the token was attached silently and the record could never
    verify again, whatever good token came later."""
    _faketime()
    s = ["--store", str(stamped.root)]
    tsa.clock_offset = 1200
    r = cli("capture", site.base_url + "/plain", *s)
    assert r.code == 0 and "token not attached" in r.out and "clock" in r.out, r.out
    rid = stamped.list()[0].record_id
    assert stamped.pending_timestamps() == [rid]
    rejected = [e for e in stamped.custody.entries() if e.event == "timestamp-rejected"]
    assert len(rejected) == 1 and "after captured_at" in rejected[0].detail["reason"]
    assert stamped.blobs.exists(str(rejected[0].subject_sha256))  # the token is kept
    tsa.clock_offset = 0
    assert cli("timestamp", "--pending", *s).code == 0
    assert stamped.pending_timestamps() == []
    report = stamped.verify(rid)
    assert report.ok and report.verdict.value == "verified"


def test_one_good_token_is_enough_beside_one_whose_time_is_off(stamped: Archive, tsa: LocalTSA, site,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A store made before this check can hold a token whose genTime is off (attached silently): a good
    token added later makes the record verify, and the bad time is reported as information."""
    import archiver.stamping as stamping

    _faketime()
    monkeypatch.setattr(stamping, "clock_disagreement", lambda *a, **k: None)  # as the old code attached it
    tsa.clock_offset = 1200
    m = stamped.capture(site.base_url + "/plain", passphrase=lambda: None)
    monkeypatch.undo()
    assert not stamped.verify(m.record_id).ok  # the off-clock token alone: fails
    tsa.clock_offset = 0
    stamped.timestamp([m.record_id], passphrase=lambda: None)
    report = stamped.verify(m.record_id)
    assert report.ok, [c.to_dict() for c in report.failures]
    time1 = next(c for c in report.checks if c.name == "timestamp.1.time")
    assert time1.status.value == "SKIPPED" and time1.category.value == "context" and "not counted" in time1.detail


def test_an_addendum_signed_with_its_file_bytes_is_the_one_signed_then_serialised() -> None:
    """``sign_addendum_file`` (one ``to_dict`` for the signature and the file) gives exactly what signing
    and then serialising gave: the same signature, the same file bytes, and the signature verifies."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.provenance.signing import (
        addendum_file_bytes,
        addendum_signature_valid,
        sign_addendum,
        sign_addendum_file,
    )
    from archiver.records import Addendum, MerkleProof, TimestampEvidence

    key = Ed25519PrivateKey.generate()
    for merkle_proof in (None, MerkleProof(root="ab" * 32, leaf_index=3, tree_size=7, path=("cd" * 32, "ef" * 32))):
        evidence = TimestampEvidence(tsa_url="http://tsa.example/", token_sha256="01" * 32, chain_sha256="02" * 32,
                                     imprint="03" * 32, gen_time="2026-12-06T08:00:00.000Z", serial="7",
                                     tsa_name="CN=Ünïcode TSA", policy="1.2.3", merkle=merkle_proof, deferred=False)
        add = Addendum(kind="timestamp", record_id="8GVH-6WDR", manifest_sha256="04" * 32,
                       created_at="2026-12-06T08:00:01.000Z", timestamp=evidence)
        signed, data = sign_addendum_file(add, key)
        assert signed == sign_addendum(add, key)  # Ed25519 is deterministic
        assert data == addendum_file_bytes(signed)
        assert addendum_signature_valid(Addendum.from_dict(json.loads(data)), key.public_key())
