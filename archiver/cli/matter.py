"""Matters, notes, tags and legal holds (``archiver.matters``): ``matter create/add/list/show``, ``note``,
``tag``, ``hold``, ``release``."""

from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import _APP_OPTS, JsonOpt, StoreOpt, _emit_json, _open, _out, app, safe

if TYPE_CHECKING:  # the library is imported by the command that runs (start-up: docs/architecture.md)
    from archiver.matters import Matter
    from archiver.matters.holds import HoldChange

matter_app = typer.Typer(**_APP_OPTS, help="Matters: a case or investigation's records (its ordered exhibit list), "
                                          "notes, tags and legal holds.")
app.add_typer(matter_app, name="matter")

NameArg = Annotated[str, typer.Argument(help="The matter's name: a-z 0-9 . _ - (e.g. acme-v-doe).")]
MatterOpt = Annotated[str | None, typer.Option("--matter", help="Within this matter (the record must be in it).")]


def _line(m: "Matter") -> None:
    held = "  [bold red]HELD[/]" if m.held else ""
    extra = "  ".join(safe(x) for x in (m.client, m.number) if x)
    _out().print(f"{safe(m.name)}  {len(m.record_ids)} record(s)  {safe(m.title)}" + (f"  {extra}" if extra else "")
                 + held, highlight=False)


@matter_app.command("create")
def create(name: NameArg, title: Annotated[str, typer.Option("--title", help="Its title (one line).")] = "",
           client: Annotated[str, typer.Option("--client", help="The client.")] = "",
           number: Annotated[str, typer.Option("--number", help="The case or file number.")] = "",
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Create a matter with an empty exhibit list (a private collection named matter-NAME)."""
    from archiver.matters import create as create_matter

    archive = _open(store)
    m = create_matter(archive, name, title=title, client=client, number=number, actor=archive.default_actor())
    if as_json:
        _emit_json(m)
        return
    _line(m)


@matter_app.command("add")
def add(name: NameArg, record_ids: Annotated[list[str], typer.Argument(help="Records to append, in order.")],
        store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Append records to the matter's exhibit list (one already in it keeps its place)."""
    from archiver.matters import add as add_records

    archive = _open(store)
    ch = add_records(archive, name, record_ids, actor=archive.default_actor())
    if as_json:
        _emit_json(ch)
        return
    for rid in ch.added:
        _out().print(f"{safe(name)}  + {safe(rid)}", highlight=False)
    for rid in ch.already:
        _out().print(f"{safe(name)}  = {safe(rid)} (already in it)", highlight=False)


@matter_app.command("list")
def list_(client: Annotated[str | None, typer.Option("--client", help="Only this client's matters.")] = None,
          held: Annotated[bool | None, typer.Option("--held/--not-held", help="Only matters under (or not under) "
                                                    "a hold.")] = None,
          tag: Annotated[str | None, typer.Option("--tag", help="Only matters that use this tag.")] = None,
          store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every matter (narrowed by client, hold or tag)."""
    from archiver.matters import list_all

    found = list_all(_open(store), client=client, held=held, tag=tag)
    if as_json:
        _emit_json(found)
        return
    for m in found:
        _line(m)
    if not found:
        _out().print("[dim]no matters: `archiver matter create NAME --title …`[/]")


@matter_app.command("show")
def show(name: NameArg, tag: Annotated[str | None, typer.Option("--tag", help="Only exhibits with this tag.")] = None,
         store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """A matter: its fields, holds, and exhibits in order with their tags and notes."""
    from archiver.matters.notes import view

    v = view(_open(store), name, tag=tag)
    if as_json:
        _emit_json(v)
        return
    out = _out()
    out.print(f"{safe(v.name)}  {safe(v.title)}", highlight=False)
    for label, value in (("client", v.client), ("number", v.number), ("exhibit list", v.collection)):
        if value:
            out.print(f"  {label:<13} {safe(value)}", highlight=False)
    for h in v.holds:
        state = "ON" if h.active else f"released by {safe(h.released_by)} at {h.released_at}"
        out.print(f"  hold {state}: {safe(h.reason)} (placed by {safe(h.placed_by)} at {h.placed_at})", highlight=False)
    for item in v.items:
        tags = f"  tags: {', '.join(safe(t) for t in item.tags)}" if item.tags else ""
        out.print(f"  {item.position:>3}. {safe(item.record_id)}  {safe(item.title)}{tags}", highlight=False)
        for n in item.notes:
            out.print(f"       note ({safe(n.actor)}, {n.created_at}): {safe(n.text)}", highlight=False)


@app.command("note")
def note(record_id: Annotated[str, typer.Argument(help="The record.")],
         text: Annotated[str, typer.Argument(help="The note (working data: the record is not changed).")],
         matter: MatterOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Add a note to a record (a custody entry; never part of the record or its bundles)."""
    from archiver.matters.notes import add_note

    archive = _open(store)
    n = add_note(archive, record_id, text, matter=matter, actor=archive.default_actor())
    if as_json:
        _emit_json(n)
        return
    _out().print(f"note {n.note_id} on {safe(n.record_id)}" + (f" in {safe(n.matter)}" if n.matter else ""),
                 highlight=False)


@app.command("tag")
def tag(record_id: Annotated[str, typer.Argument(help="The record.")],
        tags: Annotated[list[str], typer.Argument(help="Tags to add (letters, digits, . : / + - _).")],
        matter: MatterOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Tag a record (a custody entry; never part of the record or its bundles)."""
    from archiver.matters.notes import add_tags

    archive = _open(store)
    ch = add_tags(archive, record_id, tags, matter=matter, actor=archive.default_actor())
    if as_json:
        _emit_json(ch)
        return
    where = f" in {safe(ch.matter)}" if ch.matter else ""
    _out().print(f"{safe(ch.record_id)}{where}: {', '.join(safe(t) for t in ch.tags)}"
                 + (f" (added {', '.join(safe(t) for t in ch.added)})" if ch.added else " (nothing new)"),
                 highlight=False)


@app.command("hold")
def hold(matter: Annotated[str, typer.Argument(help="The matter to put on legal hold.")],
         reason: Annotated[str, typer.Option("--reason", help="Why (quoted by every refusal the hold causes).")] = "",
         store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Put a matter on legal hold: its records cannot be unpublished, removed from a collection,
    garbage-collected or have a blob deleted (S3 with Object Lock: a server legal hold too)."""
    from archiver.matters.holds import place

    archive = _open(store)
    ch = place(archive, matter, reason, actor=archive.default_actor())
    if as_json:
        _emit_json(ch)
        return
    _hold_line(ch)


@app.command("release")
def release(matter: Annotated[str, typer.Argument(help="The matter whose hold to lift.")],
            store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Lift a matter's legal hold (kept in its history and in custody)."""
    from archiver.matters.holds import release as release_hold

    archive = _open(store)
    ch = release_hold(archive, matter, actor=archive.default_actor())
    if as_json:
        _emit_json(ch)
        return
    _hold_line(ch)


def _hold_line(ch: "HoldChange") -> None:
    if ch.action == "hold":
        state = "now on hold" if ch.changed else "already on hold"
    else:
        state = "hold released" if ch.changed else "was not on hold"
    reason = f": {safe(ch.hold.reason)}" if ch.hold else ""
    server = f"; S3 legal hold {'ON' if ch.action == 'hold' else 'OFF'} for {ch.objects} object(s)" \
        if ch.server_legal_hold else ""
    _out().print(f"{safe(ch.matter)}  {state}{reason} ({ch.records} record(s){server})", highlight=False)
