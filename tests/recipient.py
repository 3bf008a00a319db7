"""A recipient's side of the hostile-bundle tests: stores set up as a recipient's, a real `archiver serve`
process, and the peak memory of it and of the verification processes it starts (``/proc`` VmHWM)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from archiver.api import Archive
from archiver.bundle import export
from archiver.demo.server import SampleSite
from archiver.demo.tsa import LocalTSA
from tests.services import free_port

from .hostile import Origin

ARCHIVER = [sys.executable, "-m", "archiver.cli"]


@dataclass
class Ran:
    code: int
    out: str
    err: str
    seconds: float
    rss: int  # peak resident set size of the process, bytes


#: Starts the command and reports its exit status and ``wait4``'s peak RSS on a pipe. Why a small process
#: in between: a child's ``ru_maxrss`` starts at its parent's peak (Linux keeps the high-water mark
#: across fork and exec), and pytest's own peak is not the command's.
WAIT4 = ("import os, subprocess, sys\n"
         "p = subprocess.Popen(sys.argv[2:])\n"
         "_, st, ru = os.wait4(p.pid, 0)\n"
         "os.write(int(sys.argv[1]), b'%d %d' % (os.waitstatus_to_exitcode(st), ru.ru_maxrss))\n")


def run(args: list[str], env: dict[str, str]) -> Ran:
    """One CLI process with its own peak RSS (a watchdog kills it after 90 s)."""
    started = time.monotonic()
    rfd, wfd = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", WAIT4, str(wfd), *ARCHIVER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, pass_fds=(wfd,), start_new_session=True)
    os.close(wfd)
    watchdog = threading.Timer(90, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
    with os.fdopen(rfd, "rb") as fh:
        code, rss = (int(x) for x in fh.read().split())
    return Ran(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.monotonic() - started,
               rss * 1024)


def hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def children(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out.update(int(c) for c in (task / "children").read_text().split())
    except OSError:
        pass
    return out


class Sampler(threading.Thread):
    """The peak RSS (VmHWM) of a server and of every child it starts, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.server = 0
        self.child = 0
        self.seen: set[int] = set()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            self.server = max(self.server, hwm(self.pid))
            for c in children(self.pid):
                self.seen.add(c)
                self.child = max(self.child, hwm(c))


def case_env(home: Path) -> dict[str, str]:
    (home / "home").mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    return env | {"HOME": str(home / "home"), "TMPDIR": str(home / "tmp"), "NO_COLOR": "1", "COLUMNS": "120"}


def stamped_store(root: Path, operator: str, tsa: LocalTSA, ca: Path) -> Archive:
    a, _ = Archive.init(root, operator=operator)
    for k, v in (("capture.allow_private", "true"), ("tsa.urls", tsa.url), ("tsa.certs", str(ca)),
                 ("tsa.retries", "0")):
        a.config.set(k, v)
    return a


def serve_process(store: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """`archiver serve` on 127.0.0.1 as a process of its own, once it answers ``/healthz``."""
    port = free_port()
    # one HTTP process: the tests watch the server's own memory and its verification children
    proc = subprocess.Popen([*ARCHIVER, "serve", "--store", str(store), "--port", str(port), "--workers", "1",
                             "--http-workers", "1", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=1).ok:
                return proc, base
        except requests.ConnectionError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=30)
    raise AssertionError("archiver serve did not answer /healthz in 30 s")


@dataclass(frozen=True)
class Setup:
    origin: Origin  # the genuine bundle, its exporting store, another operator's bundle
    template: Path  # an empty recipient store trusting the TSA: copied for each case
    key_id: str  # the exporter's signing key, pinned with --trust-key


def recipient_setup(root: Path, site: SampleSite) -> Setup:
    """A stamped record exported by one operator, another operator's bundle, and a recipient's store."""
    with LocalTSA() as tsa:
        ca = root / "tsa-ca.pem"
        shutil.copyfile(tsa.ca_pem, ca)
        a = stamped_store(root / "origin", "Test Operator", tsa, ca)
        rid = a.capture(site.base_url + "/chunked").record_id
        good = root / "good.wacz"
        export(a, [rid], good, passphrase=lambda: None, actor="tester")
        b = stamped_store(root / "other-operator", "Another Operator", tsa, ca)
        other = root / "other.wacz"
        export(b, [b.capture(site.base_url + "/plain").record_id], other, passphrase=lambda: None, actor="other")
    template, _ = Archive.init(root / "template", operator="Recipient")
    template.config.set("tsa.certs", str(ca))
    return Setup(Origin(good, rid, a, other), template.root, a.keys.list()[0].key_id)


def served_store(setup: Setup, dest: Path) -> tuple[Path, str]:
    """A copy of the recipient's store that trusts the exporter's key, and a viewer token for its API."""
    shutil.copytree(setup.template, dest)
    s = Archive.open(dest)
    s.keys.trust(setup.origin.archive.keys.public_path.read_bytes(), source="the exporter's key")
    return dest, s.tokens.create("viewer", "viewer", actor="tester").token
