"""Wayback Machine cross-links against a local stand-in that speaks the Archive's real API formats."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.demo.wayback import LocalWayback
from archiver.errors import WaybackError
from archiver.records import Status
from archiver.wayback import save as spn_save
from archiver.wayback import wayback_timestamp

from .conftest import HTML, store_snapshot


def _shift(ts: str, **delta: float) -> str:
    t = dt.datetime.strptime(ts, "%Y%m%d%H%M%S") + dt.timedelta(**delta)
    return t.strftime("%Y%m%d%H%M%S")


@pytest.fixture()
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVER_IA_ACCESS_KEY", "demo-access")
    monkeypatch.setenv("ARCHIVER_IA_SECRET_KEY", "demo-secret")


def test_lookup_picks_the_nearest_snapshot_and_says_differs(wb_archive: Archive, site: SampleSite,
                                                            ia: LocalWayback) -> None:
    m = wb_archive.capture(site.base_url + "/plain")
    ts = wayback_timestamp(m.captured_at)
    url = m.subject.final_url
    ia.add(url, _shift(ts, days=-30), b"old version")
    ia.add(url, _shift(ts, days=-2), b"two days before")
    near = ia.add(url, _shift(ts, hours=1), b"an hour after")
    ia.add(url, _shift(ts, days=5), b"later")
    add = wb_archive.wayback(m.record_id)
    w = add.wayback
    assert w is not None and w.verdict == "differs"
    assert w.snapshot_timestamp == near.timestamp
    assert w.snapshot_url == f"{ia.base_url}/web/{near.timestamp}/{url}"
    assert w.cdx is not None and w.cdx[5] == near.digest and w.archive_digest == near.digest
    assert f"nearest before {_shift(ts, days=-2)}, after {near.timestamp}" in w.note
    assert "does not show tampering" in w.note
    assert ia.count("available") == 1 and ia.count("cdx") == 1


def test_identical_when_the_archive_stored_our_payload(wb_archive: Archive, site: SampleSite,
                                                       ia: LocalWayback, cli) -> None:  # type: ignore[no-untyped-def]
    m = wb_archive.capture(site.base_url + "/plain")
    ts = wayback_timestamp(m.captured_at)
    ia.add(m.subject.final_url, _shift(ts, minutes=1), b"dynamic variant")
    same = ia.add(m.subject.final_url, _shift(ts, minutes=20), HTML)
    r = cli("wayback", m.record_id, "--json", "--store", str(wb_archive.root))
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["verdict"] == "identical" and out["snapshot_timestamp"] == same.timestamp
    assert out["archive_digest"] == m.digests.payload_sha1_b32 == same.digest
    shown = cli("show", m.record_id, "--store", str(wb_archive.root)).out
    assert "identical" in shown and same.timestamp in shown
    rep = wb_archive.verify(m.record_id)
    assert rep.ok and {c.name: c.status for c in rep.checks}["wayback.1.addendum"] is Status.PASS


def test_no_snapshot(wb_archive: Archive, site: SampleSite) -> None:
    m = wb_archive.capture(site.base_url + "/plain")
    w = wb_archive.wayback(m.record_id).wayback
    assert w is not None and w.verdict == "no-snapshot" and w.snapshot_url is None


def test_spn2_job_that_finishes(wb_archive: Archive, site: SampleSite, ia: LocalWayback, keys: None, cli) -> None:  # type: ignore[no-untyped-def]
    m = wb_archive.capture(site.base_url + "/plain")
    r = cli("wayback", m.record_id, "--save", "--json", "--store", str(wb_archive.root))
    assert r.code == 0, r.err
    out = json.loads(r.out)
    # the stand-in fetched the page like the Archive's crawler: same bytes, same SHA-1
    assert out["verdict"] == "identical" and out["saved"] is True
    assert ia.count("save-status") >= 2


def test_spn2_job_that_errors_leaves_the_record_unchanged(wb_archive: Archive, site: SampleSite, ia: LocalWayback,
                                                         keys: None, cli) -> None:  # type: ignore[no-untyped-def]
    m = wb_archive.capture(site.base_url + "/plain")
    ia.knobs.job_outcome = "error"
    snap = store_snapshot(wb_archive.root)
    r = cli("wayback", m.record_id, "--save", "--json", "--store", str(wb_archive.root))
    assert r.code == 3
    assert json.loads(r.out) == {"record_id": m.record_id, "verdict": "unknown",
                                 "reason": f"Save Page Now job {next(iter(ia.jobs))} failed: error:not-found "
                                           "The server cannot find the requested resource."}
    assert store_snapshot(wb_archive.root) == snap and wb_archive.addenda(m.record_id) == []


def test_spn2_job_that_never_finishes_hits_the_deadline(wb_archive: Archive, site: SampleSite, ia: LocalWayback,
                                                       keys: None, cli) -> None:  # type: ignore[no-untyped-def]
    m = wb_archive.capture(site.base_url + "/plain")
    ia.knobs.job_outcome = "never"
    wb_archive.config.set("wayback.save_deadline", "0.5")
    r = cli("wayback", m.record_id, "--save", "--store", str(wb_archive.root))
    assert r.code == 3 and "did not finish within 0.5 s" in r.err
    assert wb_archive.addenda(m.record_id) == []


def test_spn2_429_then_success(wb_archive: Archive, site: SampleSite, ia: LocalWayback, keys: None) -> None:
    m = wb_archive.capture(site.base_url + "/plain")
    ia.knobs.rate_limit_next = 2
    add = wb_archive.wayback(m.record_id, save=True)
    assert add.wayback is not None and add.wayback.saved and add.wayback.verdict == "identical"
    assert ia.count("save") == 3  # two 429s, then accepted


def test_spn2_if_not_archived_within_reuses_a_recent_snapshot(wb_archive: Archive, site: SampleSite,
                                                               ia: LocalWayback, keys: None) -> None:
    m = wb_archive.capture(site.base_url + "/plain")
    recent = ia.add(m.subject.final_url, wayback_timestamp(m.captured_at), HTML)
    add = wb_archive.wayback(m.record_id, save=True, if_not_archived_within="3d")
    assert add.wayback is not None and add.wayback.snapshot_timestamp == recent.timestamp
    assert len(ia.snapshots) == 1  # nothing new archived


def test_legacy_save_without_keys(wb_archive: Archive, site: SampleSite, ia: LocalWayback,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVER_IA_ACCESS_KEY", raising=False)
    m = wb_archive.capture(site.base_url + "/plain")
    add = wb_archive.wayback(m.record_id, save=True)
    assert add.wayback is not None and add.wayback.verdict == "identical" and add.wayback.saved
    assert ia.count("save") == 1


def test_never_more_than_five_concurrent_saves(wb_archive: Archive, ia: LocalWayback, keys: None) -> None:
    ia.knobs.mode, ia.knobs.delay, ia.knobs.fetch_on_save = "slow", 0.3, False
    cfg = wb_archive.wayback_config()
    errors: list[Exception] = []

    def one(i: int) -> None:
        try:
            spn_save(f"https://example.org/p{i}", cfg)
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert ia.knobs.max_inflight_saves == 5


@pytest.mark.parametrize(("mode", "message"), [
    ("http500", "HTTP 503"),
    ("slow", "did not answer the availability lookup within 0.5 s"),
    ("malformed", "failed"),
    ("blocked", "excluded from the Wayback Machine"),
])
def test_archive_failures_say_unknown_and_change_nothing(wb_archive: Archive, site: SampleSite, ia: LocalWayback,
                                                        mode: str, message: str, cli) -> None:  # type: ignore[no-untyped-def]
    m = wb_archive.capture(site.base_url + "/plain")
    ia.knobs.mode, ia.knobs.delay = mode, 2.0
    wb_archive.config.set("wayback.timeout", "0.5")
    if mode == "blocked":
        ia.add(m.subject.final_url, wayback_timestamp(m.captured_at), HTML)
    snap = store_snapshot(wb_archive.root)
    r = cli("wayback", m.record_id, "--json", "--store", str(wb_archive.root))
    assert r.code == 3
    out = json.loads(r.out)
    assert out["verdict"] == "unknown" and message in out["reason"], out
    assert store_snapshot(wb_archive.root) == snap and wb_archive.addenda(m.record_id) == []


def test_unreachable_archive(archive: Archive, site: SampleSite) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    archive.config.set("wayback.base_url", f"http://127.0.0.1:{port}")
    archive.config.set("wayback.availability_url", f"http://127.0.0.1:{port}/wayback/available")
    m = archive.capture(site.base_url + "/plain")
    with pytest.raises(WaybackError, match="cannot reach the Wayback Machine"):
        archive.wayback(m.record_id)


def test_capture_with_wayback_inline(wb_archive: Archive, site: SampleSite, ia: LocalWayback, keys: None,
                                     cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(wb_archive.root)]
    r = cli("capture", site.base_url + "/plain", "--wayback", "save", "--json", *s)
    assert r.code == 0, r.err
    assert json.loads(r.out)["wayback"]["verdict"] == "identical"
    ia.knobs.mode = "http500"
    r = cli("capture", site.base_url + "/chunked", "--wayback", "lookup", *s)
    assert r.code == 0 and "unknown" in r.out  # the Archive being down never fails a capture


def test_verify_wayback_requeries(wb_archive: Archive, site: SampleSite, ia: LocalWayback, cli) -> None:  # type: ignore[no-untyped-def]
    m = wb_archive.capture(site.base_url + "/plain")
    ia.add(m.subject.final_url, wayback_timestamp(m.captured_at), HTML)
    wb_archive.wayback(m.record_id)
    checks = {c.name: c for c in wb_archive.verify(m.record_id, wayback=True).checks}
    assert checks["wayback.live"].status is Status.PASS
    ia.knobs.mode = "http500"
    checks = {c.name: c for c in wb_archive.verify(m.record_id, wayback=True).checks}
    assert checks["wayback.live"].status is Status.SKIPPED and "unknown" in checks["wayback.live"].detail
    ia.knobs.mode = "ok"
    ia.snapshots.clear()
    # corroboration is context: its loss is reported, and never fails the record (docs/architecture.md)
    r = cli("verify", m.record_id, "--wayback", "--store", str(wb_archive.root))
    assert r.code == 0 and "no longer listed" in r.out and "no longer corroborated" in r.out


def test_tampered_wayback_addendum_fails_verify(wb_archive: Archive, site: SampleSite, ia: LocalWayback) -> None:
    m = wb_archive.capture(site.base_url + "/plain")
    ia.add(m.subject.final_url, wayback_timestamp(m.captured_at), b"other")
    ((sha, _),) = wb_archive.addenda(m.record_id) or ([(wb_archive.wayback(m.record_id), None)] and \
        wb_archive.addenda(m.record_id))
    path = wb_archive.blobs.path(sha)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"differs"', b'"identical"'))
    rep = wb_archive.verify(m.record_id)
    assert not rep.ok and [c.name for c in rep.failures] == ["wayback.1.addendum"]


def _framed(body: bytes, size: int) -> bytes:
    """``body`` as the sample site sends it chunked (``chunk_size`` bytes a chunk)."""
    out = b"".join(b"%x\r\n" % len(body[i:i + size]) + body[i:i + size] + b"\r\n" for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


def test_chunked_capture_keeps_both_digests(wb_archive: Archive, site: SampleSite, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import base64
    import hashlib

    from warcio.archiveiterator import ArchiveIterator

    m = wb_archive.capture(site.base_url + "/chunked")
    d = m.digests
    assert d.payload_sha1_b32 == base64.b32encode(hashlib.sha1(HTML).digest()).decode()
    assert d.payload_sha1_b32_chunked == base64.b32encode(hashlib.sha1(_framed(HTML, 97)).digest()).decode()
    assert d.payload_sha1_b32_chunked != d.payload_sha1_b32
    warc = tmp_path / "w.warc.gz"
    wb_archive.get(m.record_id, "warc", warc)
    with open(warc, "rb") as fh:
        meta = [json.loads(r.content_stream().read()) for r in ArchiveIterator(fh) if r.rec_type == "metadata"]
    assert any(x.get("transfer", {}).get("body_as_sent_sha1_b32") == d.payload_sha1_b32_chunked for x in meta), meta
    plain = wb_archive.capture(site.base_url + "/plain")
    assert plain.digests.payload_sha1_b32_chunked is None  # not chunked: one form only


@pytest.mark.parametrize(("form", "matched"), [("payload", "de-chunked"), ("as-sent", "chunked")])
def test_corroboration_matches_either_form_of_a_chunked_body(wb_archive: Archive, site: SampleSite, ia: LocalWayback,
                                                             monkeypatch: pytest.MonkeyPatch, cli, form: str,  # type: ignore[no-untyped-def]
                                                             matched: str) -> None:
    monkeypatch.delenv("ARCHIVER_IA_ACCESS_KEY", raising=False)
    m = wb_archive.capture(site.base_url + "/chunked")
    ia.knobs.digest_form = form
    r = cli("wayback", m.record_id, "--save", "--json", "--store", str(wb_archive.root))
    assert r.code == 0, r.err
    out = json.loads(r.out)
    want = m.digests.payload_sha1_b32 if form == "payload" else m.digests.payload_sha1_b32_chunked
    assert out["verdict"] == "identical" and out["matched_form"] == matched, out
    assert out["archive_digest"] == want and ia.snapshots[-1].digest == want
    assert out["our_digest"] == m.digests.payload_sha1_b32
    assert out["our_digest_chunked"] == m.digests.payload_sha1_b32_chunked
    assert ("chunk framing included" in out["note"]) == (form == "as-sent"), out["note"]
    rep = wb_archive.verify(m.record_id)
    assert rep.ok and {c.name: c.status for c in rep.checks}["wayback.1.addendum"] is Status.PASS


def test_a_chunked_snapshot_of_other_bytes_still_differs(wb_archive: Archive, site: SampleSite,
                                                         ia: LocalWayback) -> None:
    m = wb_archive.capture(site.base_url + "/chunked")
    ts = wayback_timestamp(m.captured_at)
    ia.add(m.subject.final_url, _shift(ts, minutes=5), _framed(HTML + b"<!-- changed -->", 97))
    w = wb_archive.wayback(m.record_id).wayback
    assert w is not None and w.verdict == "differs" and w.matched_form is None
    assert str(m.digests.payload_sha1_b32_chunked) in w.note and m.digests.payload_sha1_b32 in w.note
