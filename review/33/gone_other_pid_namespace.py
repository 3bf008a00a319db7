"""Finding: JobRunner._gone (archiver/jobs.py) decides an owner "of this host" is dead from
`kill(pid, 0)` in *this* PID namespace, the host being told by gethostname() alone. Two containers that
share a hostname (docker --network host / --uts host, a fixed `hostname:`) and the store volume see
each other's pids as absent, so one takes the other's live, leased jobs at once and runs them again.
Real reproduction: runner A here holds a 6 s job (lease 30 s); runner B runs in a new PID namespace
(`unshare --user --pid --fork`, same hostname, same store) and must leave the job alone."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from archiver.api import Archive
from archiver.jobs import CaptureRequest, JobRunner

INNER = """
import sys, time
from pathlib import Path
from archiver.api import Archive
from archiver.jobs import JobRunner
ran = []
r = JobRunner(Archive.open(Path(sys.argv[1])), lambda req, key, actor: ran.append(key) or 'REC-B', workers=1,
              lease=30, poll=0.05)
r.resume()
deadline = time.monotonic() + 3
while not ran and time.monotonic() < deadline:
    time.sleep(0.05)
r.shutdown()
print('B ran:', ran)
"""

with tempfile.TemporaryDirectory() as tmp:
    arch, _ = Archive.init(Path(tmp) / "store", operator="Review")
    started = threading.Event()

    def slow(req: CaptureRequest, key: str, actor: str) -> str:
        started.set()
        time.sleep(6)
        return "REC-A"

    a = JobRunner(arch, slow, workers=1, lease=30, poll=0.05)
    a.submit(CaptureRequest(url="http://example.com/x"), "tester")
    assert started.wait(10)
    out = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc",
                          sys.executable, "-P", "-c", INNER, str(arch.root)],
                         capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(Path(__file__).parents[2]),
                                                                         "PATH": "/usr/bin:/bin"})
    a.shutdown()
    print("A (this namespace) holds the job, owner", a.owner)
    print(out.stdout.strip(), out.stderr.strip()[-500:])
    print("DEFECT: a live claim taken from another PID namespace" if "web:" in out.stdout else "ok: B left it alone")
