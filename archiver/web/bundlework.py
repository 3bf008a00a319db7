"""Bundle verification for `archiver serve`, bounded and cancellable.

Why a child process per upload, not a thread: a thread cannot be stopped, and its memory is the
server's. An anonymous upload on a ``--public-verify`` server could hold the server for minutes and
take gigabytes; SIGTERM then waited for it. Here each verification runs in its own process
(this module's :func:`child`):

- at most ``web.verify_workers`` at once; one more is answered 503 with ``Retry-After``, never queued
  (a queue of uploads is unbounded work with extra steps);
- the child caps its own address space (``RLIMIT_AS`` = ``web.verify_memory``) before it imports
  anything, so a bundle that needs more ends in ``MemoryError`` in the child, not in the server;
- after ``web.verify_seconds`` the child is killed;
- :meth:`BundleVerifier.cancel_all` (called when the server is told to stop) kills every running
  child, so the requests waiting on them answer 503 at once and the server exits promptly.

The child prints the ``BundleReport`` as JSON; the parent rebuilds the record. A refusal is a
:class:`VerificationRefused` carrying its HTTP status and a one-line reason naming the setting.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.records import Category, Check, Status, Verdict, Verification
from archiver.reports import BundleReport

if TYPE_CHECKING:
    from archiver.config import Config

log = logging.getLogger(__name__)

#: The child's exit status when the bundle needed more memory than ``web.verify_memory`` allows.
EXIT_MEMORY = 86
#: Seconds a client is asked to wait when every verification slot is busy.
RETRY_AFTER = 5
#: What the child runs: this file loaded by its path, not as ``archiver.web.bundlework``, whose package
#: would import the web framework first; so the child holds only what verifying needs, and its memory
#: cap is set before the verification code is imported.
_STUB = ("import importlib.util, sys\n"
         "spec = importlib.util.spec_from_file_location('_archiver_bundlework', sys.argv[1])\n"
         "module = importlib.util.module_from_spec(spec)\n"
         "spec.loader.exec_module(module)\n"
         "raise SystemExit(module.child(sys.argv[2:]))\n")


class VerificationRefused(Exception):
    """The upload was not verified: ``status`` (HTTP), ``detail`` (one line naming the cap and its setting)."""

    def __init__(self, status: int, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class BundleVerifier:
    """The bounded pool of verification processes of one server machine: ``web.verify_workers`` slots
    shared by its HTTP processes (settings are read per upload, so a ``config set`` takes effect
    without a restart)."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        self._lock = threading.Lock()
        self._busy = 0
        self._running: set[subprocess.Popen[bytes]] = set()
        self._closing = False

    def cancel_all(self) -> int:
        """Refuse new verifications and kill the running ones; returns how many were killed."""
        with self._lock:
            self._closing = True
            procs = list(self._running)
        for proc in procs:
            _kill(proc)
        return len(procs)

    def verify(self, path: Path, filename: str | None) -> BundleReport:
        """Verify the bundle at ``path`` in a child process (blocking: call it from a worker thread)."""
        workers = max(1, self.config.int_("web.verify_workers"))
        with self._lock:
            if self._closing:
                raise VerificationRefused(503, "the server is shutting down; send the bundle again later",
                                          retry_after=RETRY_AFTER)
            slot = self._take_slot(workers)
            if slot is None:
                raise VerificationRefused(503, f"all {workers} bundle verification slot(s) are busy "
                                               "(setting web.verify_workers); send the bundle again shortly",
                                          retry_after=RETRY_AFTER)
            self._busy += 1
        try:
            return self._run(path, filename or "upload.wacz")
        finally:
            with self._lock:
                self._busy -= 1
            os.close(slot)

    def _take_slot(self, workers: int) -> int | None:
        """One of the store's ``workers`` slot files, locked (``flock``): shared by every process of
        ``serve --http-workers N`` on this machine, so the cap (and its memory) is per machine, not per
        process; a killed process's slot is free again at once. The open descriptor, or None."""
        import fcntl

        locks = self.root / "locks"
        locks.mkdir(exist_ok=True)
        for k in range(workers):
            fd = os.open(locks / f"verify-slot.{k:02d}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            return fd
        return None

    def _run(self, path: Path, name: str) -> BundleReport:
        memory = self.config.int_("web.verify_memory")
        seconds = self.config.float_("web.verify_seconds")
        env = dict(os.environ, MALLOC_ARENA_MAX="2", PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-c", _STUB, __file__, str(self.root), str(path), name, str(memory)]
        with self._lock:
            if self._closing:
                raise VerificationRefused(503, "the server is shutting down; send the bundle again later",
                                          retry_after=RETRY_AFTER)
            # its own session: a Ctrl-C at the terminal reaches the server, which decides what to stop
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env, start_new_session=True)
            self._running.add(proc)
        timed_out = False
        try:
            try:
                out, err = proc.communicate(timeout=seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill(proc)
                out, err = proc.communicate()
        finally:
            with self._lock:
                self._running.discard(proc)
                closing = self._closing
        code = proc.returncode
        if timed_out:
            raise VerificationRefused(422, f"refused: verifying {name} took over {seconds:g} s "
                                           "(setting web.verify_seconds); nothing was kept")
        if closing and code != 0:
            raise VerificationRefused(503, "the server is shutting down: the verification was stopped; send the "
                                           "bundle again later", retry_after=RETRY_AFTER)
        if code == EXIT_MEMORY or code == -signal.SIGKILL:
            raise VerificationRefused(422, f"refused: verifying {name} exceeded web.verify_memory ({memory:,} bytes "
                                           "of address space); nothing was kept")
        if code != 0:
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            log.error("bundle verification process exited %s: %s", code, last[0][:300])
            raise VerificationRefused(500, f"the verification of {name} failed in its worker process (exit {code})")
        return report_from_json(json.loads(out))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def report_from_json(d: dict[str, Any]) -> BundleReport:
    """The ``BundleReport`` a child printed, as the record again (the page renders checks, not dicts)."""
    reports = tuple(Verification(str(r["subject"]), tuple(
        Check(str(c["name"]), Status(c["status"]), Category(c["category"]), str(c.get("detail", "")))
        for c in r["checks"])) for r in d["reports"])
    return BundleReport(bundle=str(d["bundle"]), ok=bool(d["ok"]), verdict=Verdict(d["verdict"]), reports=reports)


def child(argv: list[str]) -> int:
    """In the child: cap the address space first, then open the store read-only in effect and verify."""
    root, path, name, memory = argv[0], Path(argv[1]), argv[2], int(argv[3])
    if memory > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        from archiver.api import Archive
        from archiver.bundle import bundle_verdict

        a = Archive.open(Path(root))
        reports = a.bundles.verify(path, a.bundles.trust([]))
        report = BundleReport(bundle=name, ok=all(r.ok for r in reports), verdict=bundle_verdict(reports),
                              reports=tuple(reports))
        data = json.dumps(report.to_dict()).encode("utf-8")
    except MemoryError:
        os.write(2, b"MemoryError\n")
        os._exit(EXIT_MEMORY)  # not sys.exit: unwinding may need the memory there is none of
    except RuntimeError as exc:
        if "can't start new thread" not in str(exc):  # a thread's stack is address space too
            raise
        os.write(2, b"MemoryError: no address space for a thread\n")
        os._exit(EXIT_MEMORY)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


__all__ = ["BundleVerifier", "VerificationRefused", "report_from_json"]
