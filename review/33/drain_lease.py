"""Finding: a draining process (SIGTERM / Ctrl-C -> JobRunner.shutdown(wait=True)) stops renewing the
leases of the jobs it is still running, so once web.job_lease_seconds passes another process claims
the job and runs it a second time while the first run is still going.

Two runners over one SQLite store (= two `serve --http-workers` processes). Runner A claims a job
whose capture takes 3.5 s, then is told to stop (drain). Lease = 1 s (30 s by default: any capture
longer than the lease, e.g. a slow site or a browser capture, hits it). Bounded: every wait has a deadline.
"""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from archiver.api import Archive
from archiver.jobs import CaptureRequest, JobRunner

runs: list[tuple[str, float]] = []
lock = threading.Lock()


def fake(name: str, seconds: float):  # type: ignore[no-untyped-def]
    def run(req: CaptureRequest, key: str, actor: str) -> str:
        with lock:
            runs.append((name, time.monotonic()))
        time.sleep(seconds)
        return "REC-" + name
    return run


with tempfile.TemporaryDirectory() as tmp:
    a_arch, _ = Archive.init(Path(tmp) / "store", operator="Review")
    a = JobRunner(a_arch, fake("A", 3.5), workers=1, lease=1.0, poll=0.05)
    job = a.submit(CaptureRequest(url="http://example.com/slow"), "tester").job
    deadline = time.monotonic() + 10
    while not runs and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runs, "A never started the job"
    # SIGTERM arrives at A: it drains (waits for its running job) ...
    drain = threading.Thread(target=a.shutdown, kwargs={"wait": True})
    drain.start()
    # ... while B, another process of the site, keeps polling
    b = JobRunner(Archive.open(a_arch.root), fake("B", 0.1), workers=1, lease=1.0, poll=0.05)
    b.resume()
    drain.join(15)
    time.sleep(0.3)
    b.shutdown()
    print("runs of job", job, "->", [n for n, _ in runs])
    print("final status:", a.get(job).status)
    print("DEFECT: job run twice while A was draining" if len(runs) > 1 else "ok: run once")
