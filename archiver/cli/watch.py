"""Watching documents over time: watch, history, diff, clauses."""

import json
import sys
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
    app,
    watch_app,
)

if TYPE_CHECKING:
    from archiver.api import Archive


@watch_app.command("add")
def watch_add(url: str, every: Annotated[str, typer.Option("--every", help="Interval: 90s, 30m, 12h, 1d, 1w.")] = "1d",
              entity: Annotated[str | None, typer.Option(help="Who publishes the document.")] = None,
              document: Annotated[str | None, typer.Option(help="Which document it is.")] = None,
              allow_private: Annotated[bool, typer.Option("--allow-private", help="Allow a private target.")] = False,
              insecure: Annotated[bool, typer.Option("--insecure", help="Accept an unverifiable TLS "
                                                     "certificate.")] = False,
              select: Annotated[list[str] | None, typer.Option("--select", help="CSS selector of the document's "
                                                               "own text (repeatable): changes are detected "
                                                               "on it.")] = None,
              remove: Annotated[list[str] | None, typer.Option("--remove", help="CSS selector to drop from the "
                                                               "selected text (repeatable).")] = None,
              store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Add a URL to the watch list."""
    archive = _open(store)
    w = archive.watches.add(url, entity=entity, document=document, every=every, allow_private=allow_private,
                  insecure=insecure, select=tuple(select or ()), remove=tuple(remove or ()),
                  actor=archive.default_actor())
    if as_json:
        _emit_json(w)
    else:
        _out().print(f"watching {w.url} every {every}" + (f", document text by {len(w.select)} select rule(s)"
                                                           if w.select else ", document text found automatically"))


@watch_app.command("import-ota")
def watch_import_ota(declaration: Annotated[Path, typer.Argument(help="An Open Terms Archive service declaration "
                                                                  "(JSON).")],
                     every: Annotated[str, typer.Option("--every", help="Interval for every watch.")] = "1d",
                     history: Annotated[Path | None, typer.Option("--history", help="The service's OTA "
                                                                  "*.history.json (default: the one beside the "
                                                                  "declaration, if any).")] = None,
                     store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Watch every document of an Open Terms Archive declaration, with its select/remove rules and,
    from its *.history.json, the rules that applied before (each watch's declaration history)."""
    from archiver.errors import UsageError

    def read(path: Path, what: str) -> Any:
        try:
            return json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the {what} {path}: {exc}") from exc

    if declaration.name.endswith(".history.json"):
        raise UsageError(f"{declaration} is a history: give the service's declaration",
                         hint=f"archiver watch import-ota {declaration.name.removesuffix('.history.json')}.json "
                              f"--history {declaration}")
    data = read(declaration, "declaration")
    beside = declaration.with_name(declaration.name.removesuffix(".json") + ".history.json")
    past = read(history, "history") if history is not None else (read(beside, "history") if beside.is_file()
                                                                   else None)
    archive = _open(store)
    watches = archive.watches.import_ota(data, every=every, actor=archive.default_actor(), history=past)
    if as_json:
        _emit_json(watches)
        return
    for w in watches:
        _out().print(f"watching {w.url} ({w.entity} — {w.document}) every {every}", highlight=False)


@watch_app.command("update")
def watch_update(url: str,
                 select: Annotated[list[str] | None, typer.Option("--select", help="New CSS selectors of the "
                                                                  "document's own text (repeatable; replaces "
                                                                  "the old ones; '' alone: automatic).")] = None,
                 remove: Annotated[list[str] | None, typer.Option("--remove", help="New CSS selectors to drop "
                                                                  "(repeatable; replaces the old ones; '' alone: "
                                                                  "none).")] = None,
                 every: Annotated[str | None, typer.Option("--every", help="New interval: 90s, 30m, 12h, 1d, "
                                                           "1w.")] = None,
                 entity: Annotated[str | None, typer.Option(help="Who publishes the document.")] = None,
                 document: Annotated[str | None, typer.Option(help="Which document it is.")] = None,
                 store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Change a watch's declaration; the old one stays in its history (`watch declarations URL`).

    New rules re-derive the previous version's text under them (a signed addendum), so the next run
    compares like for like: a change of rules alone is never a new version."""
    from archiver.cli._common import safe

    archive = _open(store)
    res = archive.watches.update(url, select=tuple(select) if select is not None else None,
                                 remove=tuple(remove) if remove is not None else None, every=every, entity=entity,
                                 document=document, passphrase=_passphrase_source(), actor=archive.default_actor())
    if as_json:
        _emit_json(res)
        return
    out = _out()
    if not res.changed:
        out.print(f"{safe(url)}: nothing changed (declaration version {res.version})")
        return
    out.print(f"{safe(url)}: declaration version {res.version} ({', '.join(res.changed)} changed)")
    if res.previous_record_id:
        out.print(f"  {res.previous_record_id} made again under the new rules as {res.rederived}"
                  if res.rederived else f"  the new rules extract nothing from {res.previous_record_id}: "
                  "the next run compares with its text under the old rules")


@watch_app.command("declarations")
def watch_declarations(url: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every version of a watch's declaration: rules, from when, until when, by whom."""
    from archiver.cli._common import safe

    items = _open(store).watches.declarations(url)
    if as_json:
        _emit_json(items)
        return
    out = _out()
    for v in items:
        rules = ("select " + " ".join(v.select) + (" remove " + " ".join(v.remove) if v.remove else "")
                 if v.select else "automatic")
        out.print(f"v{v.version}  {v.valid_from or 'before'} → {v.valid_until or 'now'}  {safe(rules)}  "
                  f"({v.source}{', ' + safe(v.actor) if v.actor else ''})", highlight=False)


@watch_app.command("remove")
def watch_remove(url: str, store: StoreOpt = None) -> None:
    """Stop watching a URL (its records stay)."""
    archive = _open(store)
    archive.watches.remove(url, actor=archive.default_actor())
    _out().print(f"no longer watching {url}")


@watch_app.command("list")
def watch_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The watch list with each URL's last run."""
    from rich.table import Table

    from archiver.cli._common import safe
    from archiver.monitor import _now

    watches = _open(store).watches.all()
    if as_json:
        _emit_json(watches)
        return
    table = Table(title=f"{len(watches)} watched")
    for col in ("URL", "every", "entity / document", "last run", "outcome", "due"):
        table.add_column(col)
    now = _now()
    for w in watches:
        table.add_row(safe(w.url), f"{w.interval_s}s", safe(" / ".join(x for x in (w.entity, w.document) if x)),
                      w.last_run or "never", w.last_outcome or "-", "yes" if w.due(now) else "no")
    _out().print(table)


@watch_app.command("run")
def watch_run(due: Annotated[bool, typer.Option("--due", help="Only watches whose interval has passed.")] = False,
              loop: Annotated[bool, typer.Option("--loop", help="Keep running on the interval until "
                                                 "interrupted.")] = False,
              jobs: Annotated[int, typer.Option("-j", "--jobs", help="Concurrent captures.")] = 4,
              notify_url: Annotated[str | None, typer.Option("--notify-url", help="POST the JSON summary "
                                                             "here.")] = None,
              store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Re-capture watched URLs; exit 0 when nothing changed, 10 when something did, 11 when a declared
    selector matched nothing (for cron; 11 wins over 10: a declaration to fix hides changes)."""
    import time as _time

    archive = _open(store)
    changed_any = missed_any = False
    while True:
        summary = _watch_once(archive, due or loop, jobs, notify_url, as_json)
        changed_any = changed_any or bool(summary.changed)
        missed_any = missed_any or bool(summary.missed)
        if not loop:
            break
        watches = archive.watches.all()
        pause = min([w.interval_s for w in watches] or [60])
        _err().print(f"next run in {pause} s (Ctrl-C to stop)")
        try:
            _time.sleep(max(1, pause))
        except KeyboardInterrupt:
            break
    if missed_any:
        raise Exit(11)
    if changed_any:
        raise Exit(10)


def _watch_once(archive: "Archive", due: bool, jobs: int, notify_url: str | None, as_json: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from archiver.alerts import after_run, notify_run
    from archiver.cli._common import safe

    total = len(archive.watches.all())
    if as_json:
        summary = archive.watches.run(due_only=due, jobs=jobs, passphrase=_passphrase_source(),
                              actor=archive.default_actor())
    else:
        with Progress(TextColumn("watch run"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=_err(), transient=True) as progress:
            task = progress.add_task("watch", total=total)
            summary = archive.watches.run(due_only=due, jobs=jobs, passphrase=_passphrase_source(),
                                  on_result=lambda _r: progress.advance(task), actor=archive.default_actor())
    # alerts: the run's events stored, queued and sent (a bounded round; never raises: the run stands)
    after_run(archive, summary, summary.provisions, actor=archive.default_actor())
    if notify_url and summary.results:
        import dataclasses

        summary = dataclasses.replace(summary, notified=notify_run(archive, notify_url, summary))
    if as_json:
        _emit_line(summary)
        return summary
    out = _out()
    if summary.skipped:
        out.print(f"[yellow]skipped[/]: {summary.skipped}")
    for r in summary.results:
        colour = {"changed": "bold yellow", "new": "cyan", "unchanged": "green", "failed": "red",
                  "selector-missed": "bold red"}[r.outcome]
        what = r.error or (("sections: " + "; ".join(r.sections)) if r.sections else "")
        out.print(f"[{colour}]{r.outcome:<9}[/] {safe(r.url)}  {r.record_id or '-'}"
                  + (f" (after {r.previous_record_id})" if r.previous_record_id else "")
                  + (f"  HTTP {r.status}" if r.status and r.status != 200 else "") + f"  {safe(what)}")
    for c in summary.provisions:  # pinned clauses: only what is news (unchanged ones are counted below)
        if c.status != "unchanged":
            colour = {"changed": "bold yellow", "moved": "cyan", "removed": "bold red"}.get(c.status, "white")
            where = f" § {safe(c.section)}" if c.section else ""
            out.print(f"  provision [{colour}]{c.status}[/] {c.provision_id} in {c.record_id}{where}")
    if summary.provisions:
        verified = sum(c.status == "unchanged" for c in summary.provisions)
        out.print(f"  provisions: {len(summary.provisions)} re-found, {verified} unchanged")
    counts = summary.to_dict()["counts"]
    out.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to run")
    if summary.notified:
        out.print(f"notification: {summary.notified}")
    return summary


@app.command()
def history(url: str, clause: Annotated[str | None, typer.Option("--clause", help="One clause's history, by "
                                                                 "heading.")] = None,
            store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Versions of a document: first seen, last seen (= last verified), records, changes."""
    from archiver.cli._common import safe
    from archiver.monitor import clause_history

    archive = _open(store)
    if clause:
        c = clause_history(archive, url, clause)
        if as_json:
            _emit_json(c)
            return
        out = _out()
        out.print(f"[bold]{safe(c.heading)}[/]  {c.changes} change(s) over {c.months_monitored} month(s) "
                  f"monitored; first seen {c.first_seen}, last seen {c.last_seen}")
        for rid, when, sha in c.history:
            out.print(f"  {when}  {rid}  sha256:{sha[:16]}…")
        return
    report = archive.watches.history(url)
    if as_json:
        _emit_json(report)
        return
    out = _out()
    out.print(f"[bold]{safe(url)}[/]: {len(report.versions)} version(s), {report.changes} change(s)")
    for v in report.versions:
        out.print(f"  v{v.number}  first seen {v.first_seen}  last verified {v.last_seen}  "
                  f"{len(v.record_ids)} capture(s)  HTTP {v.status}  {', '.join(v.record_ids)}")
    for r in report.failed_runs[-5:]:
        out.print(f"  [red]failed run[/] {r.time}: {safe(r.detail)}")


@app.command()
def diff(record_a: str, record_b: str,
         fmt: Annotated[str, typer.Option("--format", "-f", help="text, html or json.")] = "text",
         sections: Annotated[bool, typer.Option("--sections", help="Compare section by section.")] = False,
         output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here instead of "
                                                     "stdout.")] = None,
         store: StoreOpt = None) -> None:
    """What changed between two records' text: the document's own (main-text) when both have it."""
    from archiver.errors import UsageError
    from archiver.monitor import compared_texts, diff_records, diff_report
    from archiver.schema import plain
    from archiver.textdiff import html_diff, line_diff

    if fmt not in ("text", "html", "json"):
        raise UsageError(f"unknown diff format {fmt!r}", hint="text, html or json")
    archive = _open(store)
    a, b = archive.resolve(record_a), archive.resolve(record_b)
    if a.url != b.url:
        _err().print(f"[yellow]warning[/]: {a.record_id} and {b.record_id} are captures of different URLs")
    ta, tb = compared_texts(archive, a.record_id, b.record_id)
    changes = diff_records(archive, a.record_id, b.record_id) if sections or fmt == "html" else None
    if fmt == "json":
        report = diff_report(archive, a.record_id, b.record_id, ta, tb)
        text = json.dumps(plain(report), indent=2, ensure_ascii=False) + "\n"
    elif fmt == "html":
        text = html_diff(ta, tb, a.record_id, b.record_id, changes if sections else None)
    elif sections:
        lines = []
        for c in changes or []:
            if c.status == "unchanged":
                continue
            lines.append(f"{c.status.upper():<9} {c.heading_b or c.heading_a or c.key}")
            lines += [f"    {d}" for d in c.diff if not d.startswith(("---", "+++"))]
        text = "\n".join(lines) + "\n" if lines else "no section changed\n"
    else:
        text = "\n".join(line_diff(ta, tb, names=(a.record_id, b.record_id))) + "\n" if ta != tb else \
            "no difference in the normalised text\n"
    if output is None:
        sys.stdout.write(text)
    else:
        from store.fsutil import atomic_write_bytes

        atomic_write_bytes(output, text.encode("utf-8"))
        _out().print(f"wrote {output}")


@app.command()
def clauses(record_id: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """A record's sections, each with its own hash and how stable it has been."""
    from rich.table import Table

    from archiver.cli._common import safe
    from archiver.monitor import clauses as clause_list

    items = clause_list(_open(store), record_id)
    if as_json:
        _emit_json(items)
        return
    table = Table(title=f"Clauses of {record_id}")
    for col in ("clause", "sha256", "changes", "first seen", "last seen", "months"):
        table.add_column(col)
    for c in items:
        table.add_row(safe(c.heading), c.sha256[:12], str(c.changes), c.first_seen[:16].replace("T", " "),
                      c.last_seen[:16].replace("T", " "), str(c.months_monitored))
    _out().print(table)



@app.command()
def derive(record_ids: Annotated[list[str] | None, typer.Argument(help="Records to give main-text.")] = None,
           url: Annotated[str | None, typer.Option("--url", help="Every record of this URL.")] = None,
           select: Annotated[list[str] | None, typer.Option("--select", help="CSS selector of the document's own "
                                                            "text (Open Terms Archive rule; repeatable). Default: "
                                                            "the watch's declaration, else automatic.")] = None,
           remove: Annotated[list[str] | None, typer.Option("--remove", help="CSS selector to drop from the "
                                                            "selected text (repeatable).")] = None,
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Derive the document's own text (main-text) of records captured without it, as signed addenda."""
    from archiver.errors import UsageError

    if not record_ids and url is None:
        raise UsageError("name records or --url", hint="archiver derive --url https://example.org/privacy")
    if remove and not select:
        raise UsageError("--remove needs --select: remove rules apply inside the selected part")
    archive = _open(store)
    ids = list(record_ids or []) + ([r[0] for r in archive.catalog.records_for_url(url)] if url else [])
    if url and not ids:
        raise UsageError(f"no records of {url}")
    results = archive.derive(ids, select=tuple(select or ()), remove=tuple(remove or ()),
                             passphrase=_passphrase_source())
    if as_json:
        _emit_json(results)
        return
    out = _out()
    for r in results:
        colour = {"derived": "green", "present": "dim", "skipped": "yellow"}[r.outcome]
        out.print(f"{r.record_id}  [{colour}]{r.outcome}[/]  {r.detail}"
                  + (f"  sha256:{r.sha256}" if r.outcome == "derived" else ""))
