"""The capture queue when its database goes away (issue 28, fault 10): real `archiver worker`
processes on a throwaway PostgreSQL reached through a TCP proxy that the test cuts and restores.

- Workers outlive an outage longer than their pool timeout: one line says the catalog is unreachable,
  they back off, reconnect and go on; every job, those running when the database vanished and those
  submitted after it came back, is done exactly once (one record per job key, one custody capture).
- `submit`, `status` and a worker started during the outage exit 4 with one line naming the catalog.
- `status` counts only workers whose heartbeat is recent; a job left running by a worker killed with
  SIGKILL goes back to the queue after `queue.stalled_after` and another worker does it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from archiver.api import Archive, Backends
from tests.services import LocalPostgres, TcpProxy

ARCHIVER = str(Path(sys.executable).parent / "archiver")
#: Seconds the database is away: longer than procrastinate's wait for a pool connection (30 s before
#: `queue.pool_timeout`, 10 s by default now), after which the worker used to die.
OUTAGE = 35.0
STALLED_AFTER = 4.0
PAGE = 6.0  # seconds the page of the killed worker's job takes: long enough to kill it mid-job


class Pages:
    """A local site: ``/p/N`` answers after ``delay`` seconds (query ``?s=``, default 0.2); every request
    is counted by path, so a test can see which pages a worker has started."""

    def __init__(self) -> None:
        hits: Counter[str] = Counter()
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                hits[path] += 1
                delay = float(query[2:]) if query.startswith("s=") else 0.2
                time.sleep(min(delay, 20.0))
                body = (f"<html><head><title>Page {path}</title></head><body><h1>{path}</h1>"
                        f"<p>Terms for {path}.</p></body></html>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def pages() -> Iterator[Pages]:
    p = Pages()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture()
def proxied(postgres: LocalPostgres, tmp_path: Path) -> Iterator[tuple[Archive, str, TcpProxy]]:
    """A store whose catalog is reached through a proxy; the direct URL for the test's own checks."""
    direct = postgres.database()
    proxy = TcpProxy(postgres.port)
    a, _ = Archive.init(tmp_path / "store", operator="Queue Test",
                        backends=Backends(catalog=direct.replace(f":{postgres.port}/", f":{proxy.port}/")))
    for key, value in (("capture.allow_private", "true"), ("queue.host_interval", "0.01"),
                       ("queue.heartbeat", "1"), ("queue.stalled_after", str(STALLED_AFTER)),
                       ("queue.retry_wait", "1"), ("queue.reconnect_max_delay", "2")):
        a.config.set(key, value)
    try:
        yield a, direct, proxy
    finally:
        proxy.close()


def _env(a: Archive) -> dict[str, str]:
    return {**os.environ, "ARCHIVER_HOME": str(a.root)}


def _run(a: Archive, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ARCHIVER, *args], env=_env(a), capture_output=True, text=True, timeout=60)


def _jobs(direct: str) -> dict[str, int]:
    with psycopg.connect(direct, autocommit=True) as conn:
        return {str(s): int(n) for s, n in conn.execute(
            "SELECT status::text, COUNT(*) FROM procrastinate_jobs GROUP BY status").fetchall()}


def _wait(what: str, ok: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _one_line_exit_4(r: subprocess.CompletedProcess[str]) -> None:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 4, (r.returncode, r.stdout[-1000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr and 1 <= len(lines) <= 2, r.stderr  # the error, maybe a hint
    assert "catalog" in lines[0] and "127.0.0.1" in lines[0], r.stderr


class Workers:
    def __init__(self, a: Archive, tmp_path: Path) -> None:
        self.a, self.tmp = a, tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []

    def start(self, name: str, concurrency: int = 2) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.err", "wb")
        self.logs.append(log)
        p = subprocess.Popen([ARCHIVER, "worker", "-c", str(concurrency), "--name", name], env=_env(self.a),
                             stdout=subprocess.DEVNULL, stderr=log)
        self.procs.append(p)
        return p

    def stderr(self, name: str) -> str:
        return (self.tmp / f"{name}.err").read_text(errors="replace")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        for log in self.logs:
            log.close()


def _live_workers(a: Archive) -> int:
    r = _run(a, "status", "--json")
    assert r.returncode == 0, r.stderr
    return int(json.loads(r.stdout)["workers"])


def _exactly_once(root: Path, direct: str, urls: list[str]) -> None:
    """One record per job key and per URL, one custody capture per record, every job succeeded."""
    a = Archive.open(root)
    summaries = a.catalog.list()
    assert sorted(s.url for s in summaries) == sorted(urls)
    with psycopg.connect(direct, autocommit=True) as conn:
        claims = conn.execute("SELECT job_key, record_id FROM job_records").fetchall()
        jobs = conn.execute("SELECT id, status::text FROM procrastinate_jobs").fetchall()
    assert len(jobs) == len(urls) and {s for _, s in jobs} == {"succeeded"}, jobs
    assert sorted(k for k, _ in claims) == sorted(f"procrastinate:{i}" for i, _ in jobs)
    assert sorted(r for _, r in claims) == sorted(s.record_id for s in summaries)
    captures = [e.record_id for e in a.custody.entries() if e.event == "capture"]
    assert sorted(captures) == sorted(s.record_id for s in summaries)  # none twice, none lost
    assert a.custody.verify_chain().ok


def test_workers_survive_a_catalog_outage_and_do_every_job_once(proxied, pages: Pages,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    a, direct, proxy = proxied
    before = [f"{pages.base}/p/{i}" for i in range(6)]
    in_flight = [f"{pages.base}/p/{i}?s=2" for i in range(6, 8)]  # fetched while the database goes away
    after = [f"{pages.base}/p/{i}" for i in range(8, 14)]
    assert _run(a, "submit", *before).returncode == 0
    workers = Workers(a, tmp_path)
    try:
        for name in ("w1", "w2"):
            workers.start(name, concurrency=3)  # slots left idle during the outage keep asking for jobs
        _wait("the first jobs", lambda: _jobs(direct) == {"succeeded": len(before)}, 60)
        _wait("both workers alive", lambda: _live_workers(a) == 2, 30)
        assert _run(a, "submit", *in_flight).returncode == 0
        _wait("captures in flight", lambda: all(pages.hits[f"/p/{i}"] for i in (6, 7)), 30)
        proxy.cut()
        down_at = time.monotonic()
        # while it is down: one line naming the catalog and exit 4, from every command
        for args in (["status"], ["status", "--json"], ["submit", *after[:2]], ["worker", "--until-empty"]):
            _one_line_exit_4(_run(a, *args))
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        assert [p.poll() for p in workers.procs] == [None, None], [workers.stderr(n)[-3000:] for n in ("w1", "w2")]
        for name in ("w1", "w2"):  # said while it was down (within two pool timeouts), and said once
            assert "Traceback" not in workers.stderr(name), workers.stderr(name)[-3000:]
            assert workers.stderr(name).count("unreachable") == 1, workers.stderr(name)[-3000:]
        proxy.restore()
        r = _run(a, "submit", *after)  # after the outage, without restarting anything
        assert r.returncode == 0, r.stderr
        _wait("every job done", lambda: _jobs(direct) == {"succeeded": len(before + in_flight + after)}, 60)
        assert [p.poll() for p in workers.procs] == [None, None]
        assert _live_workers(a) == 2
        r = _run(a, "status")
        assert "workers alive 2" in r.stdout and f"heartbeat in the last {STALLED_AFTER:g} s" in r.stdout, r.stdout
    finally:
        workers.stop()
    for name in ("w1", "w2"):
        err = workers.stderr(name)
        assert "Traceback" not in err, err[-3000:]
        down = [line for line in err.splitlines() if "unreachable" in line]
        assert 1 <= len(down) <= 2, err[-3000:]  # one line for a 35 s outage (at most one a minute)
        assert "PostgreSQL at 127.0.0.1:" in down[0] and "retrying" in down[0], down
        assert "stopped:" in err  # SIGTERM still drains and says so
    assert [p.returncode for p in workers.procs] == [0, 0]
    _exactly_once(a.root, direct, before + in_flight + after)


def test_a_killed_workers_job_comes_back_after_stalled_after(proxied, pages: Pages,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    a, direct, _ = proxied
    url = f"{pages.base}/p/slow?s={PAGE}"
    workers = Workers(a, tmp_path)
    try:
        doomed = workers.start("doomed", concurrency=1)
        assert _run(a, "submit", url).returncode == 0
        _wait("the doomed worker to start the page", lambda: pages.hits["/p/slow"] == 1, 30)
        workers.start("survivor")
        _wait("two live workers", lambda: _live_workers(a) == 2, 30)
        assert _jobs(direct) == {"doing": 1} and pages.hits["/p/slow"] == 1  # still on the page when killed
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        killed_at = time.monotonic()
        _wait("the job done by the survivor", lambda: _jobs(direct) == {"succeeded": 1}, 40)
        took = time.monotonic() - killed_at
        # back in the queue once the dead worker's heartbeat is stalled_after old (swept every third of
        # it), then the page again: never before stalled_after minus one heartbeat, never much after
        assert STALLED_AFTER - 1 + PAGE <= took <= STALLED_AFTER * 4 / 3 + 1 + PAGE + 3, took
        assert pages.hits["/p/slow"] == 2
        time.sleep(max(0.0, killed_at + STALLED_AFTER + 0.5 - time.monotonic()))
        assert _live_workers(a) == 1  # the killed one no longer counts
        r = _run(a, "status")
        assert "workers alive 1" in r.stdout, r.stdout
    finally:
        workers.stop()
    assert "/p/slow" in workers.stderr("survivor") and "Traceback" not in workers.stderr("survivor")
    with psycopg.connect(direct, autocommit=True) as conn:
        attempts = conn.execute("SELECT attempts FROM procrastinate_jobs").fetchall()
    assert attempts == [(2,)]  # the killed run and the survivor's
    _exactly_once(a.root, direct, [url])


def test_an_outage_is_said_once_a_minute_and_retries_back_off(caplog: pytest.LogCaptureFixture) -> None:
    """The worker's reconnect loop, on a fake clock: one line when the catalog goes, at most one a minute
    while it stays away, one when it is back; waits of 1 s doubling up to ``queue.reconnect_max_delay``."""
    from archiver import queue

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    now = [1000.0]
    outage = queue._Outage("catalog (PostgreSQL at db:5432)", 30.0, clock=lambda: now[0])
    waits = []
    with caplog.at_level("DEBUG", logger="archiver.queue"):
        for _ in range(40):  # 40 failed tries, over about 17 minutes
            waits.append(outage.failed("connection refused"))
            now[0] += waits[-1] + 0.5
        outage.recovered()
        down = [m for m in said() if "unreachable" in m]
        assert down[0] == "catalog (PostgreSQL at db:5432) unreachable (connection refused); retrying, next try in 1 s"
        assert 1 < len(down) <= (now[0] - 1000.0) / 60 + 1, down
        assert said()[-1] == (f"catalog (PostgreSQL at db:5432) reachable again after {now[0] - 1000:.0f} s of "
                              "retrying; taking jobs")
        for wait, cap in zip(waits, [1, 2, 4, 8, 16] + [30] * 35, strict=True):
            assert 0.8 * cap <= wait <= cap
        # a database that flaps: a new outage within the minute of the last line is not said again
        caplog.clear()
        outage = queue._Outage("catalog (PostgreSQL at db:5432)", 30.0, clock=lambda: now[0])
        outage.failed("reset")
        now[0] += 5
        outage.recovered()
        now[0] += 5
        outage.failed("reset")
        now[0] += 2
        outage.recovered()
        assert len(said()) == 2 and "unreachable" in said()[0] and "reachable again" in said()[1], said()
        now[0] += 60
        outage.failed("reset")
        assert len(said()) == 3 and "unreachable" in said()[2]
