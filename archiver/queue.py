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
- **Dead workers' jobs come back.** Every worker sweeps, every third of ``queue.stalled_after``, for jobs
  still "doing" under a worker whose heartbeat is older than ``queue.stalled_after`` and puts them back
  to "todo" (procrastinate's ``get_stalled_jobs``/``retry_job``), then deletes those workers' rows
  (``prune_stalled_workers``), so ``status`` counts only workers heard from within that window.
- **Workers outlive the database.** When the catalog goes away, procrastinate's worker stops with a
  ``ConnectorException`` (a pool timeout, the listener, a heartbeat). ``run_worker`` does not: it logs
  one line naming the catalog (at most one a minute), waits (1 s, doubling, up to
  ``queue.reconnect_max_delay``), tries a plain connection, and once one goes through opens a new
  pool, registers a new worker and takes jobs again. Jobs whose outcome could not be written stay
  "doing" under the old worker's id; that id is deleted on reconnection, so the next sweep puts them
  back at once, and a retry returns the record the first run committed (if it did): one record per job.
- **Politeness across the fleet.** Before fetching, a job books the next start slot of its host in
  the catalog (``host_slots``, one atomic upsert on the database clock), ``queue.host_interval``
  seconds after the previous one, and sleeps until then: N workers on M machines still start at most
  one capture of a host per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from archiver.errors import (
    ArchiverError,
    NetworkError,
    RemoteServiceError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
    UsageError,
)
from archiver.options import CaptureOptions
from store.catalog import PostgresCatalog

if TYPE_CHECKING:
    import procrastinate
    from procrastinate.types import JSONValue
    from procrastinate.worker import Worker

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
    """What ``archiver status`` says: jobs by state, the workers alive (a heartbeat within
    ``worker_window`` seconds, ``queue.stalled_after``), captures in the last minute, recent failures."""

    todo: int
    doing: int
    succeeded: int
    failed: int
    cancelled: int
    records: int
    workers: int  # alive: heard from (a heartbeat) within worker_window seconds
    worker_window: float  # queue.stalled_after: also when a silent worker's jobs go back to the queue
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


def backend_name(catalog: PostgresCatalog) -> str:
    """How messages name the queue's database: ``catalog (PostgreSQL at host:port)``, never the password."""
    parts = urlsplit(catalog.url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or 5432
    except ValueError:  # a malformed port: the URL's own text says more than a guess
        return f"catalog ({catalog.location})"
    return f"catalog (PostgreSQL at {f'[{host}]' if ':' in host else host}:{port})"


def _db_failure(exc: BaseException) -> BaseException | None:
    """The database error behind ``exc`` (procrastinate wraps psycopg's in ``ConnectorException``;
    a pool timeout is psycopg's ``OperationalError``), or None when ``exc`` is not about the database."""
    if isinstance(exc, StoreUnavailableError):
        return exc
    try:
        import psycopg
        from procrastinate.exceptions import ConnectorException
    except ImportError:
        return None
    if isinstance(exc, ConnectorException):
        return exc.__cause__ if isinstance(exc.__cause__, psycopg.Error) else exc
    return exc if isinstance(exc, psycopg.Error) else None


def _unreachable(exc: BaseException) -> bool:
    """The database could not be reached (as opposed to answering with an error)."""
    cause = _db_failure(exc)
    if isinstance(cause, StoreUnavailableError):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(cause, psycopg.OperationalError)


def _reason(exc: BaseException) -> str:
    """The first line of what the database side said (psycopg's messages run over several lines)."""
    cause = _db_failure(exc) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


@contextlib.contextmanager
def _db_errors(catalog: PostgresCatalog) -> Iterator[None]:
    """procrastinate's and psycopg's errors as the store's: one line naming the catalog, exit 4."""
    try:
        yield
    except ArchiverError:
        raise
    except Exception as exc:
        if _db_failure(exc) is None:
            raise
        if _unreachable(exc):
            raise StoreUnavailableError(f"{backend_name(catalog)} unreachable: {_reason(exc)}",
                                        hint="check that the database is up and reachable, then run this "
                                             "again") from exc
        raise StoreError(f"{backend_name(catalog)} failed: {_reason(exc)}") from exc


def make_app(archive: Capturer, on_done: Callable[[str, str | None, str | None], None] | None = None
             ) -> procrastinate.App:
    """A procrastinate App bound to the store's database, with the capture task registered.

    ``on_done(url, record_id, error)`` is called after each job run (worker side). The pool waits
    ``queue.pool_timeout`` for a connection before procrastinate reports the database unreachable."""
    from archiver.extras import require

    require("postgres", "procrastinate")
    import procrastinate

    catalog = _catalog(archive)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=catalog.url, timeout=archive.config.float_("queue.pool_timeout"),
        kwargs={"connect_timeout": 10}))
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
            done = _first_read(catalog, key)
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
        except Exception as exc:  # every failure is recorded and reported, not only ours (a bug is one too)
            _record_failure(catalog, job.id, job.attempts + 1, url, exc)
            if on_done:
                on_done(url, None, str(exc) if isinstance(exc, ArchiverError) else f"{type(exc).__name__}: {exc}")
            raise
        if on_done:
            on_done(url, rid, None)
        return rid

    return app


def _first_read(catalog: PostgresCatalog, key: str) -> str | None:
    """The job's first query, tried twice. Each worker thread keeps its connection, and one that the
    database dropped during an outage is found dead only when used: the failure closes it, and the
    second try opens a new one, instead of failing (and spending an attempt of) the job after the outage."""
    try:
        return catalog.job_record(key)
    except StoreUnavailableError:
        return catalog.job_record(key)


def _record_failure(catalog: PostgresCatalog, job_id: int, attempt: int, url: str, exc: Exception) -> None:
    try:
        with catalog.db() as d:
            d.run("INSERT INTO queue_failures VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                  (job_id, attempt, url, f"{type(exc).__name__}: {exc}", isinstance(exc, RETRYABLE),
                   datetime.now(UTC).isoformat(timespec="seconds")))
    except StoreUnavailableError:  # the catalog is away: the worker says so once, not once per job
        log.debug("could not record the failure of job %s: the catalog is unreachable", job_id)
    except ArchiverError as err:
        log.warning("could not record the failure of job %s: %s", job_id, err)


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
    with _db_errors(_catalog(archive)), app.open():
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
        with _db_errors(catalog), app.open():
            for job_id in ids:
                app.job_manager.retry_job_by_id(job_id, retry_at=now)
        archive.note("queue-requeue", actor=actor, detail={"jobs": str(len(ids))})
    return ids


def live_window(archive: Capturer) -> float:
    """Seconds of silence after which a worker is dead: its jobs go back, ``status`` stops counting it.
    At least two heartbeats, so a live worker is never taken for a dead one."""
    return max(archive.config.float_("queue.stalled_after"), 2 * archive.config.float_("queue.heartbeat"))


def status(archive: Capturer, failures: int = 5) -> QueueStatus:
    """The queue's counts. A worker is alive when its heartbeat is younger than ``queue.stalled_after``:
    a worker killed without a word (SIGKILL, a machine gone) stops counting once it is that silent."""
    catalog = _catalog(archive)
    ensure_schema(archive)
    window = live_window(archive)
    with catalog.db() as d:
        counts: dict[str, int] = dict(d.rows("SELECT status::text, COUNT(*) FROM procrastinate_jobs WHERE queue_name=? "
                             "GROUP BY status", (QUEUE,)))
        workers = d.one("SELECT COUNT(*) FROM procrastinate_workers "
                        "WHERE last_heartbeat >= now() - make_interval(secs => ?)", (window,))
        recent = d.one("SELECT COUNT(*) FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
                       "WHERE e.type = 'succeeded' AND j.queue_name = ? AND e.at > now() - interval '60 seconds'",
                       (QUEUE,))
        fails = d.rows("SELECT job_id, attempt, url, error, retry, at FROM queue_failures "
                       "ORDER BY at DESC, job_id DESC LIMIT ?", (failures,))
    return QueueStatus(todo=int(counts.get("todo", 0)), doing=int(counts.get("doing", 0)),
                       succeeded=int(counts.get("succeeded", 0)), failed=int(counts.get("failed", 0)),
                       cancelled=int(counts.get("cancelled", 0)) + int(counts.get("aborted", 0)),
                       records=catalog.count(), workers=int(workers[0]) if workers else 0, worker_window=window,
                       done_last_minute=int(recent[0]) if recent else 0,
                       recent_failures=tuple(JobFailure(*r) for r in fails))


async def _sweep_stalled(app: procrastinate.App, stalled_after: float) -> None:
    """Put the jobs of workers silent for ``stalled_after`` seconds back in the queue, then forget those
    workers. Any live worker does it; two sweeping at once is harmless (the loser's retry is refused)."""
    from procrastinate.exceptions import ConnectorException

    for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_after):
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException as exc:
            if _unreachable(exc):
                raise
            log.debug("job %s was put back by another worker first (%s)", job.id, _reason(exc))
            continue
        log.warning("job %s was left running by a worker silent for %g s; it is back in the queue",
                    job.id, stalled_after)
    # their jobs are back in the queue; a job that ended meanwhile keeps its outcome (worker_id is cleared)
    await app.job_manager.prune_stalled_workers(stalled_after)


async def _sweeper(app: procrastinate.App, worker: Worker, stalled_after: float, stop: asyncio.Event) -> None:
    """Every third of ``stalled_after``: sweep, and check that this worker is still registered (a worker cut
    off from the database for longer than ``stalled_after`` was taken for dead and deleted by another:
    it then stops, and ``run_worker`` registers it again). Never raises: a failed round is retried."""
    period = max(0.5, stalled_after / 3)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=period)
        if stop.is_set() or worker.worker_id is None:
            continue
        try:
            row = await app.connector.execute_query_one_async(
                "SELECT count(*) AS n FROM procrastinate_workers WHERE id = %(id)s", id=worker.worker_id)
            if not row["n"]:
                log.warning("this worker was taken for dead while the catalog was away; registering again")
                worker.stop()  # type: ignore[no-untyped-call]
                return
            # a worker that can sweep is alive: say so first, or after an outage it would sweep its own jobs
            await app.job_manager.update_heartbeat(worker.worker_id)
            await _sweep_stalled(app, stalled_after)
        except Exception as exc:  # the database is away (the worker notices too) or a bug: say it, go on
            if _db_failure(exc) is not None:
                log.debug("stalled-job sweep failed: %s", _reason(exc))
            else:
                log.warning("stalled-job sweep failed: %s: %s", type(exc).__name__, exc)


class _Outage:
    """When the catalog went away, how long to wait before the next try, and when we last said so:
    one line when it goes, then at most one a minute, and one when it is back (if we said it went)."""

    def __init__(self, backend: str, max_delay: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend, self.max_delay, self.clock = backend, max(1.0, max_delay), clock
        self.since: float | None = None
        self.said_at = -1e18
        self.announced = False
        self.delay = 0.0

    def failed(self, reason: str, what: str = "unreachable") -> float:
        """Note a failed attempt; the seconds to wait before the next one (1 s, doubling, capped).
        ``what``: "unreachable", or "failed" for a database that answered with an error."""
        now = self.clock()
        if self.since is None:
            self.since, self.delay, self.announced = now, 1.0, False
        else:
            self.delay = min(2 * self.delay, self.max_delay)
        if now - self.said_at >= 60:
            down = now - self.since
            log.warning("%s %s%s (%s); retrying, next try in %g s", self.backend, what,
                        f" for {down:.0f} s" if down >= 1 else "", reason, round(self.delay, 1))
            self.said_at, self.announced = now, True
        else:
            log.debug("%s still %s (%s)", self.backend, what, reason)
        return self.delay * random.uniform(0.8, 1.0)  # spread a fleet's retries

    def recovered(self) -> None:
        if self.since is not None and self.announced:
            log.warning("%s reachable again after %.0f s of retrying; taking jobs", self.backend,
                        self.clock() - self.since)
        self.since = None


@dataclasses.dataclass(frozen=True, slots=True)
class _WorkerSettings:
    concurrency: int
    until_empty: bool
    name: str
    heartbeat: float
    stalled_after: float
    connect_timeout: float


def run_worker(archive: Capturer, *, concurrency: int = 4, until_empty: bool = False, name: str | None = None,
               on_done: Callable[[str, str | None, str | None], None] | None = None) -> None:
    """Take capture jobs until stopped (SIGINT/SIGTERM finish running jobs first), or until the queue
    is empty with ``until_empty``. Blocks.

    The catalog must be reachable when the worker starts (else :class:`StoreUnavailableError`: a
    worker pointed at the wrong place should say so, not wait); once running, it outlives an outage
    of any length (see the module docstring)."""
    if concurrency < 1 or concurrency > 64:
        raise UsageError("--concurrency must be between 1 and 64")
    ensure_schema(archive)
    catalog = _catalog(archive)
    app = make_app(archive, on_done)
    cfg = _WorkerSettings(concurrency=concurrency, until_empty=until_empty, name=name or "archiver-worker",
                          heartbeat=archive.config.float_("queue.heartbeat"), stalled_after=live_window(archive),
                          connect_timeout=archive.config.float_("queue.pool_timeout"))
    outage = _Outage(backend_name(catalog), archive.config.float_("queue.reconnect_max_delay"))
    asyncio.run(_supervise(archive, catalog, app, cfg, outage))


async def _supervise(archive: Capturer, catalog: PostgresCatalog, app: procrastinate.App, cfg: _WorkerSettings,
                     outage: _Outage) -> None:
    """Run procrastinate workers one after another: a new one whenever the last was lost with the database."""
    loop = asyncio.get_running_loop()
    # Sync tasks run on the loop's default executor: make it as wide as the concurrency asked for.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="capture"))
    loop.set_exception_handler(_unrecorded_outcome)
    stopping = asyncio.Event()
    current: list[Worker] = []
    orphans: list[int] = []  # ids of our workers lost with the database, whose jobs may still say "doing"
    with _on_stop_signals(loop, stopping, current):
        while not stopping.is_set():
            try:
                if outage.since is not None:
                    await _probe(catalog.url, cfg.connect_timeout)
                async with app.open_async():
                    for worker_id in orphans:  # their unfinished jobs lose their worker: the sweep takes them
                        await app.job_manager.unregister_worker(worker_id)
                    if orphans:
                        await _sweep_stalled(app, cfg.stalled_after)
                    orphans.clear()
                    outage.recovered()
                    lost = await _serve(archive, app, cfg, stopping, current, orphans)
                if lost is None:
                    return
                raise StoreUnavailableError(lost)
            except Exception as exc:
                if _db_failure(exc) is None:
                    raise
                with contextlib.suppress(Exception):  # a pool that failed to open stays set: drop it
                    await app.close_async()
                delay = outage.failed(_reason(exc), "unreachable" if _unreachable(exc) else "failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=delay)


async def _serve(archive: Capturer, app: procrastinate.App, cfg: _WorkerSettings, stopping: asyncio.Event,
                 current: list[Worker], orphans: list[int]) -> str | None:
    """Run procrastinate's worker until asked to stop (None), or until it stops on its own: the reason."""
    from procrastinate.worker import Worker

    # procrastinate's wait=False stops when one of the worker's slots finds nothing to fetch, even while
    # another slot is failing a job whose retry is due at once: go round again until no job is due (each
    # pass finishes at least one attempt; the bound is a backstop)
    for _ in range(10_000):
        worker = Worker(app, queues=[QUEUE], name=cfg.name, concurrency=cfg.concurrency, wait=not cfg.until_empty,
                        update_heartbeat_interval=cfg.heartbeat, stalled_worker_timeout=cfg.stalled_after,
                        fetch_job_polling_interval=1.0, listen_notify=True, delete_jobs="never",
                        install_signal_handlers=False)
        if stopping.is_set():
            return None
        current[:] = [worker]
        stop_sweep = asyncio.Event()
        sweeper = asyncio.create_task(_sweeper(app, worker, cfg.stalled_after, stop_sweep))
        try:
            await worker.run()  # type: ignore[no-untyped-call]
        finally:
            current.clear()
            stop_sweep.set()
            await sweeper
            if worker.worker_id is not None:  # not unregistered: it was lost with the database
                orphans.append(worker.worker_id)
        if stopping.is_set():
            return None
        if not cfg.until_empty:
            return "the worker lost its connection"
        if not await asyncio.get_running_loop().run_in_executor(None, _jobs_due, archive):
            return None
    return None


async def _probe(url: str, timeout: float) -> None:
    """One plain connection: cheaper and quicker to give up than a pool that retries on its own."""
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, connect_timeout=max(2, int(timeout)), autocommit=True)
    try:
        await conn.execute("SELECT 1")
    finally:
        await conn.close()


def _unrecorded_outcome(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """procrastinate writes a job's outcome in a task nobody awaits: with the database away that task
    fails, and asyncio would print its traceback. The job stays "doing" and comes back once the
    catalog does (its worker's id is dropped on reconnection); anything else goes to asyncio as before."""
    exc = context.get("exception")
    if isinstance(exc, BaseException) and _db_failure(exc) is not None:
        log.debug("a job's outcome was not written: %s", _reason(exc))
        return
    loop.default_exception_handler(context)


@contextlib.contextmanager
def _on_stop_signals(loop: asyncio.AbstractEventLoop, stopping: asyncio.Event, current: list[Worker]) -> Iterator[None]:
    """SIGINT/SIGTERM: finish the running jobs and stop (also while waiting for the database). A second
    signal is not caught: it interrupts at once, as procrastinate's own handler lets it."""
    signals = (signal.SIGINT, signal.SIGTERM)

    def stop() -> None:
        stopping.set()
        for worker in current:
            worker.stop()  # type: ignore[no-untyped-call]
        for sig in signals:
            loop.remove_signal_handler(sig)

    installed = threading.current_thread() is threading.main_thread()
    if installed:
        for sig in signals:
            loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        if installed:
            for sig in signals:
                loop.remove_signal_handler(sig)


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


__all__ = ["QUEUE", "TASK", "JobFailure", "QueueStatus", "SubmitResult", "Tally", "backend_name", "ensure_schema",
           "live_window", "make_app", "requeue_failed", "run_worker", "status", "submit"]
