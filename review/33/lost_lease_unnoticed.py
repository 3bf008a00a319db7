"""Finding (lower): a process whose lease on a running job lapsed (its renewal could not commit for
longer than web.job_lease_seconds: the SQLite busy_timeout is 60 s, the lease 30 s; or the process was
stopped/suspended) never learns it lost the job: _renew ignores how many rows it updated and _set
writes status without `AND owner=?`. The job is then run by two processes at once and the loser keeps
writing the job's status. Here the lapse is made by moving lease_until into the past while A runs."""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from archiver.api import Archive
from archiver.jobs import CaptureRequest, JobRunner

runs: list[str] = []
lock = threading.Lock()


def fake(name: str, seconds: float):  # type: ignore[no-untyped-def]
    def run(req: CaptureRequest, key: str, actor: str) -> str:
        with lock:
            runs.append(name)
        time.sleep(seconds)
        return "REC-" + name
    return run


with tempfile.TemporaryDirectory() as tmp:
    arch, _ = Archive.init(Path(tmp) / "store", operator="Review")
    a = JobRunner(arch, fake("A", 2.0), workers=1, lease=30.0, poll=0.05)
    job = a.submit(CaptureRequest(url="http://example.com/x"), "tester").job
    deadline = time.monotonic() + 10
    while not runs and time.monotonic() < deadline:
        time.sleep(0.02)
    with arch.catalog.db() as d, d.tx():  # A's renewals did not land for a lease's length
        d.run("UPDATE web_jobs SET lease_until=? WHERE job_id=?", (time.time() - 1, job))
    b = JobRunner(Archive.open(arch.root), fake("B", 0.2), workers=1, lease=30.0, poll=0.05)
    b.resume()
    deadline = time.monotonic() + 10
    while len(runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(2.5)
    with arch.catalog.db() as d:
        owner, status, rid = d.one("SELECT owner, status, record_id FROM web_jobs WHERE job_id=?", (job,)) or ()
    a.shutdown(); b.shutdown()
    print("runs:", runs, "| owner is B:", owner == b.owner, "| final status/record written by:", status, rid)
    print("DEFECT: A kept running a job it no longer held and wrote its status last" if rid == "REC-A" else "ok")
