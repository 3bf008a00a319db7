"""``archiver search``: full-text search over the documents' sections (``archiver.fulltext``)."""

from typing import Annotated

import typer

from archiver.cli._common import JsonOpt, StoreOpt, _emit_json, _err, _open, _out, app, safe

#: how long a search may spend bringing the index up to date first (a store upgraded with many records
#: to index is caught up over several searches, or by `archiver serve` in the background)
SYNC_SECONDS = 20.0


@app.command("search")
def search_cmd(query: Annotated[str, typer.Argument(help='Words to find, all of them; "a phrase" in quotes.')],
               entity: Annotated[str | None, typer.Option("--entity", help="Only this entity's documents.")] = None,
               latest: Annotated[bool, typer.Option("--latest", help="Only each URL's newest record.")] = False,
               limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="Hits to show.")] = 10,
               store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Find how every tracked document words a clause: ranked sections with a highlighted snippet.

    The index is brought up to date first (what was captured or derived since the last search)."""
    archive = _open(store)
    synced = archive.fulltext.sync(seconds=SYNC_SECONDS)
    report = archive.fulltext.search(query, entity=entity, latest=latest, limit=limit)
    if as_json:
        _emit_json(report)
        return
    out = _out()
    if synced.records and not as_json:
        _err().print(f"[dim]indexed {synced.records} record(s) new since the last search[/]")
    if report.pending_events and not as_json:
        _err().print(f"[yellow]the index is {report.pending_events} event(s) behind[/] (it catches up at the next "
                     f"search, or in the background on `archiver serve`): these hits are from what is indexed")
    if not report.hits:
        out.print(f"no section of the {report.indexed_records} indexed record(s) holds every word of "
                  f"{safe(query)!s}", highlight=False)
        return
    for n, h in enumerate(report.hits, 1):
        where = " / ".join(safe(x) for x in (h.entity, h.document) if x) or safe(h.url)
        section = safe(h.section) if h.section else "(before the first heading)"
        out.print(f"[bold]{n}. {where}[/]  § {section}", highlight=False)
        snippet = "".join(f"[reverse]{safe(t)}[/]" if hit else safe(t) for t, hit in h.parts())
        out.print(f"   {snippet}", highlight=False)
        more = f", same text in {h.versions} versions" if h.versions > 1 else ""
        out.print(f"   [dim]{safe(h.record_id)}  {safe(h.captured_at)}  {safe(h.url)}{more}[/]", highlight=False)
    out.print(f"[dim]{len(report.hits)} hit(s) among {report.indexed_sections} sections of "
              f"{report.indexed_records} records, {report.took_ms:.1f} ms[/]", highlight=False)
