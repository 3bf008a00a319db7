"""Batch capture on every core: worker processes, each running threads.

A capture is CPU-bound between its network waits (parse, extract, deflate, hash, sign), and threads
share one GIL: on a 2-core machine a thread pool used one core. So a batch runs on ``processes``
forked workers (each opens its own store handle: its own SQLite or PostgreSQL connections and key
handle). Each worker has ``threads`` download slots and twice as many threads: a thread frees its
slot once its page is downloaded and processes the page while another thread downloads the next, so
``-j 16`` means 16 downloads in flight and waits on slow servers overlap with the CPU work. The
parent hands out the tasks and counts each host's downloads in flight (``capture.per_host``), over one
pipe per worker. Results come back to the parent in completion order; the parent alone prints, stamps
and decides. A worker that dies (kill -9, at any instruction) loses only the captures it had in
flight: each of those is reported failed, what it committed is complete (the store's commit
protocol), and since the workers share no lock or semaphore, nothing it held can keep the others
waiting (the parent frees its downloads' host slots when its pipe ends).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import heapq
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from archiver.errors import ArchiverError
from archiver.options import CaptureOptions
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
    """Ask the parent for a task, download, say the download is over, process, send the result.

    The parent alone hands out tasks and per-host slots and counts them, so a worker killed at any
    instruction holds nothing the others wait for: the parent sees its pipe end and frees what it had."""
    from archiver.api import Archive

    job = _JOB
    conn = job["conns"][index][1]
    for pair in job["conns"]:  # the parent sees our end of the pipe close when we die
        for end in pair:
            if end is not conn:
                end.close()
    archive = Archive.open(job["root"])
    # The transparency log is appended once, by the parent at the batch's end (``checkpoint_at_end``
    # syncs before it signs), not after each record here: a sync is a second write transaction a page
    # (~0.45 ms of CPU, and the catalog's write lock taken again while the other workers wait for it),
    # where one sync of the whole batch costs ~0.06 ms a record. Nothing is lost meanwhile: the log is
    # a pure function of the outbox, committed with each record, and whatever reads the log syncs first.
    archive.ledger.on_commit = None
    sending = threading.Lock()  # one message at a time on the pipe
    asking = threading.Lock()  # one request at a time waits for its answer (answers come in order)
    # ``threads`` downloads in flight; as many threads again process pages already downloaded, so a
    # thread busy hashing, deflating and signing never holds a download slot
    downloads = threading.BoundedSemaphore(threads)

    def send(message: tuple[Any, ...]) -> None:
        with sending:
            conn.send(message)

    def one() -> None:
        # one catalog connection for the thread's life: opening one per capture, and the WAL checkpoint
        # when the last one closes, cost ~1 ms a page (archiver.api.Archive.capture nests inside)
        with archive.catalog.session(), contextlib.suppress(EOFError, OSError):  # the parent is gone
            work()

    def work() -> None:
        while True:
            i: int | None = None
            downloads.acquire()
            try:
                with asking:
                    send(("next",))
                    i = conn.recv()  # a task whose host has a free slot, or None: nothing left
            finally:
                if i is None:  # (or the parent is gone): the slot goes to a thread still waiting for one
                    downloads.release()
            if i is None:
                return
            url, entity, document = job["items"][i]
            started = time.monotonic()
            fetched = release_once(downloads, _Told(send, i))
            try:
                opts = dataclasses.replace(job["options"], entity=entity, document=document, on_fetched=fetched)
                m = archive.capture(url, opts, passphrase=lambda: job["secret"], stamp=False, actor=job["actor"])
                item = BatchItem(url, entity, document, record_id=m.record_id, seconds=time.monotonic() - started)
            except ArchiverError as exc:
                item = BatchItem(url, entity, document, error=exc.message, exit_code=exc.exit_code,
                                 seconds=time.monotonic() - started)
            except Exception as exc:  # one page's bug must not lose the batch
                item = BatchItem(url, entity, document, error=f"{type(exc).__name__}: {exc}", exit_code=4,
                                 seconds=time.monotonic() - started)
            finally:
                fetched()
            send(("done", i, item))

    pool = [threading.Thread(target=one, daemon=True) for _ in range(2 * threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    conn.close()


class _Told:
    """Releasing it tells the parent that task ``i``'s download is over (its host slot is free)."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None], i: int) -> None:
        self._send, self._i = send, i

    def release(self) -> None:
        with contextlib.suppress(OSError):  # the parent is gone: nothing to free
            self._send(("fetched", self._i))


class _Scheduler:
    """The parent's side: which task goes next, and how many downloads each host has in flight.

    Tasks go out in the input's order, skipping hosts at ``per_host``; a request that finds every
    remaining task's host full waits for a download to end. A worker that dies frees its downloads'
    slots; its tasks stay unfinished and are reported as such. The hosts that can take a download
    are kept in a heap by their next task, so a batch over many hosts costs log(hosts) a task."""

    def __init__(self, items: list[tuple[str, str | None, str | None]], host_of: Callable[[str], str],
                 per_host: int) -> None:
        self._queues: dict[str, collections.deque[int]] = {}
        for i, (url, _, _) in enumerate(items):
            self._queues.setdefault(host_of(url), collections.deque()).append(i)
        self._host_of_task = {i: host for host, q in self._queues.items() for i in q}
        self._busy: collections.Counter[str] = collections.Counter()
        self._per_host = per_host
        self._left = len(items)
        self._ready = [(q[0], host) for host, q in self._queues.items()]  # (next task, host); stale ones skipped
        heapq.heapify(self._ready)
        self._downloading: dict[int, int] = {}  # task -> worker, while it downloads
        self.waiting: collections.deque[int] = collections.deque()  # workers with a request unanswered

    def _offer(self, host: str) -> None:
        q = self._queues[host]
        if q and self._busy[host] < self._per_host:
            heapq.heappush(self._ready, (q[0], host))

    def next_for(self, worker: int) -> int | bool | None:
        """A task for ``worker``, None when none is left, False when it must wait for a host slot."""
        while self._ready:
            head, host = heapq.heappop(self._ready)
            q = self._queues[host]
            if not q or q[0] != head or self._busy[host] >= self._per_host:
                continue  # stale: taken, or the host filled up since
            i = q.popleft()
            self._left -= 1
            self._busy[host] += 1
            self._downloading[i] = worker
            self._offer(host)
            return i
        return None if self._left == 0 else False

    def fetched(self, i: int) -> None:
        if self._downloading.pop(i, None) is not None:
            host = self._host_of_task[i]
            self._busy[host] -= 1
            self._offer(host)

    def gone(self, worker: int) -> None:
        for i in [i for i, w in self._downloading.items() if w == worker]:
            self.fetched(i)
        self.waiting = collections.deque(w for w in self.waiting if w != worker)

    def answer(self, conns: dict[int, Any]) -> None:
        """Answer waiting requests in order while tasks can go out."""
        while self.waiting:
            got = self.next_for(self.waiting[0])
            if got is False:
                return
            worker = self.waiting.popleft()
            with contextlib.suppress(OSError):  # it died meanwhile: ``gone`` frees the slot
                conns[worker].send(got)


def release_once(*locks: Any) -> Callable[[], None]:
    """Release ``locks`` at the first call (the page is downloaded), never twice."""
    held = list(locks)

    def release() -> None:
        while held:
            held.pop().release()

    return release


def run_batch(root: Path, items: list[tuple[str, str | None, str | None]], *, how: PoolPlan, secret: str | None,
              actor: str, per_host: int, host_of: Callable[[str], str], options: CaptureOptions,
              on_item: Callable[[BatchItem], None]) -> None:
    """Capture ``items`` on ``how.processes`` forked workers; ``on_item`` gets each result in the parent.

    Each worker talks to the parent on a pipe of its own: nothing is shared between workers that a
    kill could leave taken (a lock, a semaphore slot, a queue's lock held while a message is read), and
    the end of a worker's pipe tells the parent it is gone."""
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    _preload()
    pairs = [ctx.Pipe(duplex=True) for _ in range(how.processes)]
    _JOB.update(root=root, secret=secret, actor=actor, options=options, items=items, conns=pairs)
    scheduler = _Scheduler(items, host_of, max(1, per_host))
    pending = set(range(len(items)))
    with _workers(ctx, how):
        for _, theirs in pairs:
            theirs.close()  # the workers have theirs: a pipe ends when its worker does
        conns = {w: ours for w, (ours, _) in enumerate(pairs)}
        worker_of = {id(c): w for w, c in conns.items()}
        try:
            while conns:
                for conn in cast(list[Any], wait(list(conns.values()), timeout=1.0)):
                    w = worker_of[id(conn)]
                    try:
                        message = conn.recv()
                    except (EOFError, OSError):  # the worker is done, or died (mid-message, even)
                        del conns[w]
                        scheduler.gone(w)
                        continue
                    if message[0] == "next":
                        scheduler.waiting.append(w)
                    elif message[0] == "fetched":
                        scheduler.fetched(message[1])
                    else:  # ("done", i, item)
                        scheduler.fetched(message[1])
                        pending.discard(message[1])
                        on_item(message[2])
                scheduler.answer(conns)
        finally:  # an error here (``on_item`` raised): the workers see their pipes end and stop at once
            for conn in conns.values():
                conn.close()
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
