"""Capture jobs requested over HTTP: persisted, run on a bounded pool, never left "running".

On a SQLite store the server runs jobs itself: each job is a ``web_jobs`` row (queued → running →
done | failed) and its capture claims ``job_records("web:<job>")`` in the record's own transaction.
After a crash, :meth:`JobRunner.resume` finds jobs left ``running``: one whose claim exists is done
(the record was committed before the kill), the others run again. On a PostgreSQL store the job goes
to the procrastinate queue instead (``archiver worker`` processes anywhere take it) and its status
is read from the queue's tables.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import ArchiverError, NotFoundError, UsageError
from archiver.schema import Report
from store.catalog import PostgresCatalog

if TYPE_CHECKING:
    from archiver.ports import Capturer

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


class JobRunner:
    """Server-side capture jobs for one store (see the module docstring)."""

    def __init__(self, store: Capturer, run: RunFn, *, workers: int = 2) -> None:
        self.store = store
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="capture-job")
        self._closing = threading.Event()
        self.queued_via_postgres = isinstance(store.catalog, PostgresCatalog)

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
            d.run("INSERT INTO web_jobs VALUES (?,?,?,?,?,?,?,?,?,?)",
                  (job_id, req.url, json.dumps(asdict(req)), actor, "queued", None, None, None, now, now))
        self._pool.submit(self._execute, job_id, req, actor)
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

    # ---- running -------------------------------------------------------------------------------
    def _set(self, job_id: str, status: str, record_id: str | None = None, error: str | None = None,
             kind: str | None = None) -> None:
        with self.store.catalog.db() as d, d.tx():
            d.run("UPDATE web_jobs SET status=?, record_id=?, error=?, error_kind=?, updated_at=? WHERE job_id=?",
                  (status, record_id, error, kind, _now(), job_id))

    def _execute(self, job_id: str, req: CaptureRequest, actor: str) -> None:
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
            if done is not None:  # the record was committed; only a later step (Wayback) failed
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
        """After a restart: finish the bookkeeping of interrupted jobs and run the rest again."""
        if self.queued_via_postgres:
            return 0
        with self.store.catalog.db() as d:
            rows = d.rows("SELECT job_id, params, actor FROM web_jobs WHERE status IN ('queued', 'running') "
                          "ORDER BY created_at")
        for job_id, params, actor in rows:
            self._pool.submit(self._execute, str(job_id), CaptureRequest(**json.loads(params)), str(actor))
        return len(rows)

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop taking jobs; with ``wait``, let the running ones finish (Ctrl-C drains)."""
        self._closing.set()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

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


__all__ = ["CaptureJob", "CaptureRequest", "JobRunner", "RunFn"]
