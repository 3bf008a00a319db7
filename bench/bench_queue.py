"""Queue throughput: captures/s with 1, 2 and 4 `archiver worker` processes on one PostgreSQL.

Each run gets a fresh database and store and JOBS queued captures of a loopback page that answers
after a delay — a stand-in for a remote server's latency, which is what a fleet of workers hides.
Two settings: BENCH_QUEUE_JOBS (200) pages at BENCH_QUEUE_LATENCY_MS (50) ms, where this machine's
CPUs are the limit, then BENCH_QUEUE_SLOW_JOBS (100) pages at BENCH_QUEUE_SLOW_MS (500) ms, where
waiting on the server is. The peer, in the same run, is one process doing the same captures
with `archiver capture -i urls.txt -j 4` into a SQLite store. Figures are captures per second over
the span from the first job's start to the last job's end (PostgreSQL's own event timestamps), and
wall time including worker start-up. Prints a table; asserts nothing. Loopback only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archiver.api import Archive, Backends  # noqa: E402
from archiver.demo.server import site_file  # noqa: E402
from tests.services import LocalPostgres, pg_bindir  # noqa: E402

SETTINGS = ((int(os.environ.get("BENCH_QUEUE_JOBS", "200")), int(os.environ.get("BENCH_QUEUE_LATENCY_MS", "50"))),
            (int(os.environ.get("BENCH_QUEUE_SLOW_JOBS", "100")), int(os.environ.get("BENCH_QUEUE_SLOW_MS", "500"))))
ARCHIVER = str(Path(sys.executable).parent / "archiver")
PAGE = site_file("privacy.html")


class _Server(ThreadingHTTPServer):
    latency = 0.05


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        time.sleep(self.server.latency)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


def _store(path: Path, catalog: str | None) -> Archive:
    a, _ = Archive.init(path, operator="bench", backends=Backends(catalog=catalog) if catalog else None)
    a.config.set("capture.allow_private", "true")
    a.config.set("queue.host_interval", "0.001")  # measure the machinery, not the politeness limit
    return a


def _queue_run(pg: LocalPostgres, workers: int, urls_file: Path, tmp: Path, jobs: int) -> tuple[float, float]:
    a = _store(tmp / f"q{workers}", pg.database(f"bench_{workers}"))
    env = {**os.environ, "ARCHIVER_HOME": str(a.root)}
    subprocess.run([ARCHIVER, "submit", "-i", str(urls_file)], env=env, check=True, capture_output=True)
    t0 = time.monotonic()
    procs = [subprocess.Popen([ARCHIVER, "worker", "--until-empty", "-c", "4"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    for p in procs:
        p.wait(1800)
    wall = time.monotonic() - t0
    with a.catalog.db() as d:
        row = d.one("SELECT extract(epoch FROM MAX(at) - MIN(at)) FROM procrastinate_events "
                    "WHERE type IN ('started', 'succeeded')")
        done = d.one("SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
    assert row is not None and done is not None
    if int(done[0]) != jobs:
        raise SystemExit(f"{workers} worker(s): only {done[0]} of {jobs} jobs succeeded")
    if a.catalog.count() != jobs:
        raise SystemExit(f"{workers} worker(s): {a.catalog.count()} records for {jobs} jobs")
    return jobs / float(row[0]), wall


def main() -> None:
    lines: list[str] = []
    for jobs, ms in SETTINGS:
        lines += _one_setting(jobs, ms / 1000)
    import platform

    pg_major = Path(str(pg_bindir()), "initdb").resolve().parent.parent.name
    (ROOT / "bench" / "results-queue.md").write_text(
        "# Queue throughput (bench/bench_queue.py)\n\n"
        f"{time.strftime('%Y-%m-%d')}, {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; PostgreSQL {pg_major} with fsync on.\n\n```\n"
        + "\n".join(lines) + "\n```\n", "utf-8")


def _one_setting(jobs: int, latency: float) -> list[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.latency = latency
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as td, LocalPostgres(durable=True) as pg:
        tmp = Path(td)
        urls = tmp / "urls.txt"
        urls.write_text("".join(f"{base}/policy?n={i}\n" for i in range(jobs)))
        peer_store = _store(tmp / "peer", None)
        peer_store.config.set("capture.per_host", "4")  # same concurrency on the one host as a worker
        t0 = time.monotonic()
        subprocess.run([ARCHIVER, "capture", "-i", str(urls), "-j", "4", "--store", str(peer_store.root)],
                       check=True, capture_output=True)
        peer_wall = time.monotonic() - t0
        peer = jobs / peer_wall
        out: list[str] = []

        def say(line: str) -> None:
            print(line, flush=True)
            out.append(line)

        say(f"queue throughput, {jobs} captures, page latency {latency * 1000:.0f} ms, {os.cpu_count()} CPUs")
        say(f"  peer: one process, `archiver capture -i -j 4` (SQLite): {peer:.1f} captures/s "
              f"(wall {peer_wall:.1f} s with start-up)")
        base_rate = None
        for n in (1, 2, 4):
            rate, wall = _queue_run(pg, n, urls, tmp, jobs)
            base_rate = base_rate or rate
            say(f"  {n} worker(s) x 4: {rate:.1f} captures/s (wall {wall:.1f} s with start-up, "
                  f"{jobs / wall:.1f}/s); {rate / base_rate:.2f}x one worker; whole job {peer_wall / wall:.2f}x "
                  "the single process's speed")
    server.shutdown()
    return out


if __name__ == "__main__":
    main()
