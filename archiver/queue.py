"""The distributed capture queue: ``submit`` URLs, run ``worker`` processes anywhere, read ``status``.

Built on procrastinate, whose jobs live in PostgreSQL — the same database as the catalog — so a
fleet needs nothing beyond the database and the object store it already trusts (Celery would add a
broker to run, secure and back up, and its acknowledgement model loses or repeats jobs when a worker
dies unless tuned carefully). What procrastinate gives: jobs taken with ``SELECT … FOR UPDATE SKIP
LOCKED``, retries with exponential backoff, worker heartbeats from which dead workers' jobs are found.

What this module adds on top:

- **Idempotent jobs.** A capture job claims ``job_records(job_key)`` in the very transaction that
  makes its record visible (with the custody entry). A job retried after its worker died, or run
  twice by accident, therefore yields one record: a retry first looks the claim up and returns it.
- **Dead workers' jobs come back.** Every worker sweeps, every few seconds, for jobs still "doing"
  under a worker whose heartbeat is older than ``queue.stalled_after`` and puts them back to "todo".
- **Politeness across the fleet.** Before fetching, a job books the next start slot of its host in
  the catalog (``host_slots``, one atomic upsert on the database clock), ``queue.host_interval``
  seconds after the previous one, and sleeps until then: N workers on M machines still start at most
  one capture of a host per interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from archiver.errors import (
    ArchiverError,
    NetworkError,
    RemoteServiceError,
    StoreConflictError,
    StoreUnavailableError,
    UsageError,
)
from archiver.options import CaptureOptions
from store.catalog import PostgresCatalog

if TYPE_CHECKING:
    import procrastinate
    from procrastinate.types import JSONValue

    from archiver.ports import Capturer

log = logging.getLogger(__name__)

TASK = "archiver.capture"
QUEUE = "captures"
#: Failures worth another try: the network, a remote service, the store being briefly unreachable.
RETRYABLE: tuple[type[Exception], ...] = (NetworkError, RemoteServiceError, StoreUnavailableError)
_SCHEMA_LOCK = 7233


@dataclasses.dataclass(frozen=True, slots=True)
class JobFailure:
    job_id: int
    attempt: int
    url: str
    error: str
    retry: bool
    at: str


@dataclasses.dataclass(frozen=True, slots=True)
class QueueStatus:
    todo: int
    doing: int
    succeeded: int
    failed: int
    cancelled: int
    records: int
    workers: int
    done_last_minute: int
    recent_failures: tuple[JobFailure, ...]

    @property
    def per_minute(self) -> int:
        return self.done_last_minute

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["recent_failures"] = [dataclasses.asdict(f) for f in self.recent_failures]
        return d


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitResult:
    job_ids: tuple[int, ...]


def _catalog(archive: Capturer) -> PostgresCatalog:
    if not isinstance(archive.catalog, PostgresCatalog):
        raise UsageError(f"the queue lives in the catalog's PostgreSQL database, but {archive.root} has a "
                         f"{archive.catalog.backend} catalog",
                         hint="create the store with `archiver init --catalog postgresql://...`, or move this "
                              "one with `archiver store migrate --to postgresql://...`")
    return archive.catalog


def make_app(archive: Capturer, on_done: Callable[[str, str | None, str | None], None] | None = None
             ) -> procrastinate.App:
    """A procrastinate App bound to the store's database, with the capture task registered.

    ``on_done(url, record_id, error)`` is called after each job run (worker side)."""
    from archiver.extras import require

    require("postgres", "procrastinate")
    import procrastinate

    catalog = _catalog(archive)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=catalog.url))
    retry = procrastinate.RetryStrategy(max_attempts=archive.config.int_("queue.max_attempts"),
                                        exponential_wait=archive.config.int_("queue.retry_wait"),
                                        retry_exceptions=set(RETRYABLE))

    @app.task(name=TASK, queue=QUEUE, pass_context=True, retry=retry)
    def capture_job(context: procrastinate.JobContext, url: str, entity: str | None = None,
                    document: str | None = None, allow_private: bool = False, insecure: bool = False,
                    allow_status: bool = False, actor: str | None = None) -> str:
        job = context.job
        assert job.id is not None
        key = f"procrastinate:{job.id}"
        try:
            done = catalog.job_record(key)
            if done is not None:  # the job's record exists: a retry after the commit, not a new capture
                return done
            # settings are read before booking the slot: the fetch should start when the slot does
            stamp = not archive.config.bool_("queue.batch_timestamps")
            wait = catalog.reserve_host_slot((urlsplit(url).hostname or "").lower(),
                                             archive.config.float_("queue.host_interval"))
            if wait > 0:
                time.sleep(wait)
            try:
                opts = CaptureOptions(entity=entity, document=document, allow_private=allow_private or None,
                                      insecure=insecure, allow_status=allow_status, job_key=key)
                # the submitter is the actor: a job is their act, whichever machine runs it
                rid = archive.capture(url, opts, stamp=stamp, actor=actor or "queue").record_id
            except StoreConflictError:
                done = catalog.job_record(key)
                if done is None:
                    raise
                rid = done  # the same job ran twice at once: the other run's record stands
        except ArchiverError as exc:
            _record_failure(catalog, job.id, job.attempts + 1, url, exc)
            if on_done:
                on_done(url, None, str(exc))
            raise
        if on_done:
            on_done(url, rid, None)
        return rid

    return app


def _record_failure(catalog: PostgresCatalog, job_id: int, attempt: int, url: str, exc: ArchiverError) -> None:
    try:
        with catalog.db() as d:
            d.run("INSERT INTO queue_failures VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                  (job_id, attempt, url, f"{type(exc).__name__}: {exc}", isinstance(exc, RETRYABLE),
                   datetime.now(UTC).isoformat(timespec="seconds")))
    except ArchiverError:
        log.warning("could not record the failure of job %s", job_id)


def ensure_schema(archive: Capturer) -> None:
    """Apply procrastinate's schema once (under an advisory lock: several workers may start at once).
    Our own queue tables (``queue_failures``…) are migrations of the catalog (store/migrations/queue.py),
    applied when the store was opened."""
    catalog = _catalog(archive)
    with catalog.db() as d, d.tx():
        d.rows("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
        present = d.one("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                        "AND table_name = 'procrastinate_jobs'")
        if present is None:
            from procrastinate.schema import SchemaManager

            d.script(SchemaManager.get_schema())


def submit(archive: Capturer, items: Iterable[tuple[str, str | None, str | None]], *, actor: str,
           allow_private: bool = False, insecure: bool = False, allow_status: bool = False) -> SubmitResult:
    """Enqueue one capture job per URL (validated first: a bad line enqueues nothing)."""
    from archiver.capture.fetch import validate_url

    rows = list(items)
    for url, _, _ in rows:
        validate_url(url)
    ensure_schema(archive)
    app = make_app(archive)
    args: list[dict[str, JSONValue]] = [
        {"url": u, "entity": e, "document": d, "allow_private": allow_private, "insecure": insecure,
         "allow_status": allow_status, "actor": actor} for u, e, d in rows]
    ids: list[int] = []
    with app.open():
        task = app.tasks[TASK]
        for start in range(0, len(args), 500):
            ids += task.batch_defer(*args[start:start + 500])
    archive.note("queue-submit", actor=actor, detail={"jobs": str(len(ids)), "first_job": str(ids[0]) if ids else ""})
    return SubmitResult(tuple(ids))


def requeue_failed(archive: Capturer, *, actor: str) -> tuple[int, ...]:
    """Put every failed capture job back in the queue (after the network or the site is fixed).

    Safe to repeat: a job keeps its id, so one that somehow already made its record returns it."""
    catalog = _catalog(archive)
    ensure_schema(archive)
    with catalog.db() as d:
        ids = tuple(int(r[0]) for r in d.rows("SELECT id FROM procrastinate_jobs WHERE queue_name=? "
                                              "AND status='failed' ORDER BY id", (QUEUE,)))
    if ids:
        app = make_app(archive)
        now = datetime.now(UTC)
        with app.open():
            for job_id in ids:
                app.job_manager.retry_job_by_id(job_id, retry_at=now)
        archive.note("queue-requeue", actor=actor, detail={"jobs": str(len(ids))})
    return ids


def status(archive: Capturer, failures: int = 5) -> QueueStatus:
    catalog = _catalog(archive)
    ensure_schema(archive)
    with catalog.db() as d:
        counts: dict[str, int] = dict(d.rows("SELECT status::text, COUNT(*) FROM procrastinate_jobs WHERE queue_name=? "
                             "GROUP BY status", (QUEUE,)))
        workers = d.one("SELECT COUNT(*) FROM procrastinate_workers")
        recent = d.one("SELECT COUNT(*) FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
                       "WHERE e.type = 'succeeded' AND j.queue_name = ? AND e.at > now() - interval '60 seconds'",
                       (QUEUE,))
        fails = d.rows("SELECT job_id, attempt, url, error, retry, at FROM queue_failures "
                       "ORDER BY at DESC, job_id DESC LIMIT ?", (failures,))
    return QueueStatus(todo=int(counts.get("todo", 0)), doing=int(counts.get("doing", 0)),
                       succeeded=int(counts.get("succeeded", 0)), failed=int(counts.get("failed", 0)),
                       cancelled=int(counts.get("cancelled", 0)) + int(counts.get("aborted", 0)),
                       records=catalog.count(), workers=int(workers[0]) if workers else 0,
                       done_last_minute=int(recent[0]) if recent else 0,
                       recent_failures=tuple(JobFailure(*r) for r in fails))


async def _sweep_stalled(app: procrastinate.App, stalled_after: float, stop: asyncio.Event) -> None:
    """Put the jobs of workers that stopped heart-beating back in the queue."""
    period = max(1.0, stalled_after / 3)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=period)
        except TimeoutError:
            pass
        if stop.is_set():
            return
        try:
            stalled = await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_after)
            for job in stalled:
                log.warning("job %s was left running by a dead worker; retrying it", job.id)
                await app.job_manager.retry_job(job)
        except Exception:  # a failed sweep must not stop the worker; the next one tries again
            log.exception("stalled-job sweep failed")


def run_worker(archive: Capturer, *, concurrency: int = 4, until_empty: bool = False, name: str | None = None,
               on_done: Callable[[str, str | None, str | None], None] | None = None) -> None:
    """Take capture jobs until stopped (SIGINT/SIGTERM finish running jobs first), or until the queue
    is empty with ``until_empty``. Blocks."""
    if concurrency < 1 or concurrency > 64:
        raise UsageError("--concurrency must be between 1 and 64")
    ensure_schema(archive)
    app = make_app(archive, on_done)
    heartbeat = archive.config.float_("queue.heartbeat")
    stalled_after = max(archive.config.float_("queue.stalled_after"), 2 * heartbeat)

    async def main() -> None:
        # Sync tasks run on the loop's default executor: make it as wide as the concurrency asked for.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=concurrency,
                                                                           thread_name_prefix="capture"))
        stop = asyncio.Event()
        async with app.open_async():
            sweeper = asyncio.create_task(_sweep_stalled(app, stalled_after, stop))
            try:
                # procrastinate's wait=False stops when one of the worker's slots finds nothing to fetch,
                # even while another slot is failing a job whose retry is due at once: go round again
                # until no job is due (each pass finishes at least one attempt; the bound is a backstop)
                for _ in range(10_000):
                    await app.run_worker_async(queues=[QUEUE], concurrency=concurrency, wait=not until_empty,
                                               name=name or "archiver-worker", update_heartbeat_interval=heartbeat,
                                               stalled_worker_timeout=stalled_after, fetch_job_polling_interval=1.0,
                                               listen_notify=True, delete_jobs="never")
                    if not until_empty or not _jobs_due(archive):
                        break
            finally:
                stop.set()
                await sweeper

    asyncio.run(main())


def _jobs_due(archive: Capturer) -> bool:
    """A job waiting in the queue that may run now (a retry scheduled for later is not due)."""
    with _catalog(archive).db() as d:
        return d.one("SELECT 1 FROM procrastinate_jobs WHERE queue_name=? AND status='todo' "
                     "AND (scheduled_at IS NULL OR scheduled_at <= now()) LIMIT 1", (QUEUE,)) is not None


class Tally:
    """Thread-safe counts for a worker's own summary line."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self._lock = threading.Lock()

    def __call__(self, url: str, record_id: str | None, error: str | None) -> None:
        with self._lock:
            if record_id:
                self.ok += 1
            else:
                self.failed += 1


__all__ = ["QUEUE", "TASK", "JobFailure", "QueueStatus", "SubmitResult", "Tally", "ensure_schema", "make_app",
           "requeue_failed", "run_worker", "status", "submit"]
