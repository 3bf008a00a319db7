"""Finding: a SIGTERM/SIGINT that reaches the supervisor (archiver/web/serve.py:_supervise) while it is
replacing a dead worker is never passed to the replacement: on_signal signals the workers alive at
that moment, the loop then spawns the new one, and the final loop sends SIGTERM only `if not got`. The
supervisor then waits forever in p.wait() on a worker nobody told to stop, which keeps serving the port.
The race window (between the liveness check and Popen) is hit on purpose here: the supervisor's
`out.write("HTTP worker … exited; starting another")` delivers the SIGTERM. Bounded: a watchdog ends
the run after 60 s and kills the workers this script started."""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from archiver.api import Archive
from archiver.web import serve as srv


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        if "starting another" in s:
            os.kill(os.getpid(), signal.SIGTERM)  # the stop request lands in the race window
        return len(s)

    def flush(self) -> None:
        pass


with tempfile.TemporaryDirectory() as tmp:
    a, _ = Archive.init(Path(tmp) / "store", operator="Review")
    sock = srv._listen("127.0.0.1", 0, what="the app", listen=False)
    out = Out()
    result: list[str] = []

    port = sock.getsockname()[1]

    def killer() -> None:  # kill -9 one worker once both serve
        import requests

        deadline, up = time.monotonic() + 60, 0
        while up < 20 and time.monotonic() < deadline:  # 20 answers in a row: both workers are serving
            try:
                up = up + 1 if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok else 0
            except requests.RequestException:
                up = 0
                time.sleep(0.2)
        def app_made(pid: int) -> bool:  # create_app ran: its claim thread exists
            try:
                return any(Path(t, "comm").read_text().strip() == "capture-claims"
                           for t in Path(f"/proc/{pid}/task").iterdir())
            except OSError:
                return False

        while not all(app_made(p) for p in children(os.getpid())) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)  # both are in uvicorn's loop by now
        os.kill(children(os.getpid())[0], signal.SIGKILL)

    def watchdog() -> None:
        time.sleep(90)
        left = children(os.getpid())
        states = {p: Path(f"/proc/{p}/stat").read_text().split(") ")[1][0] for p in left}
        print(f"DEFECT: supervisor still waiting 90 s after start and its SIGTERM; workers (pid: state) {states}: "
              "a running one (R/S) was started after the signal and never told to stop (Z: exited, unreaped)\n"
              + out.text, flush=True)
        for p in left:
            os.kill(p, signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=killer, daemon=True).start()
    threading.Thread(target=watchdog, daemon=True).start()
    t0 = time.monotonic()
    code = srv._supervise(sock, 2, a.root, workers=1, public_verify=False, replay_url=None, out=out)  # type: ignore[arg-type]
    print(f"ok: supervisor returned {code} {time.monotonic() - t0:.1f} s after start\n" + out.text)
