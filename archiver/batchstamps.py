"""A batch's trusted timestamps: one token for the batch, and the end of the batch not kept waiting.

A token covers finished records only, so a batch stamped at its end waits for the TSA round-trip and
the group commit of every record after its last download (0.25 s of a 3 s batch of 100 slow pages,
measured). So once only the last downloads remain (no more than ``jobs`` records unfinished, and at
least ``EARLY_MIN`` and ``jobs`` finished), the records already finished are stamped on a background
thread while those downloads run; at the end only the rest is stamped. A batch thus gets at most
two tokens per TSA, and a small one gets one (below ~30 records the split saves less than the extra
round-trip costs: 100 records take 0.16 s to stamp, 4 take 0.025 s). If the early request fails its records are tried
again with the rest (or after it, once a TSA answers the rest), so a record is never left unstamped by the
split; and a TSA that is down costs the batch one timeout, not two (``finish``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from archiver.errors import ArchiverError
from archiver.records import BatchItem, StampResult

EARLY_MIN = 32


class BatchStamps:
    """Fed each result as it completes (one thread); ``finish`` stamps the rest and joins the early part."""

    def __init__(self, stamp: Callable[[list[str]], list[StampResult]], *, total: int, jobs: int) -> None:
        self._stamp = stamp
        self._total = total
        self._jobs = jobs
        self._seen = 0
        self._done: list[str] = []
        self._early: list[str] = []
        self._early_out: list[StampResult] = []
        self._early_failed = False
        self._thread: threading.Thread | None = None

    def add(self, item: BatchItem) -> None:
        self._seen += 1
        if item.record_id:
            self._done.append(item.record_id)
        remaining = self._total - self._seen
        if self._thread is None and 0 < remaining <= self._jobs and len(self._done) >= max(self._jobs, EARLY_MIN):
            self._early = list(self._done)
            # the actor is bound into ``stamp`` by the caller (an explicit argument, not the thread's context)
            self._thread = threading.Thread(target=self._run_early, name="batch-stamp", daemon=True)
            self._thread.start()

    def _run_early(self) -> None:
        try:
            self._early_out = self._stamp(self._early)
        except ArchiverError:  # e.g. a store error: these records go with the rest
            self._early_failed = True

    def finish(self) -> list[StampResult]:
        """Every stamp result of the batch, the early ones first.

        An early request still waiting on its TSA (one that times out: ``tsa.timeout`` x the retries)
        is not waited for before the rest is asked: the rest goes out beside it, so a TSA that is down
        costs the batch's end one timeout, not two. The early records are then asked again only if a
        TSA answered the rest (it is back), or if the early request ended first (as before)."""
        if self._thread is None:
            return self._stamp(self._done) if self._done else []
        early = set(self._early)
        rest = [rid for rid in self._done if rid not in early]
        beside: list[StampResult] | None = None
        if rest and self._thread.is_alive():
            try:
                beside = self._stamp(rest)
            finally:
                self._thread.join()
        self._thread.join()
        early_out = [] if self._early_failed else self._early_out
        if any(st.ok for st in early_out):
            return [*early_out, *(beside if beside is not None else self._stamp(rest) if rest else [])]
        if beside is None:  # the early request failed first: its records go with the rest, in one request
            return [*early_out, *self._stamp(self._done)]
        if any(st.ok for st in beside):  # a TSA answers again: the early records once more
            return [*early_out, *beside, *self._stamp(self._early)]
        return [*early_out, *beside]  # no TSA answered either: all unstamped (``timestamp --pending``)

    @staticmethod
    def mark(results: list[BatchItem], stamps: list[StampResult]) -> list[BatchItem]:
        """Each captured record's ``timestamp``: stamped if a token covers it, else why not."""
        good: set[str] = set()
        why: dict[str, list[str]] = {}
        for st in stamps:
            for rid in st.record_ids:
                if st.ok:
                    good.add(rid)
                else:
                    why.setdefault(rid, []).append(st.error or "no token")
        return [dataclasses.replace(r, timestamp="stamped" if r.record_id in good
                                    else "unstamped: " + "; ".join(why.get(r.record_id, ["no token"])))
                if r.record_id else r for r in results]


__all__ = ["EARLY_MIN", "BatchStamps"]
