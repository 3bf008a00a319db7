"""Batch capture on every core: worker processes, each running threads.

A capture is CPU-bound between its network waits (parse, extract, deflate, hash, sign), and threads
share one GIL: on a 2-core machine a thread pool used one core. So a batch runs on ``processes``
forked workers (each opens its own store handle: its own SQLite or PostgreSQL connections and key
handle). Each worker has ``threads`` download slots and twice as many threads: a thread frees its
slot once its page is downloaded and processes the page while another thread downloads the next, so
``-j 16`` means 16 downloads in flight and waits on slow servers overlap with the CPU work. The
per-host limit is a process-shared semaphore per host, also held only while downloading.
Results come back to the parent in completion order; the parent alone prints, stamps and
decides. A worker that dies (kill -9) loses only the captures it had in flight: each of those is
reported failed, what it committed is complete (the store's commit protocol), and the parent gives
back the per-host slots it held, which the other workers would otherwise wait for forever.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from archiver.errors import ArchiverError
from archiver.records import BatchItem


@dataclass(frozen=True, slots=True)
class PoolPlan:
    processes: int
    threads: int


def plan(jobs: int, items: int, cpus: int) -> PoolPlan | None:
    """Processes only pay when there is more than one core and enough work to share.

    Two downloads a process on many jobs (up to 4 processes a core): a thread ready to send its next
    request then waits for its process's GIL behind fewer busy threads. In 6 alternating runs of 100
    pages answering after 300 ms at -j 16, the median batch ended 0.17 s sooner than with four."""
    processes = min(max(cpus, jobs // 2), jobs, max(1, items // 4), 4 * cpus)
    if processes < 2:
        return None
    return PoolPlan(processes, -(-jobs // processes))


# What a forked worker inherits (never pickled: the passphrase stays in memory).
_JOB: dict[str, Any] = {}


def _worker(threads: int, index: int) -> None:
    from archiver.api import Archive

    job = _JOB
    out = job["writers"][index]
    for other in (*job["readers"], *job["writers"]):  # the parent sees our end of the pipe close when we die
        if other is not out:
            other.close()
    archive = Archive.open(job["root"])
    held = _HeldSlots(job["held"], index, job["hosts"])
    tasks: _Tasks = job["tasks"]
    sending = threading.Lock()
    orphaned = threading.Event()
    # ``threads`` downloads in flight; as many threads again process pages already downloaded, so a
    # thread busy hashing, deflating and signing never holds a download slot (the per-host limit,
    # likewise, counts downloads)
    downloads = threading.BoundedSemaphore(threads)

    def one() -> None:
        # one catalog connection for the thread's life: opening one per capture, and the WAL checkpoint
        # when the last one closes, cost ~1 ms a page (archiver.api.Archive.capture nests inside)
        with archive.catalog.session():
            work()

    def work() -> None:
        while not orphaned.is_set():
            if os.getppid() != job["parent"]:
                orphaned.set()
                return  # the batch was killed: start nothing new (what committed is complete)
            i = tasks.take()
            if i is None:
                return
            url, entity, document = job["items"][i]
            started = time.monotonic()
            name = job["host_of"](url)
            host = job["sems"][name]
            downloads.acquire()
            host.acquire()
            held.add(name, 1)  # after the wait: threads wait long, and a waiting thread holds nothing
            fetched = release_once(_Counted(host, held, name), downloads)
            try:
                with archive.acting_as(job["actor"]):
                    m = archive.capture(url, entity=entity, document=document, passphrase=lambda: job["secret"],
                                        stamp=False, on_fetched=fetched, **job["options"])
                item = BatchItem(url, entity, document, record_id=m.record_id, seconds=time.monotonic() - started)
            except ArchiverError as exc:
                item = BatchItem(url, entity, document, error=exc.message, exit_code=exc.exit_code,
                                 seconds=time.monotonic() - started)
            except Exception as exc:  # one page's bug must not lose the batch
                item = BatchItem(url, entity, document, error=f"{type(exc).__name__}: {exc}", exit_code=4,
                                 seconds=time.monotonic() - started)
            finally:
                fetched()
            try:
                with sending:
                    out.send((i, item))
            except OSError:  # the parent is gone (a broken pipe): what committed is complete
                orphaned.set()

    pool = [threading.Thread(target=one, daemon=True) for _ in range(2 * threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.close()


class _Tasks:
    """The next item to capture, shared by the workers: an index under a lock held for two loads and a
    store, never across I/O. (A queue's lock is held while a message is read from its pipe, so a worker
    killed there would leave the others waiting for it forever.) A worker that dies holding it is
    detected by the parent, which gives it back (``_reclaim``)."""

    def __init__(self, ctx: Any, total: int) -> None:
        self.lock = ctx.Lock()
        self._next = ctx.RawValue("q", 0)
        self._total = total

    def take(self) -> int | None:
        with self.lock:
            i = self._next.value
            if i >= self._total:
                return None
            self._next.value = i + 1
        return int(i)


class _HeldSlots:
    """How many of each host's slots this worker holds, in memory the parent can read: a worker killed
    mid-download never releases its per-host slots, and the other workers would wait for them forever;
    the parent gives them back when it sees the worker dead (``_reclaim``)."""

    def __init__(self, counts: Any, index: int, hosts: dict[str, int]) -> None:
        self._counts, self._base, self._hosts = counts, index * len(hosts), hosts
        self._lock = threading.Lock()  # this worker's threads share its counters

    def add(self, host: str, n: int) -> None:
        with self._lock:
            self._counts[self._base + self._hosts[host]] += n


class _Counted:
    """A host slot that, once released, is no longer counted as held. A kill can still land between
    a wait's end and its count (that slot is lost) or between a release and its count (the parent
    gives it back twice): microseconds, where a download holds its slot for its whole length."""

    def __init__(self, sem: Any, held: _HeldSlots, host: str) -> None:
        self._sem, self._held, self._host = sem, held, host

    def release(self) -> None:
        with contextlib.suppress(ValueError):  # given back twice (see above): the semaphore is full
            self._sem.release()
        self._held.add(self._host, -1)


def _reclaim(procs: list[Any], reclaimed: set[int], job: dict[str, Any]) -> None:
    """Give back what workers that died (killed, crashed) held: their per-host slots (their downloads are
    over) and the task lock, if one died inside ``_Tasks.take``."""
    hosts, held = job["hosts"], job["held"]
    for index, proc in enumerate(procs):
        if index in reclaimed or proc.is_alive() or proc.exitcode == 0:
            continue
        reclaimed.add(index)
        for host, h in hosts.items():
            cell = index * len(hosts) + h
            for _ in range(max(0, held[cell])):
                with contextlib.suppress(ValueError):  # already back (a kill between release and count)
                    job["sems"][host].release()
            held[cell] = 0
        lock = job["tasks"].lock
        if lock.acquire(timeout=1.0):  # a live worker holds it for microseconds at most
            lock.release()
        else:
            lock.release()  # held by the dead worker


def release_once(*locks: Any) -> Callable[[], None]:
    """Release ``locks`` at the first call (the page is downloaded), never twice."""
    held = list(locks)

    def release() -> None:
        while held:
            held.pop().release()

    return release


def run_batch(root: Path, items: list[tuple[str, str | None, str | None]], *, how: PoolPlan, secret: str | None,
              actor: str, per_host: int, host_of: Callable[[str], str], options: dict[str, Any],
              on_item: Callable[[BatchItem], None]) -> None:
    """Capture ``items`` on ``how.processes`` forked workers; ``on_item`` gets each result in the parent.

    Each worker sends its results on a pipe of its own, so a worker killed mid-message cuts only its own
    pipe (a shared queue's write lock would stay taken), and the end of its pipe says it is gone."""
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    _preload()
    hosts = {h: i for i, h in enumerate(dict.fromkeys(host_of(u) for u, _, _ in items))}
    pipes = [ctx.Pipe(duplex=False) for _ in range(how.processes)]
    _JOB.update(root=root, secret=secret, actor=actor, options=options, host_of=host_of, parent=os.getpid(),
                items=items, tasks=_Tasks(ctx, len(items)), hosts=hosts,
                sems={h: ctx.BoundedSemaphore(per_host) for h in hosts},
                held=ctx.RawArray("i", how.processes * len(hosts)),
                readers=[r for r, _ in pipes], writers=[w for _, w in pipes])
    with _workers(ctx, how) as procs:
        for _, w in pipes:
            w.close()  # the workers have theirs: a pipe ends when its worker does
        open_pipes: list[Any] = [r for r, _ in pipes]
        pending = set(range(len(items)))
        reclaimed: set[int] = set()
        while pending and open_pipes:
            _reclaim(procs, reclaimed, _JOB)
            for r in cast(list[Any], wait(open_pipes, timeout=0.5)):
                try:
                    i, item = r.recv()
                except (EOFError, OSError):  # the worker is done, or died (mid-message, even)
                    open_pipes.remove(r)
                    continue
                pending.discard(i)
                on_item(item)
        for i in sorted(pending):  # only when workers died
            url, entity, document = items[i]
            on_item(BatchItem(url, entity, document, error="the capture worker died before finishing", exit_code=4))


def _preload() -> None:
    """Import what every capture runs once, here, before the fork: the workers then share it
    (copy-on-write) instead of each spending ~0.15 s of CPU importing requests, warcio, lxml, …"""
    import getpass  # noqa: F401  # the operator's default name
    import importlib

    for name in ("archiver.capture", "archiver.capture.fetch", "archiver.capture.warc", "archiver.capture.extract",
                 "archiver.provenance.signing", "lxml.etree", "lxml.html"):
        importlib.import_module(name)


@contextlib.contextmanager
def _workers(ctx: Any, how: PoolPlan) -> Iterator[list[Any]]:
    procs = [ctx.Process(target=_worker, args=(how.threads, index), daemon=True) for index in range(how.processes)]
    for p in procs:
        p.start()
    try:
        yield procs
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        _JOB.clear()


__all__ = ["PoolPlan", "plan", "release_once", "run_batch"]
