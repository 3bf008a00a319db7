"""Capture commands: one URL or a batch."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from archiver.cli._common import (
    Exit,
    JsonOpt,
    StoreOpt,
    _emit_json,
    _emit_line,
    _err,
    _open,
    _out,
    _passphrase_source,
    _render_stamps,
    _render_wayback_line,
    _wayback_inline,
    app,
)

if TYPE_CHECKING:
    from archiver.api import Archive
    from archiver.options import CaptureOptions
    from archiver.records import BatchItem, StampResult
    from archiver.reports import WaybackReport


@app.command()
def capture(url: Annotated[str | None, typer.Argument(help="URL to capture.")] = None,
            input_file: Annotated[Path | None, typer.Option("-i", "--input", help="File of URLs, one per line "
                                                            "(optional TAB entity TAB document), or a .csv with a "
                                                            "header: url, entity, document, matter, tags, notes."
                                                            )] = None,
            jobs: Annotated[int, typer.Option("-j", "--jobs", help="Concurrent fetches for -i.")] = 4,
            entity: Annotated[str | None, typer.Option(help="Who publishes the document.")] = None,
            document: Annotated[str | None, typer.Option(help="Which document it is.")] = None,
            allow_private: Annotated[bool, typer.Option("--allow-private",
                                                        help="Allow private/loopback targets.")] = False,
            insecure: Annotated[bool, typer.Option("--insecure", help="Accept an unverifiable TLS certificate "
                                                   "(recorded in the manifest).")] = False,
            allow_status: Annotated[bool, typer.Option("--allow-status",
                                                       help="Keep non-2xx responses as evidence.")] = False,
            wayback_mode: Annotated[str | None, typer.Option("--wayback", help="After capturing: `lookup` the "
                                                             "Wayback Machine, or `save` there too.")] = None,
            browser: Annotated[bool, typer.Option("--browser", help="Capture through headless Chromium: "
                                                  "screenshot, PDF, rendered DOM, every resource.")] = False,
            full_page: Annotated[bool, typer.Option("--full-page/--viewport-only", help="Screenshot the whole "
                                                    "page or the viewport.")] = True,
            viewport: Annotated[str, typer.Option("--viewport", help="Browser window, WIDTHxHEIGHT.")] = "1440x900",
            wait: Annotated[str, typer.Option("--wait", help="load, domcontentloaded, networkidle or "
                                              "commit.")] = "networkidle",
            strict: Annotated[bool, typer.Option("--strict", help="Fail instead of keeping a page that never "
                                                 "reached --wait.")] = False,
            page_timeout: Annotated[float, typer.Option("--page-timeout", help="Seconds for the page to reach "
                                                        "--wait.")] = 60.0,
            select: Annotated[list[str] | None, typer.Option("--select", help="CSS selector of the document's own "
                                                             "text (Open Terms Archive rule; repeatable): adds the "
                                                             "main-text artifact.")] = None,
            remove: Annotated[list[str] | None, typer.Option("--remove", help="CSS selector to drop from the "
                                                             "selected text (repeatable).")] = None,
            main_content: Annotated[bool | None, typer.Option("--main-content/--no-main-content", help="With no "
                                                              "--select, find the document's own text automatically "
                                                              "(main-text artifact). Default: capture.main_content."
                                                              )] = None,
            store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Capture a URL (or a batch with -i) into signed evidence records."""
    from archiver.options import BrowserOptions, CaptureOptions, parse_viewport

    bopts = None
    if browser:
        bopts = BrowserOptions(full_page=full_page, viewport=parse_viewport(viewport), wait=wait, strict=strict,
                               timeout=page_timeout)
    if wayback_mode not in (None, "lookup", "save"):
        from archiver.errors import UsageError

        raise UsageError(f"--wayback takes lookup or save, not {wayback_mode!r}")
    if (url is None) == (input_file is None):
        from archiver.errors import UsageError

        raise UsageError("give either a URL or -i FILE", hint="archiver capture https://example.org/privacy")
    if remove and not select:
        from archiver.errors import UsageError

        raise UsageError("--remove needs --select: remove rules apply inside the selected part")
    opts = CaptureOptions(entity=entity, document=document, allow_private=allow_private or None, insecure=insecure,
                          allow_status=allow_status, select=tuple(select or ()), remove=tuple(remove or ()),
                          main_content=main_content, browser=bopts)
    archive = _open(store)
    if input_file is not None and input_file.suffix.lower() == ".csv":
        _capture_csv(archive, input_file, jobs, opts, as_json, wayback_mode)
        return
    if input_file is not None:
        _capture_batch(archive, input_file, jobs, opts, as_json, wayback_mode)
        return
    assert url is not None
    stamps: list[StampResult] = []
    m = archive.capture(url, opts, passphrase=_passphrase_source(), on_stamp=stamps.append)
    wb: WaybackReport | None = None
    if wayback_mode:
        wb = _wayback_inline(archive, m.record_id, wayback_mode == "save")
    if as_json:
        from archiver.reports import CaptureReport

        _emit_json(CaptureReport(manifest=m, timestamps=tuple(stamps), wayback=wb))
        return
    from archiver.cli._common import safe

    out = _out()
    out.print(f"Captured [bold]{safe(m.record_id)}[/]  {safe(m.subject.final_url)}  HTTP {m.http.status}")
    for a in m.artifacts:
        out.print(f"  {safe(f'{a.name:<10}')} sha256:{a.sha256}  {a.size:>12,} bytes")
    if m.capture.insecure:
        out.print("  [yellow]TLS certificate NOT verified (--insecure), recorded in the manifest[/]")
    b = m.capture.browser
    if b is not None:
        out.print(f"  browser    {safe(b.name)} {safe(b.version)}, {safe(b.viewport)}, waited for {safe(b.wait)}"
                  + (" [yellow](partial)[/]" if b.partial else "") + f", {b.resources} sub-resource(s)"
                  + (f", {len(b.blocked)} blocked" if b.blocked else ""))
    _render_stamps(stamps)
    if wb is not None:
        _render_wayback_line(wb)


def _capture_csv(archive: "Archive", input_file: Path, jobs: int, opts: "CaptureOptions", as_json: bool,
                 wayback_mode: str | None) -> None:
    """A capture sheet (``archiver.matters.bulk``): bad rows reported by line, good rows captured and
    filed (matter, tags, notes). Exit 2 when a row was bad, else the batch's own exit code."""
    from archiver.cli._common import safe
    from archiver.errors import ArchiverError, UsageError
    from archiver.matters import list_all
    from archiver.matters.bulk import RowProblem, file_record, parse_csv

    try:
        text = input_file.read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {input_file}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{input_file} is not UTF-8 text: byte {exc.start}") from exc
    rows, problems = parse_csv(text, known_matters={m.name for m in list_all(archive)})
    for p in problems:
        _err().print(f"[red]{safe(input_file.name)} line {p.line}:[/] {safe(p.error)}", highlight=False)
    code = 0
    if rows:
        results = _capture_batch(archive, input_file, jobs, opts, as_json, wayback_mode,
                                 items=[(r.url, r.entity, r.document) for r in rows], final=False)
        # results come by URL, rows of one URL in the order their captures finished: a row is found by
        # what its capture carries (URL, entity, document), so one page filed twice is filed right
        waiting: dict[tuple[str, str | None, str | None], list[int]] = {}
        for i, r in enumerate(rows):
            waiting.setdefault((r.url, r.entity, r.document), []).append(i)
        actor = archive.default_actor()
        for res in results:
            row = rows[waiting[(res.url, res.entity, res.document)].pop(0)]
            if not res.record_id:  # a failed capture is a bad row too: reported by its line
                problems.append(RowProblem(row.line, f"not captured: {res.error}"))
                _err().print(f"[red]{safe(input_file.name)} line {row.line}:[/] not captured: {safe(res.error or '')}",
                             highlight=False)
                continue
            try:
                file_record(archive, row, res.record_id, actor=actor)
            except ArchiverError as exc:  # the record stands; its filing is reported by line
                problems.append(RowProblem(row.line, f"captured as {res.record_id} but not filed: {exc.message}"))
                _err().print(f"[red]{safe(input_file.name)} line {row.line}:[/] captured as {safe(res.record_id)} "
                             f"but not filed: {safe(exc.message)}", highlight=False)
        code = max((r.exit_code for r in results if not r.ok), default=0)
    elif not problems:
        raise UsageError(f"{input_file} holds no rows under its header")
    if problems:
        if not as_json:
            _err().print(f"{len(problems)} row(s) of {safe(input_file.name)} not captured or not filed; "
                         f"{len(rows)} row(s) taken", highlight=False)
        code = code or 2
    if code:
        raise Exit(code)


def _capture_batch(archive: "Archive", input_file: Path, jobs: int, opts: "CaptureOptions", as_json: bool,
                   wayback_mode: str | None = None, *, items: list[tuple[str, str | None, str | None]] | None = None,
                   final: bool = True) -> "list[BatchItem]":
    # (rich's progress bar and the report models are imported only where used, the models once the
    # batch is under way: what runs before the first download delays every page of a batch)
    from archiver.api import parse_batch_lines
    from archiver.errors import UsageError
    from archiver.records import BatchItem

    if items is None:
        try:
            items = parse_batch_lines(input_file.read_text("utf-8").splitlines())
        except OSError as exc:
            raise UsageError(f"cannot read {input_file}: {exc.strerror}") from exc
    if not items:
        raise UsageError(f"{input_file} holds no URLs")

    def line(item: BatchItem) -> None:
        if as_json:
            _emit_line(item)
            import archiver.reports  # noqa: F401  # for the stamp lines at the end, while the pages download

    kwargs: dict[str, Any] = {"jobs": jobs, "passphrase": _passphrase_source()}
    stamps: list[StampResult] = []
    kwargs["on_stamp"] = stamps.append
    if as_json:
        results = archive.capture_batch(items, opts, on_result=line, **kwargs)
        from archiver.reports import BatchStampLine

        for st in stamps:
            _emit_line(BatchStampLine(timestamp=st))
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from archiver.cli._common import safe

        with Progress(TextColumn("capturing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=_err(), transient=True) as progress:
            task = progress.add_task("capture", total=len(items))
            results = archive.capture_batch(items, opts, on_result=lambda _i: progress.advance(task), **kwargs)
        table = Table(title=f"Batch of {len(results)}")
        for col in ("URL", "record", "result", "s"):
            table.add_column(col)
        for r in results:
            result = "[green]ok[/]" if r.ok else f"[red]{safe(r.error or '')}[/]"
            table.add_row(safe(r.url), safe(r.record_id or "-"), result,
                          f"{r.seconds:.2f}")
        out = _out()
        out.print(table)
        ok = sum(1 for r in results if r.ok)
        out.print(f"{ok} captured, {len(results) - ok} failed")
        _render_stamps(stamps)
    for r in results:
        if wayback_mode and r.record_id:
            wb = _wayback_inline(archive, r.record_id, wayback_mode == "save")
            if as_json:
                from archiver.reports import BatchWaybackLine

                _emit_line(BatchWaybackLine(record_id=r.record_id, wayback=wb))
            else:
                _out().print(safe(r.record_id), end="")
                _render_wayback_line(wb)
    failed = [r for r in results if not r.ok]
    if failed and final:
        raise Exit(max(r.exit_code for r in failed))
    return results
