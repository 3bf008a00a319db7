"""The web tier on several processes over one SQLite store: `archiver serve --http-workers N`, capture
jobs claimed once from the shared job table (kill -9 of one worker mid-run), login codes and capture
limits shared through the catalog, and the per-process token cache with its revocation bound."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from archiver.access import create_token
from archiver.api import Archive
from archiver.jobs import CaptureRequest, JobRunner
from archiver.web import create_app
from tests.services import free_port

ARCHIVER = [sys.executable, "-m", "archiver.cli"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARCHIVER, *args], capture_output=True, text=True, timeout=120)


def _children(pid: int) -> list[int]:
    """The worker processes of a supervisor (Linux)."""
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _wait_healthy(port: int, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}") from None
            time.sleep(0.2)
    raise AssertionError(f"server on {port} did not answer /healthz in {seconds} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def test_kill_9_of_one_of_three_workers_while_20_jobs_run(tmp_path: Path, site: Any) -> None:
    """Three server processes on one port; 20 captures submitted; the worker holding a running job is
    killed with SIGKILL. Every job ends done exactly once (one record per URL, one job row each), the
    other workers answer throughout, and `verify --all` passes."""
    store = tmp_path / "store"
    assert _run("init", "--store", str(store)).returncode == 0
    for key, value in (("capture.allow_private", "true"), ("web.captures_per_minute", "100")):
        assert _run("config", "set", key, value, "--store", str(store)).returncode == 0
    made = _run("tokens", "create", "ops", "--role", "capturer", "--json", "--store", str(store))
    token = json.loads(made.stdout)["token"]
    auth = {"Authorization": f"Bearer {token}"}
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([*ARCHIVER, "serve", "--store", str(store), "--port", str(port), "--http-workers", "3",
                             "--workers", "2", "--replay-port", "0"], stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(port, proc)
        workers = _children(proc.pid)
        assert len(workers) == 3, workers
        urls = [f"{site.base_url}/slowish?kill9={i}" for i in range(20)]
        jobs = []
        for u in urls:
            r = requests.post(f"{base}/api/v1/captures", json={"url": u}, headers=auth, timeout=30)
            assert r.status_code == 202, r.text
            jobs.append(r.json()["job"])
        # the victim: a worker that holds a running job now
        db = sqlite3.connect(store / "catalog.sqlite3", timeout=30)
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            owners = [str(o) for (o,) in db.execute("SELECT owner FROM web_jobs WHERE status='running' "
                                                    "AND owner IS NOT NULL")]
            pids = {int(o.rsplit(":", 2)[1]) for o in owners}
            victim = next((p for p in workers if p in pids), None)
            time.sleep(0.05)
        assert victim is not None, "no job was seen running"
        done_before = db.execute("SELECT COUNT(*) FROM web_jobs WHERE status='done'").fetchone()[0]
        os.kill(victim, signal.SIGKILL)
        # the others keep answering, while the supervisor starts a replacement
        answers = [requests.get(f"{base}/api/v1/records", headers=auth, timeout=30).status_code for _ in range(20)]
        assert answers == [200] * 20, answers
        deadline = time.monotonic() + 240
        states: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            states = [requests.get(f"{base}/api/v1/captures/{j}", headers=auth, timeout=30).json() for j in jobs]
            if all(s["status"] in ("done", "failed") for s in states):
                break
            time.sleep(0.5)
        assert [s["status"] for s in states] == ["done"] * 20, states
        assert done_before < 20  # the kill happened with work left
        per_url = dict(db.execute("SELECT url, COUNT(*) FROM records GROUP BY url").fetchall())
        assert per_url == dict.fromkeys(urls, 1), per_url  # exactly once: none lost, none twice
        assert db.execute("SELECT COUNT(*) FROM web_jobs").fetchone()[0] == 20
        assert len({s["record_id"] for s in states}) == 20
        assert victim not in _children(proc.pid) and len(_children(proc.pid)) == 3
        db.close()
    finally:
        _stop(proc)
        log.close()
    out = (tmp_path / "serve.log").read_text()
    assert f"HTTP worker {victim} exited (signal 9); starting another" in out, out
    v = _run("verify", "--all", "--store", str(store))
    assert v.returncode == 0, v.stdout[-2000:] + v.stderr[-2000:]


def test_two_runners_share_one_job_table_and_run_each_job_once(archive: Archive) -> None:
    """Two runners (two processes' worth) over one store: jobs submitted to one are claimed by both,
    each exactly once; a runner started later does not run again what another holds."""
    ran: list[tuple[str, str]] = []
    lock = threading.Lock()

    def fake(name: str) -> Any:
        def run(req: CaptureRequest, key: str, actor: str) -> str:
            with lock:
                ran.append((name, key))
            time.sleep(0.05)
            return "REC-" + key[-8:]
        return run

    a = JobRunner(archive, fake("a"), workers=3, lease=30, poll=0.05)
    b = JobRunner(Archive.open(archive.root), fake("b"), workers=3, lease=30, poll=0.05)
    try:
        b.resume()
        ids = [a.submit(CaptureRequest(url=f"http://example.com/{i}"), "tester").job for i in range(40)]
        late = JobRunner(Archive.open(archive.root), fake("late"), workers=3, lease=30, poll=0.05)
        late.resume()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(a.get(j).status != "done" for j in ids):
            time.sleep(0.05)
        late.shutdown()
        assert [a.get(j).status for j in ids] == ["done"] * 40
        keys = [k for _, k in ran]
        assert sorted(keys) == sorted(f"web:{j}" for j in ids)  # each once
        assert {n for n, _ in ran} >= {"a", "b"}  # the table is shared, not each runner's own queue
    finally:
        a.shutdown()
        b.shutdown()


def test_a_job_whose_claimant_stopped_renewing_is_taken_after_its_lease(archive: Archive) -> None:
    """A claim held by a process on another machine that went silent is taken once its lease runs out,
    not before."""
    ran: list[str] = []
    r = JobRunner(archive, lambda req, key, actor: ran.append(key) or "REC", workers=1, lease=30, poll=0.05)
    with archive.catalog.db() as d, d.tx():
        d.run("INSERT INTO web_jobs (job_id, url, params, actor, status, created_at, updated_at, owner, "
              "lease_until) VALUES ('j1', 'http://x/', ?, 'tester', 'running', 't', 't', 'elsewhere:1:ab', ?)",
              (json.dumps({"url": "http://x/"}), time.time() + 1.5))
    try:
        r.resume()
        time.sleep(0.8)
        assert ran == []  # its lease still runs
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and r.get("j1").status != "done":
            time.sleep(0.05)
        assert ran == ["web:j1"] and r.get("j1").status == "done"
    finally:
        r.shutdown()


def test_two_apps_share_login_codes_sessions_and_capture_limits(archive: Archive, site: Any) -> None:
    """What a browser or a client meets on another process: a one-time code printed by one is taken
    once by any, a session issued by one is read by another, a token's capture budget is one budget."""
    from archiver.access import issue_login_code

    archive.config.set("web.captures_per_minute", "2")
    create_token(archive, "admin", "admin", actor="tester")
    token = create_token(archive, "cap", "capturer", actor="tester").token
    one = create_app(archive, start_jobs=False)
    two = create_app(Archive.open(archive.root), start_jobs=False)
    try:
        with TestClient(one, base_url="http://127.0.0.1") as c1, TestClient(two, base_url="http://127.0.0.1") as c2:
            code = issue_login_code(archive, "admin")
            r = _use_login_link(c2, code)
            assert r.status_code == 303, r.text
            cookie = r.cookies["archiver_session"]
            assert _use_login_link(c1, code).status_code == 401  # once, site-wide
            c1.cookies.set("archiver_session", cookie)
            assert c1.get("/api/v1/records").status_code == 200  # the other process's session
            h = {"Authorization": f"Bearer {token}"}
            codes = [c.post("/api/v1/captures", json={"url": site.base_url + "/plain"}, headers=h).status_code
                     for c in (c1, c2, c1)]
            assert codes == [202, 202, 429], codes
    finally:
        one.state.web.runner.shutdown(wait=True)
        two.state.web.runner.shutdown(wait=True)


def test_token_checks_are_cached_for_a_bounded_interval(archive: Archive) -> None:
    """A token revoked by another process is accepted for at most web.token_cache_seconds, then refused;
    one revoked through this process is refused at once."""
    archive.config.set("web.token_cache_seconds", "1.5")
    tokens = {n: create_token(archive, n, "viewer", actor="tester").token for n in ("elsewhere", "here")}
    app = create_app(archive, start_jobs=False)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            h = {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}
            assert client.get("/api/v1/records", headers=h["elsewhere"]).status_code == 200
            assert client.get("/api/v1/records", headers=h["here"]).status_code == 200
            checked = time.monotonic()
            r = subprocess.run([*ARCHIVER, "tokens", "revoke", "elsewhere", "--store", str(archive.root)],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            within = client.get("/api/v1/records", headers=h["elsewhere"]).status_code
            if time.monotonic() - checked < 1.4:  # a slow machine may have let the interval pass
                assert within == 200  # cached: no catalog query for this request
            time.sleep(max(0.0, 1.6 - (time.monotonic() - checked)))
            assert client.get("/api/v1/records", headers=h["elsewhere"]).status_code == 401
            from archiver.access import revoke_token

            revoke_token(archive, "here", actor="tester")
            assert client.get("/api/v1/records", headers=h["here"]).status_code == 401
    finally:
        app.state.web.runner.shutdown(wait=True)


@pytest.mark.parametrize("n", [0, -1])
def test_http_workers_must_be_positive(tmp_path: Path, n: int) -> None:
    store = tmp_path / "store"
    assert _run("init", "--store", str(store)).returncode == 0
    r = _run("serve", "--store", str(store), "--port", str(free_port()), "--http-workers", str(n))
    assert r.returncode == 2 and "--http-workers" in r.stderr, r.stderr


def test_bundle_verification_slots_are_per_machine_not_per_process(archive: Archive,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two server processes' verifiers over one store share web.verify_workers: the second upload is
    refused while the first holds the only slot (so N processes cannot run N times the capped memory)."""
    from archiver.web.bundlework import BundleVerifier, VerificationRefused

    archive.config.set("web.verify_workers", "1")
    started, release = threading.Event(), threading.Event()

    def held(self: BundleVerifier, path: Path, name: str) -> Any:
        started.set()
        release.wait(30)
        return "report"

    monkeypatch.setattr(BundleVerifier, "_run", held)
    one = BundleVerifier(archive.root, archive.config)
    two = BundleVerifier(archive.root, Archive.open(archive.root).config)
    t = threading.Thread(target=one.verify, args=(Path("a.wacz"), None))
    t.start()
    try:
        assert started.wait(10)
        with pytest.raises(VerificationRefused) as refused:
            two.verify(Path("b.wacz"), None)
        assert refused.value.status == 503 and "web.verify_workers" in refused.value.detail
    finally:
        release.set()
        t.join(10)
    assert two.verify(Path("b.wacz"), None) == "report"  # free again once the first is done


def test_a_chore_runs_in_one_process_of_the_site_at_a_time(archive: Archive) -> None:
    """The verification refresh is scheduled by every process but run by the one holding its lease;
    another takes over once the holder stops renewing it."""
    a = JobRunner(archive, lambda req, key, actor: "R", workers=1)
    b = JobRunner(Archive.open(archive.root), lambda req, key, actor: "R", workers=1)
    try:
        assert a.hold("verify-refresh", 0.6) and a.hold("verify-refresh", 0.6)  # taken, then renewed
        assert not b.hold("verify-refresh", 0.6)
        time.sleep(0.8)
        assert b.hold("verify-refresh", 30) and not a.hold("verify-refresh", 30)
    finally:
        a.shutdown()
        b.shutdown()


def test_sigterm_drains_every_worker_and_leaves_unstarted_jobs_queued(tmp_path: Path, site: Any) -> None:
    """SIGTERM to the supervisor: each HTTP worker stops taking requests and finishes the capture jobs
    it runs (done, with their records); none is left running, and the server exits 0."""
    store = tmp_path / "store"
    assert _run("init", "--store", str(store)).returncode == 0
    assert _run("config", "set", "capture.allow_private", "true", "--store", str(store)).returncode == 0
    token = json.loads(_run("tokens", "create", "ops", "--role", "capturer", "--json", "--store",
                            str(store)).stdout)["token"]
    auth = {"Authorization": f"Bearer {token}"}
    port = free_port()
    proc = subprocess.Popen([*ARCHIVER, "serve", "--store", str(store), "--port", str(port), "--http-workers", "2",
                             "--workers", "1", "--replay-port", "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_healthy(port, proc)
        for i in range(6):
            r = requests.post(f"http://127.0.0.1:{port}/api/v1/captures", headers=auth, timeout=30,
                              json={"url": f"{site.base_url}/slowish?drain={i}"})
            assert r.status_code == 202, r.text
        db = sqlite3.connect(store / "catalog.sqlite3", timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not db.execute(
                "SELECT COUNT(*) FROM web_jobs WHERE status='running'").fetchone()[0]:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        states = dict(db.execute("SELECT status, COUNT(*) FROM web_jobs GROUP BY status").fetchall())
        assert states.get("running", 0) == 0 and states.get("done", 0) >= 1, states
        assert set(states) <= {"done", "queued"}, states
        done = db.execute("SELECT COUNT(*) FROM web_jobs WHERE status='done' AND record_id IS NOT NULL").fetchone()[0]
        assert done == states["done"]
        db.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_a_draining_process_keeps_the_leases_of_the_jobs_it_finishes(archive: Archive) -> None:
    """SIGTERM drains: the running job is finished by the process that runs it. Its lease must be renewed
    meanwhile, or another process claims the job once the lease runs out and runs it a second time
    (found in review: the claim loop, which renewed the leases, ended before the drain)."""
    runs: list[str] = []

    def fake(name: str, seconds: float) -> Any:
        def run(req: CaptureRequest, key: str, actor: str) -> str:
            runs.append(name)
            time.sleep(seconds)
            return "REC-" + name
        return run

    a = JobRunner(archive, fake("a", 3.5), workers=1, lease=1.0, poll=0.05)
    job = a.submit(CaptureRequest(url="http://example.com/slow"), "tester").job
    deadline = time.monotonic() + 10
    while not runs and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runs == ["a"]
    drain = threading.Thread(target=a.shutdown, kwargs={"wait": True})
    drain.start()
    b = JobRunner(Archive.open(archive.root), fake("b", 0.1), workers=1, lease=1.0, poll=0.05)
    try:
        b.resume()
        drain.join(15)
        time.sleep(0.3)
    finally:
        b.shutdown()
    assert runs == ["a"] and a.get(job).status == "done"


def test_a_check_in_flight_does_not_bring_back_a_token_revoked_here(archive: Archive,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that read the token's row before a revocation made through this process must not cache
    that row after it (found in review: the revoked token was accepted for another cache interval)."""
    import archiver.access as access
    from archiver.errors import AuthenticationError

    secret = create_token(archive, "alice", "viewer", actor="tester").token
    read, go = threading.Event(), threading.Event()
    real = access._still_valid

    def paused(info: Any) -> Any:  # between the catalog read and the cache write
        if threading.current_thread().name == "request":
            read.set()
            go.wait(10)
        return real(info)

    monkeypatch.setattr(access, "_still_valid", paused)
    t = threading.Thread(target=access.authenticate, args=(archive, secret), kwargs={"ttl": 30.0}, name="request")
    t.start()
    assert read.wait(10)
    access.revoke_token(archive, "alice", actor="tester")
    go.set()
    t.join(10)
    with pytest.raises(AuthenticationError, match="revoked"):
        access.authenticate(archive, secret, ttl=30.0)


_INNER_RUNNER = """
import sys, time
from pathlib import Path
from archiver.api import Archive
from archiver.jobs import JobRunner
ran = []
r = JobRunner(Archive.open(Path(sys.argv[1])), lambda req, key, actor: ran.append(key) or 'R', workers=1,
              lease=30, poll=0.05)
r.resume()
deadline = time.monotonic() + 3
while not ran and time.monotonic() < deadline:
    time.sleep(0.05)
r.shutdown()
print('ran', len(ran))
"""


def test_a_process_of_another_pid_namespace_with_our_hostname_is_not_taken_for_dead(archive: Archive) -> None:
    """Two containers sharing a host name and a store (``--network host``): a pid of one is absent from
    the other's namespace. A runner there must wait for the lease, not take a live job at once (found in
    review: kill(pid, 0) in the wrong namespace said "gone" and the job ran twice)."""
    import shutil

    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--user", "--map-root-user", "--pid", "--fork", "true"], capture_output=True,
            timeout=30).returncode != 0:
        pytest.skip("unprivileged PID namespaces are not available here")
    started = threading.Event()

    def slow(req: CaptureRequest, key: str, actor: str) -> str:
        started.set()
        time.sleep(5)
        return "R"

    a = JobRunner(archive, slow, workers=1, lease=30, poll=0.05)
    try:
        a.submit(CaptureRequest(url="http://example.com/x"), "tester")
        assert started.wait(10)
        out = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc",
                              sys.executable, "-c", _INNER_RUNNER, str(archive.root)],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == "ran 0", out.stdout
    finally:
        a.shutdown()


_SIGTERM_AT_START = """
import os, signal, sys
from pathlib import Path
from archiver.api import Archive
from archiver.web import serve as srv
real = srv._drain_first
def drain_then_term(*server):
    previous = real(*server)
    os.kill(os.getpid(), signal.SIGTERM)  # between our handler and uvicorn's taking the signals over
    return previous
srv._drain_first = drain_then_term
srv._serve_app(Archive.open(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), sock=None, workers=1,
               public_verify=False, replay_url=None, out=sys.stdout)
print("stopped", flush=True)
"""


def test_a_sigterm_before_uvicorn_takes_the_signals_still_stops_the_server(archive: Archive) -> None:
    """A worker that gets SIGTERM while it starts (after our drain handler, before uvicorn's) must stop,
    or `serve` waits for it forever (found in review: the handler only counted the signal)."""
    proc = subprocess.Popen([sys.executable, "-c", _SIGTERM_AT_START, str(archive.root), str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=30)
        raise AssertionError("the server still ran 60 s after its SIGTERM") from None
    assert proc.returncode == 0 and "stopped" in out, out[-2000:]


def test_a_worker_started_while_a_stop_signal_is_passed_on_is_told_too(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM reaching the supervisor while it replaces a dead worker: the replacement must be told to
    stop as well (found in review: only the workers alive when the signal came were, and the supervisor
    then waited forever for the new one)."""
    import socket

    from archiver.web import serve as srv

    made: list[Worker] = []

    class Worker:

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.pid = 100_000 + len(made)
            self.signals: list[int] = []
            self.dead = not made  # the first one has just been killed
            made.append(self)

        def poll(self) -> int | None:
            return -9 if self.dead else (0 if self.signals else None)

        def send_signal(self, sig: int) -> None:
            self.signals.append(sig)

        def wait(self) -> int:
            if not self.dead and not self.signals:
                raise AssertionError(f"worker {self.pid} would never stop: nobody told it to")
            return 0

    class Out:
        def write(self, s: str) -> int:
            if "starting another" in s:  # the stop request comes while the replacement is being started
                os.kill(os.getpid(), signal.SIGTERM)
            return len(s)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(srv.subprocess, "Popen", Worker)
    sock = socket.socket()
    assert srv._supervise(sock, 2, tmp_path, workers=1, public_verify=False, replay_url=None, out=Out()) == 0  # type: ignore[arg-type]
    assert [w.signals for w in made] == [[], [signal.SIGTERM], [signal.SIGTERM]]


def test_a_process_that_lost_its_claim_does_not_write_over_the_new_claimant(archive: Archive) -> None:
    """A's lease lapses while it runs the job (its renewals could not commit in time); B claims the job.
    B's result stands: A, finishing later, must not overwrite the job's status and record (found in review:
    the status update had no owner condition)."""
    runs: list[str] = []

    def fake(name: str, seconds: float) -> Any:
        def run(req: CaptureRequest, key: str, actor: str) -> str:
            runs.append(name)
            time.sleep(seconds)
            return "REC-" + name
        return run

    a = JobRunner(archive, fake("a", 2.0), workers=1, lease=30, poll=0.05)
    b = JobRunner(Archive.open(archive.root), fake("b", 0.2), workers=1, lease=30, poll=0.05)
    try:
        job = a.submit(CaptureRequest(url="http://example.com/x"), "tester").job
        deadline = time.monotonic() + 10
        while not runs and time.monotonic() < deadline:
            time.sleep(0.02)
        with archive.catalog.db() as d, d.tx():  # A's lease ran out
            d.run("UPDATE web_jobs SET lease_until=? WHERE job_id=?", (time.time() - 1, job))
        b.resume()
        deadline = time.monotonic() + 10
        while a.held() and time.monotonic() < deadline:  # until A's run is over too
            time.sleep(0.05)
        assert runs == ["a", "b"]
        assert a.get(job).status == "done" and a.get(job).record_id == "REC-b"
    finally:
        a.shutdown()
        b.shutdown()


def test_a_copy_of_the_catalog_cannot_mint_a_session(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of issue 33: the session key was the catalog's secret alone, so a catalog dump or a read-only
    role could sign an admin cookie. Half of it now stays out of the catalog (keys/web-session.key, 0600,
    or $ARCHIVER_WEB_SECRET on a fleet): a cookie signed with the catalog's half is refused."""
    import base64
    import stat

    from fastapi.testclient import TestClient

    from archiver.web import create_app
    from archiver.web.security import COOKIE, SessionSigner, server_secret

    monkeypatch.delenv("ARCHIVER_WEB_SECRET", raising=False)
    archive.tokens.create("boss", "admin", actor="t")
    app = create_app(archive, start_jobs=False)
    with archive.catalog.db() as d:
        row = d.one("SELECT value FROM web_secrets WHERE name='session'")
    assert row is not None
    forged, _ = SessionSigner(base64.b64decode(str(row[0])), 12).issue("boss")
    real, _ = SessionSigner(server_secret(archive.root, archive.catalog), 12).issue("boss")
    key = archive.root / "keys" / "web-session.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with TestClient(app) as c:
        c.cookies.set(COOKIE, forged)
        assert c.get("/api/v1/tokens").status_code == 401
        c.cookies.set(COOKIE, real)
        assert c.get("/api/v1/tokens").status_code == 200
    here = server_secret(archive.root, archive.catalog)
    monkeypatch.setenv("ARCHIVER_WEB_SECRET", "x" * 40)  # a site's shared half replaces this machine's
    assert server_secret(archive.root, archive.catalog) not in (here, base64.b64decode(str(row[0])))
    monkeypatch.setenv("ARCHIVER_WEB_SECRET", "short")
    with pytest.raises(Exception, match="at least 32"):
        server_secret(archive.root, archive.catalog)


def _use_login_link(client: TestClient, code: str) -> Any:
    """What a browser does with the printed link: GET shows a one-button form (and takes nothing), the
    button POSTs the code with the form's nonce."""
    import re

    form = client.get(f"/login?once={code}")
    assert form.status_code == 200 and 'name="once"' in form.text, form.text[:300]
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert nonce
    return client.post("/login", data={"once": code, "csrf_token": nonce.group(1), "next": "/"},
                       follow_redirects=False)


def test_opening_a_login_link_takes_nothing(archive: Archive) -> None:
    """Review of issue 33: GET /login?once= took the code (a GET wrote the catalog, and a link preview or
    prefetch used the link up). Now the GET writes nothing and the code still works afterwards."""
    from archiver.access import issue_login_code

    create_token(archive, "admin", "admin", actor="tester")
    app = create_app(archive, start_jobs=False)
    code = issue_login_code(archive, "admin")
    db = sqlite3.connect(archive.root / "catalog.sqlite3")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        before = db.execute("PRAGMA data_version").fetchone()
        for _ in range(3):  # a preview, a prefetch, the user
            assert c.get(f"/login?once={code}", follow_redirects=False).status_code == 200
        assert db.execute("PRAGMA data_version").fetchone() == before
        assert _use_login_link(c, code).status_code == 303
        assert _use_login_link(c, code).status_code == 401
    app.state.web.runner.shutdown(wait=True)
