"""The distributed queue: real worker processes on a throwaway PostgreSQL, one of them killed -9."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from archiver.api import Archive, Backends
from archiver.errors import StoreConflictError
from archiver.options import CaptureOptions
from tests.conftest import QUEUED_HITS, STATE
from tests.services import LocalPostgres

ARCHIVER = str(Path(sys.executable).parent / "archiver")


def _store(tmp_path: Path, postgres: LocalPostgres, **settings: str) -> Archive:
    a, _ = Archive.init(tmp_path / "store", operator="Queue Test", backends=Backends(catalog=postgres.database()))
    a.config.set("capture.allow_private", "true")
    for k, v in settings.items():
        a.config.set(k.replace("__", "."), v)
    return a


def _env(a: Archive) -> dict[str, str]:
    return {**os.environ, "ARCHIVER_HOME": str(a.root)}


def _status(a: Archive) -> dict:  # type: ignore[type-arg]
    r = subprocess.run([ARCHIVER, "status", "--json"], env=_env(a), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_three_workers_share_300_jobs_one_killed_midway(postgres: LocalPostgres, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    interval = 0.02
    a = _store(tmp_path, postgres, queue__host_interval=str(interval), queue__heartbeat="1",
               queue__stalled_after="3")
    urls = [f"{site.base_url}/queued?n={i}" for i in range(300)]
    (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
    QUEUED_HITS.clear()
    r = subprocess.run([ARCHIVER, "submit", "-i", str(tmp_path / "urls.txt"), "--json"], env=_env(a),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["submitted"] == 300
    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in range(3)]
    workers = [subprocess.Popen([ARCHIVER, "worker", "--concurrency", "4", "--name", f"w{i}"], env=_env(a),
                                stdout=logs[i], stderr=subprocess.STDOUT) for i in range(3)]
    try:
        deadline = time.monotonic() + 120
        while a.catalog.count() < 100:  # kill one worker once a third of the work is done
            assert time.monotonic() < deadline, "workers made no progress"
            time.sleep(0.1)
        in_flight = _status(a)["doing"]
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        deadline = time.monotonic() + 240
        while True:
            st = _status(a)
            if st["succeeded"] + st["failed"] == 300 and st["doing"] == 0 and st["todo"] == 0:
                break
            assert time.monotonic() < deadline, f"queue did not drain: {st}"
            time.sleep(0.5)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(60)
        for fh in logs:
            fh.close()
    assert st["succeeded"] == 300 and st["failed"] == 0, st
    assert in_flight > 0
    summaries = a.catalog.list()
    assert len(summaries) == 300  # none lost
    per_url = Counter(s.url for s in summaries)
    assert set(per_url) == set(urls) and max(per_url.values()) == 1  # no duplicates
    with a.catalog.db() as d:
        retried = d.one("SELECT COUNT(*) FROM procrastinate_jobs WHERE attempts > 0")[0]  # type: ignore[index]
        claims = d.one("SELECT COUNT(*) FROM job_records")[0]  # type: ignore[index]
    assert retried >= 1  # the dead worker's jobs came back through the stalled-job sweep
    assert claims == 300
    assert len({s.record_id for s in summaries}) == 300
    chain = a.custody.verify_chain()
    assert chain.ok, chain.problems
    captures = [e for e in a.custody.entries() if e.event == "capture"]
    assert len(captures) == 300 and {e.record_id for e in captures} == {s.record_id for s in summaries}
    r = subprocess.run([ARCHIVER, "verify", "--all", "--json"], env=_env(a), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-2000:]
    # Politeness across three processes: request starts on the one host are spaced by the interval
    # (the server sees them with loopback jitter, so judge the whole span and most gaps).
    starts = sorted(t for t, _ in QUEUED_HITS)
    assert len(starts) >= 300
    gaps = [b - a_ for a_, b in itertools.pairwise(starts)]
    assert starts[-1] - starts[0] >= 0.9 * interval * (len(starts) - 1)
    assert sorted(gaps)[len(gaps) // 10] >= 0.5 * interval  # 90 % of gaps near the interval or more
    assert "captured" in (tmp_path / "worker1.log").read_text()


def test_failures_retry_then_fail_and_show_in_status(postgres: LocalPostgres, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.services import free_port

    a = _store(tmp_path, postgres, queue__max_attempts="1", queue__retry_wait="0", queue__host_interval="0.01")
    ok, missing, refused = (site.base_url + "/policy", site.base_url + "/comes-back",
                            f"http://127.0.0.1:{free_port()}/gone")
    r = subprocess.run([ARCHIVER, "submit", ok, missing, refused], env=_env(a), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([ARCHIVER, "worker", "--until-empty", "-c", "2"], env=_env(a), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 captured" in r.stderr
    st = _status(a)
    assert (st["succeeded"], st["failed"], st["records"]) == (1, 2, 1)
    fails = {f["url"]: f for f in st["recent_failures"]}
    assert "HTTPStatusError" in fails[missing]["error"] and fails[missing]["retry"] is False
    assert "ConnectError" in fails[refused]["error"] and fails[refused]["retry"] is True
    # the network failure was tried twice (max_attempts=1 retry), the 404 once
    assert sorted(f["attempt"] for f in st["recent_failures"] if f["url"] == refused) == [1, 2]
    r = subprocess.run([ARCHIVER, "status"], env=_env(a), capture_output=True, text=True, timeout=60)
    assert "done 1" in r.stdout and "failed 2" in r.stdout and "/comes-back" in r.stdout
    # the site gets the page; the failed jobs go back in the queue and the missing page is captured
    r = subprocess.run([ARCHIVER, "requeue", "--json"], env=_env(a), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["requeued"] == 2, r.stderr
    assert _status(a)["todo"] == 2
    STATE["comes_back"] = 1
    try:
        r = subprocess.run([ARCHIVER, "worker", "--until-empty", "-q"], env=_env(a), capture_output=True, text=True,
                           timeout=120)
    finally:
        STATE.pop("comes_back")
    st = _status(a)
    assert (st["succeeded"], st["failed"], st["records"]) == (2, 1, 2)
    assert {s.url for s in a.list()} == {ok, missing}


def test_queue_needs_postgresql_and_valid_urls(cli, archive: Archive, postgres: LocalPostgres,  # type: ignore[no-untyped-def]
                                               tmp_path: Path) -> None:
    r = cli("submit", "--store", str(archive.root), "http://example.org/")
    assert r.code == 2 and "PostgreSQL" in r.err and "store migrate" in r.err
    pg = _store(tmp_path / "pg", postgres)
    r = cli("submit", "--store", str(pg.root), "http://example.org/", "ftp://example.org/x")
    assert r.code == 2
    r = cli("status", "--store", str(pg.root), "--json")
    assert r.code == 0 and json.loads(r.out)["todo"] == 0  # the bad line enqueued nothing


def test_one_record_per_job_even_when_a_job_runs_twice(postgres: LocalPostgres, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = _store(tmp_path, postgres)
    m = a.capture(site.base_url + "/policy", CaptureOptions(job_key="procrastinate:42"))
    with pytest.raises(StoreConflictError):
        a.capture(site.base_url + "/policy", CaptureOptions(job_key="procrastinate:42"))
    assert a.catalog.count() == 1
    assert a.catalog.job_record("procrastinate:42") == m.record_id
    # the losing run's custody entry rolled back with its catalog rows: no entry names a ghost record
    assert [e.record_id for e in a.custody.entries() if e.event == "capture"] == [m.record_id]
    assert a.custody.verify_chain().ok


def test_workers_stamp_each_capture_or_leave_a_batch(postgres: LocalPostgres, site, tsa,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    a = _store(tmp_path, postgres, queue__host_interval="0.01")
    a.config.set("tsa.urls", tsa.url)
    a.config.set("tsa.certs", str(tsa.ca_pem))
    urls = [f"{site.base_url}/policy?n={i}" for i in range(4)]
    subprocess.run([ARCHIVER, "submit", *urls[:2]], env=_env(a), check=True, capture_output=True, timeout=60)
    subprocess.run([ARCHIVER, "worker", "--until-empty", "-q"], env=_env(a), check=True, capture_output=True,
                   timeout=120)
    assert tsa.requests == 2 and a.pending_timestamps() == []  # one token per capture by default
    a.config.set("queue.batch_timestamps", "true")
    subprocess.run([ARCHIVER, "submit", *urls[2:]], env=_env(a), check=True, capture_output=True, timeout=60)
    subprocess.run([ARCHIVER, "worker", "--until-empty", "-q"], env=_env(a), check=True, capture_output=True,
                   timeout=120)
    assert tsa.requests == 2 and len(a.pending_timestamps()) == 2
    r = subprocess.run([ARCHIVER, "timestamp", "--pending"], env=_env(a), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert tsa.requests == 3 and a.pending_timestamps() == []  # both stamped by one Merkle-batch request
    assert all(v.ok for v in a.verify_all())


def test_web_captures_on_postgresql_go_through_the_queue(postgres: LocalPostgres, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from archiver.access import create_token
    from archiver.web import create_app

    a = _store(tmp_path, postgres, queue__host_interval="0.01")
    token = create_token(a, "ops", "capturer", actor="tester").token
    app = create_app(a)
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.post("/api/v1/captures", json={"url": site.base_url + "/policy"}, headers=h)
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        assert job.startswith("q") and client.get(f"/api/v1/captures/{job}", headers=h).json()["status"] == "queued"
        assert a.catalog.count() == 0  # the server does not run it: a worker does
        w = subprocess.run([ARCHIVER, "worker", "--until-empty", "-q"], env=_env(a), capture_output=True, text=True,
                           timeout=120)
        assert w.returncode == 0, w.stderr
        done = client.get(f"/api/v1/captures/{job}", headers=h).json()
        assert done["status"] == "done" and done["record_id"] and a.catalog.count() == 1
        browser = client.post("/api/v1/captures", json={"url": site.base_url + "/policy", "browser": True}, headers=h)
        assert browser.status_code == 400 and "queue workers" in browser.json()["detail"]
    app.state.web.runner.shutdown(wait=True)
