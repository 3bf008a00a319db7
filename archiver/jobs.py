"""Capture jobs requested over HTTP: persisted, claimed by exactly one server process, never left "running".

On a SQLite store the servers run jobs themselves. Each job is a ``web_jobs`` row (queued → running →
done | failed) that every process of ``archiver serve`` sees; a process *claims* a job with one
conditional UPDATE (``owner`` and ``lease_until``, only while the job has no owner or its lease has
run out), so however many processes poll, each job has one runner at a time. A process claims only
as many jobs as it has free job threads, renews the leases of the jobs it holds every third of
``web.job_lease_seconds``, and when it is killed its jobs are claimed by another process once their
leases run out. A job run again finds its record if the first run committed it: the capture claims
``job_records("web:<job>")`` in the record's own transaction, so a retry never makes a second record.
On a PostgreSQL store the job goes to the procrastinate queue instead (``archiver worker`` processes
anywhere take it) and its status is read from the queue's tables.

Why a lease and not "the process that was asked runs it": with N processes on one port, a restart or
a kill of one must neither lose its jobs nor have every other process run them again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import ArchiverError, NotFoundError, UsageError
from archiver.schema import Report
from store.catalog import PostgresCatalog

if TYPE_CHECKING:
    from archiver.ports import Capturer, VerifyingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CaptureRequest(Report):
    """What a capture job was asked to do."""

    url: str
    entity: str | None = None
    document: str | None = None
    browser: bool = False
    wayback: bool = False  # also ask Save Page Now after capturing
    allow_status: bool = False


@dataclass(frozen=True, slots=True)
class CaptureJob(Report):
    """A capture job and how far it got."""

    job: str
    url: str
    status: str  # queued | running | done | failed
    record_id: str | None
    error: str | None
    error_kind: str | None  # the error's class: HTTPStatusError, BlockedAddressError, TLSError…
    created_at: str
    updated_at: str


#: run(request, job_key, actor) -> record id; raises ArchiverError when the capture fails.
RunFn = Callable[[CaptureRequest, str, str], str]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _job(row: tuple[Any, ...]) -> CaptureJob:
    return CaptureJob(job=str(row[0]), url=str(row[1]), status=str(row[2]), record_id=row[3], error=row[4],
                      error_kind=row[5], created_at=str(row[6]), updated_at=str(row[7]))


_COLS = "job_id, url, status, record_id, error, error_kind, created_at, updated_at"


#: The owners of this process's runners that have not shut down.
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()


def _machine() -> str:
    """Where a pid means something: the host name, and on Linux the boot and the PID namespace too.
    Two containers that share a host name (``--network host``) and a store see different pid
    namespaces: without them each would find the other's live workers "gone" and take their jobs."""
    where = socket.gethostname()
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        where += f"/{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:  # not Linux: the host name alone
        pass
    return where


class JobRunner:
    """Server-side capture jobs for one store (see the module docstring). ``lease``: seconds a claim
    lasts without renewal; ``poll``: seconds between looks for jobs to claim when nothing wakes it."""

    def __init__(self, store: Capturer, run: RunFn, *, workers: int = 2, lease: float = 30.0,
                 poll: float = 0.5) -> None:
        self.store = store
        self._run = run
        self.workers = max(1, workers)
        self.lease = max(1.0, lease)
        self.poll = min(poll, self.lease / 3)
        #: who holds a claim: host, pid and a random part (a pid is reused, a restarted process is new)
        self.owner = f"{_machine()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="capture-job")
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._held: set[str] = set()  # jobs this process has claimed and not finished
        self._loop: threading.Thread | None = None
        self.queued_via_postgres = isinstance(store.catalog, PostgresCatalog)
        with _LIVE_LOCK:
            _LIVE.add(self.owner)

    # ---- submit and read -----------------------------------------------------------------------
    def submit(self, req: CaptureRequest, actor: str) -> CaptureJob:
        from archiver.capture.fetch import validate_url

        validate_url(req.url)  # a malformed URL or scheme is a 400 now, not a failed job later
        if self._closing.is_set():
            raise UsageError("the server is shutting down; submit the capture again later")
        if self.queued_via_postgres:
            return self._submit_queue(req, actor)
        job_id = secrets.token_hex(8)
        now = _now()
        with self.store.catalog.db() as d, d.tx():
            d.run("INSERT INTO web_jobs (job_id, url, params, actor, status, record_id, error, error_kind, "
                  "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                  (job_id, req.url, json.dumps(asdict(req)), actor, "queued", None, None, None, now, now))
        self._start()
        self._wake.set()
        return self.get(job_id)

    def get(self, job_id: str) -> CaptureJob:
        if job_id.startswith("q") and job_id[1:].isdigit() and self.queued_via_postgres:
            return self._queue_status(int(job_id[1:]))
        with self.store.catalog.db() as d:
            row = d.one(f"SELECT {_COLS} FROM web_jobs WHERE job_id=?", (job_id,))  # noqa: S608
        if row is None:
            raise NotFoundError(f"no capture job {job_id!r}")
        return _job(row)

    def depth(self) -> dict[str, int]:
        with self.store.catalog.db() as d:
            return {str(r[0]): int(r[1]) for r in d.rows("SELECT status, COUNT(*) FROM web_jobs GROUP BY status")}

    def held(self) -> int:
        """Jobs this process holds now (claimed, not finished)."""
        with self._lock:
            return len(self._held)

    # ---- claiming ------------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._loop is None and not self.queued_via_postgres and not self._closing.is_set():
                self._loop = threading.Thread(target=self._dispatch, name="capture-claims", daemon=True)
                self._loop.start()

    def _dispatch(self) -> None:
        """Claim jobs while job threads are free and renew the leases held, until shutdown."""
        next_beat = 0.0
        while not self._closing.is_set():
            try:
                if self.held() and time.monotonic() >= next_beat:
                    self._renew()
                    next_beat = time.monotonic() + self.lease / 3
                free = self.workers - self.held()
                if free > 0:
                    for job_id, req, actor in self._claim(free):
                        self._pool.submit(self._execute, job_id, req, actor)
            except RuntimeError:  # the pool was shut down between the check and the submit
                return
            except ArchiverError as exc:  # the catalog is busy or away: try again next round
                log.warning("capture jobs: %s", exc.message)
            except Exception:
                log.exception("capture job claims failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def _claim(self, free: int) -> list[tuple[str, CaptureRequest, str]]:
        """Up to ``free`` jobs made ours, each by one conditional UPDATE that succeeds in one process
        only: jobs nobody holds, jobs whose lease ran out, and jobs held by a process of this host that
        is gone (a worker killed next to us: no need to wait for its lease)."""
        now = time.time()
        claimable = "status IN ('queued', 'running') AND (owner IS NULL OR lease_until IS NULL OR lease_until < ?)"
        got: list[tuple[str, CaptureRequest, str]] = []
        with self.store.catalog.db() as d:
            rows = d.rows(f"SELECT job_id, params, actor FROM web_jobs WHERE {claimable} "  # noqa: S608
                          "ORDER BY created_at LIMIT ?", (now, free))
            take = f"UPDATE web_jobs SET owner=?, lease_until=? WHERE job_id=? AND {claimable}"  # noqa: S608
            cas = [(r, take, (now,)) for r in rows]
            if len(rows) < free:
                held = d.rows("SELECT job_id, params, actor, owner FROM web_jobs WHERE status IN ('queued', 'running') "
                              "AND owner IS NOT NULL AND lease_until >= ? ORDER BY created_at", (now,))
                cas += [(r[:3], "UPDATE web_jobs SET owner=?, lease_until=? WHERE job_id=? AND owner=?", (r[3],))
                        for r in held if self._gone(str(r[3]))][: free - len(rows)]
            for (job_id, params, actor), sql, cond in cas:
                with self._lock:
                    if self._closing.is_set():
                        break
                    took = d.run(sql, (self.owner, now + self.lease, job_id, *cond))
                    if took == 1:
                        self._held.add(str(job_id))
                if took == 1:
                    got.append((str(job_id), CaptureRequest(**json.loads(params)), str(actor)))
        return got

    def _gone(self, owner: str) -> bool:
        """Whether ``owner`` was a process of this host that no longer runs (another host's: unknown).
        Owners are ``host:pid:random``; with our own pid, the owner is one of this process's runners
        (a test, or an app made twice) or an earlier process whose pid we reuse: gone unless live here."""
        mine = self.owner.rsplit(":", 2)
        theirs = owner.rsplit(":", 2)
        if len(theirs) != 3 or theirs[0] != mine[0] or not theirs[1].isdigit() or owner == self.owner:
            return False
        if theirs[1] == mine[1]:  # this process: gone unless one of its runners still runs
            with _LIVE_LOCK:
                return owner not in _LIVE
        try:
            os.kill(int(theirs[1]), 0)
        except ProcessLookupError:
            return True
        except OSError:  # alive, another user's
            return False
        return False

    def _renew(self) -> None:
        with self._lock:
            held = sorted(self._held)
        if not held:
            return
        until = time.time() + self.lease
        with self.store.catalog.db() as d, d.tx():
            d.many("UPDATE web_jobs SET lease_until=? WHERE job_id=? AND owner=?",
                   [(until, job_id, self.owner) for job_id in held])

    def _renew_until(self, stop: threading.Event) -> None:
        """Renew the leases held at once and every third of the lease until ``stop`` (the drain)."""
        while True:
            try:
                self._renew()
            except ArchiverError as exc:  # the catalog is busy: try again at the next beat
                log.warning("capture jobs: %s", exc.message)
            if stop.wait(self.lease / 3):
                return

    # ---- running -------------------------------------------------------------------------------
    def _set(self, job_id: str, status: str, record_id: str | None = None, error: str | None = None,
             kind: str | None = None) -> None:
        # only while the job is still ours: a process whose lease lapsed (a renewal that could not commit
        # in time, a stopped process) must not overwrite what the job's new claimant writes
        with self.store.catalog.db() as d, d.tx():
            took = d.run("UPDATE web_jobs SET status=?, record_id=?, error=?, error_kind=?, updated_at=? "
                         "WHERE job_id=? AND owner=?", (status, record_id, error, kind, _now(), job_id, self.owner))
        if not took:
            log.warning("capture job %s: claimed by another process meanwhile; its result stands", job_id)

    def _execute(self, job_id: str, req: CaptureRequest, actor: str) -> None:
        try:
            self._execute_held(job_id, req, actor)
        finally:
            with self._lock:
                self._held.discard(job_id)
            self._wake.set()

    def _execute_held(self, job_id: str, req: CaptureRequest, actor: str) -> None:
        key = f"web:{job_id}"
        try:
            done = self.store.catalog.job_record(key)
            if done is not None:
                self._set(job_id, "done", record_id=done)
                return
            self._set(job_id, "running")
            rid = self._run(req, key, actor)
        except ArchiverError as exc:
            done = self.store.catalog.job_record(key)
            if done is not None:  # the record was committed (by this run or a former claimant's); a later step failed
                self._set(job_id, "done", record_id=done, error=exc.message)
            else:
                self._set(job_id, "failed", error=exc.diagnostics(), kind=type(exc).__name__)
            return
        except Exception as exc:  # a bug must fail the job, not leave it running forever
            log.exception("capture job %s crashed", job_id)
            self._set(job_id, "failed", error=f"internal error: {type(exc).__name__}", kind="InternalError")
            return
        self._set(job_id, "done", record_id=rid)

    def resume(self) -> int:
        """At start: take part in the shared job table at once (jobs left queued, and those whose
        claimant died, are claimed as their leases run out). Returns how many are waiting now."""
        if self.queued_via_postgres:
            return 0
        with self.store.catalog.db() as d:
            row = d.one("SELECT COUNT(*) FROM web_jobs WHERE status IN ('queued', 'running')")
        self._start()
        return int(row[0]) if row else 0

    def hold(self, name: str, seconds: float) -> bool:
        """Take or renew the site-wide lease ``name`` for ``seconds``: True when this process holds it.
        A chore that every process schedules (the verification refresh) then runs in one at a time."""
        now = time.time()
        with self.store.catalog.db() as d, d.tx():
            took = d.run("UPDATE web_leases SET owner=?, until=? WHERE name=? AND (owner=? OR until < ?)",
                         (self.owner, now + seconds, name, self.owner, now))
            if took == 0:
                took = d.run("INSERT INTO web_leases VALUES (?,?,?) ON CONFLICT (name) DO NOTHING",
                             (name, self.owner, now + seconds))
        return took == 1

    def repeat(self, every: float, fn: Callable[[], object], name: str) -> threading.Thread:
        """Run ``fn`` on the job pool every ``every`` seconds until shutdown, never two runs at once
        (a run that takes longer than the interval delays the next one instead of piling up), and in
        one process of the site at a time: the one holding the lease ``name`` (lost when it stops
        renewing it for two intervals)."""

        def loop() -> None:
            while not self._closing.wait(every):
                try:
                    if self.hold(name, every * 2):
                        self._pool.submit(fn).result()
                except RuntimeError:  # the pool was shut down between the wait and the submit
                    return
                except Exception:  # a failed round must not end the schedule
                    log.exception("background job %s failed", name)

        t = threading.Thread(target=loop, name=f"job-{name}", daemon=True)
        t.start()
        return t

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop claiming; with ``wait``, let the running jobs finish (Ctrl-C drains). Jobs not yet
        claimed stay queued for the other processes, or for the next start."""
        with self._lock:
            self._closing.set()
            loop = self._loop
        self._wake.set()
        if loop is not None:
            loop.join(timeout=30)
        # the claim loop renewed the leases; while the running jobs drain, keep renewing them, or a job
        # longer than the lease is claimed and run again by another process before it ends here
        drained = threading.Event()
        beat = threading.Thread(target=self._renew_until, args=(drained,), name="capture-drain", daemon=True)
        if wait and not self.queued_via_postgres:
            beat.start()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        drained.set()
        if beat.is_alive():
            beat.join(timeout=30)
        with _LIVE_LOCK:
            _LIVE.discard(self.owner)
        if not wait and not self.queued_via_postgres:
            with self._lock:
                held = sorted(self._held)
            if held:  # give back what was claimed and will not run here (best effort: leases expire anyway)
                try:
                    with self.store.catalog.db() as d, d.tx():
                        d.many("UPDATE web_jobs SET owner=NULL, lease_until=NULL WHERE job_id=? AND owner=? "
                               "AND status='queued'", [(j, self.owner) for j in held])
                except ArchiverError:
                    pass

    # ---- PostgreSQL: the procrastinate queue ---------------------------------------------------
    def _submit_queue(self, req: CaptureRequest, actor: str) -> CaptureJob:
        from archiver.queue import submit

        if req.browser or req.wayback:
            raise UsageError("browser captures and Save Page Now are not run by queue workers",
                             hint="capture without them, or from the command line")
        result = submit(self.store, [(req.url, req.entity, req.document)], allow_status=req.allow_status, actor=actor)
        return self._queue_status(result.job_ids[0])

    def _queue_status(self, job_id: int) -> CaptureJob:
        from archiver.queue import ensure_schema

        ensure_schema(self.store)
        with self.store.catalog.db() as d:
            row = d.one("SELECT status::text, args->>'url' FROM procrastinate_jobs WHERE id=?", (job_id,))
            rec = d.one("SELECT record_id FROM job_records WHERE job_key=?", (f"procrastinate:{job_id}",))
            err = d.one("SELECT error FROM queue_failures WHERE job_id=? ORDER BY attempt DESC LIMIT 1", (job_id,))
        if row is None:
            raise NotFoundError(f"no capture job q{job_id}")
        state = {"todo": "queued", "doing": "running", "succeeded": "done"}.get(str(row[0]), "failed")
        now = _now()
        error = str(err[0]) if err and state == "failed" else None
        return CaptureJob(job=f"q{job_id}", url=str(row[1]), status=state, record_id=rec[0] if rec else None,
                          error=error, error_kind=error.split(":", 1)[0] if error else None, created_at=now,
                          updated_at=now)


def refresh_verifications(store: VerifyingStore, limit: int) -> int:
    """Verify the ``limit`` records whose cached result is missing or oldest, refreshing the cache.

    Why: the web app's reads show the cached verdict and never re-hash (a GET must not write, and an
    anonymous lookup must not cost a full verification), so the server keeps the cache fresh itself,
    a bounded number of records per round. The cache is not evidence and these rounds are not acts of
    anyone, so they write no custody entry; an explicit verify (CLI, or POST in the web) does.
    """
    from store.search import verification_queue

    ids = verification_queue(store.catalog, limit)
    for rid in ids:
        store.verify(rid, log=False)
    return len(ids)


__all__ = ["CaptureJob", "CaptureRequest", "JobRunner", "RunFn", "refresh_verifications"]
