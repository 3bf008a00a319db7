"""The capture queue: submit, worker, requeue, status."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from archiver.cli._common import (
    JsonOpt,
    StoreOpt,
    _emit_json,
    _err,
    _open,
    _out,
    app,
)

if TYPE_CHECKING:
    pass


@app.command()
def submit(urls: Annotated[list[str] | None, typer.Argument(help="URLs to enqueue.")] = None,
           input_file: Annotated[Path | None, typer.Option("-i", "--input", help="File of URLs, one per line "
                                                           "(optional TAB entity TAB document).")] = None,
           entity: Annotated[str | None, typer.Option(help="Who publishes the documents (URL arguments).")] = None,
           document: Annotated[str | None, typer.Option(help="Which document it is (URL arguments).")] = None,
           allow_private: Annotated[bool, typer.Option("--allow-private",
                                                       help="Allow private/loopback targets.")] = False,
           insecure: Annotated[bool, typer.Option("--insecure", help="Accept unverifiable TLS.")] = False,
           allow_status: Annotated[bool, typer.Option("--allow-status", help="Keep non-2xx responses.")] = False,
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Enqueue captures for `archiver worker` processes (needs a PostgreSQL catalog)."""
    from archiver.api import parse_batch_lines
    from archiver.errors import UsageError
    from archiver.queue import submit as do_submit

    items = [(u, entity, document) for u in urls or []]
    if input_file is not None:
        try:
            items += parse_batch_lines(input_file.read_text("utf-8").splitlines())
        except OSError as exc:
            raise UsageError(f"cannot read {input_file}: {exc.strerror}") from exc
    if not items:
        raise UsageError("nothing to submit: give URLs or -i FILE")
    archive = _open(store)
    result = do_submit(archive, items, allow_private=allow_private, insecure=insecure,
                       allow_status=allow_status, actor=archive.default_actor())
    if as_json:
        from archiver.reports import SubmitReport

        _emit_json(SubmitReport(submitted=len(result.job_ids), job_ids=result.job_ids))
        return
    first, last = (result.job_ids[0], result.job_ids[-1]) if result.job_ids else (0, 0)
    _out().print(f"{len(result.job_ids)} capture job(s) queued (ids {first}–{last}); "
                 "run `archiver worker` to take them, `archiver status` to follow")


@app.command()
def worker(concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Captures run at once.")] = 4,
           until_empty: Annotated[bool, typer.Option("--until-empty", help="Exit once no job is waiting.")] = False,
           name: Annotated[str | None, typer.Option(help="Worker name in logs.")] = None,
           quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the start and stop lines.")] = False,
           store: StoreOpt = None) -> None:
    """Take capture jobs from the queue until stopped (Ctrl-C / SIGTERM finish running jobs first).

    If the catalog's database goes away the worker says so on one line (again at most once a
    minute), retries with a growing wait (up to `queue.reconnect_max_delay` seconds) and goes on
    when it is back. It exits 4 if the database cannot be reached when it starts."""
    import socket

    from archiver.queue import Tally, run_worker

    _one_line_logging()
    from archiver.cli._common import safe

    archive = _open(store)
    tally = Tally()
    label = name or f"{socket.gethostname()}:{os.getpid()}"
    err = _err()

    def done(url: str, record_id: str | None, error: str | None) -> None:
        tally(url, record_id, error)
        if not quiet:  # an error's first line: psycopg's run over several
            first = next((line.strip() for line in (error or "").splitlines() if line.strip()), "")
            err.print(f"  {record_id}  {safe(url)}" if record_id else f"  [red]failed[/] {safe(url)}: "
                      f"{safe(first)}", highlight=False)

    err.print(f"worker {label}: taking capture jobs, concurrency {concurrency}")
    run_worker(archive, concurrency=concurrency, until_empty=until_empty, name=label, on_done=done)
    err.print(f"worker {label} stopped: {tally.ok} captured, {tally.failed} failed attempt(s)")


def _one_line_logging() -> None:
    """The worker's log: our lines on stderr, each on one line — an exception as its type and first
    line, never a traceback. procrastinate and psycopg's pool narrate every failed connection attempt
    and job (with tracebacks); what matters of that, archiver.queue says once, and job outcomes are
    printed by the worker itself."""
    import logging

    class OneLine(logging.Formatter):
        def formatException(self, ei: Any) -> str:  # logging's name
            exc = ei[1]
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
            return f"{type(exc).__name__}: {first}" if first else type(exc).__name__

        def format(self, record: logging.LogRecord) -> str:
            record.exc_text = None
            record.stack_info = None
            text = super().format(record)
            return " | ".join(part for part in text.splitlines() if part.strip())

    handler = logging.StreamHandler()
    handler.setFormatter(OneLine("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for noisy in ("procrastinate", "psycopg"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


@app.command()
def requeue(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Put failed capture jobs back in the queue (once the site or the network is back)."""
    from archiver.queue import requeue_failed

    archive = _open(store)
    ids = requeue_failed(archive, actor=archive.default_actor())
    if as_json:
        from archiver.reports import RequeueReport

        _emit_json(RequeueReport(requeued=len(ids), job_ids=tuple(ids)))
        return
    _out().print(f"{len(ids)} failed job(s) queued again" if ids else "no failed jobs")


@app.command()
def status(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Queue depth, jobs running, done and failed, captures in the last minute, recent failures."""
    from archiver.cli._common import safe
    from archiver.queue import status as queue_status

    st = queue_status(_open(store))
    if as_json:
        _emit_json(st)
        return
    out = _out()
    out.print(f"queued {st.todo}   running {st.doing}   done {st.succeeded}   failed {st.failed}"
              f"   cancelled {st.cancelled}")
    out.print(f"workers alive {st.workers} (heartbeat in the last {st.worker_window:g} s)"
              f"   captures in the last minute {st.done_last_minute}   records in the catalog {st.records}")
    for f in st.recent_failures:
        kind = "will retry" if f.retry else "final"
        out.print(f"  [red]job {f.job_id}[/] try {f.attempt} ({kind}) {safe(f.url)}: {safe(f.error)}")
