"""Collections: named, ordered lists of records with a public page and one bundle (``archiver.collections``)."""

from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import _APP_OPTS, JsonOpt, StoreOpt, _emit_json, _open, _out, _passphrase_source, app, safe

if TYPE_CHECKING:  # imported by the command that uses it: every command imports this module at start-up
    from archiver.collections import Collection, CollectionChange

collection_app = typer.Typer(**_APP_OPTS, help="Collections: ordered lists of records with one public page "
                                              "(/c/NAME) and one bundle.")
app.add_typer(collection_app, name="collection")

NameArg = Annotated[str, typer.Argument(help="The collection's name: a-z 0-9 . _ - (part of its public URL).")]


def _show(c: "Collection") -> None:
    out = _out()
    state = "public" if c.public else "private"
    out.print(f"{safe(c.name)}  {state}  {len(c.record_ids)} record(s)  {safe(c.title)}", highlight=False)


def _change(ch: "CollectionChange") -> None:
    out = _out()
    if ch.action == "add":
        for rid in ch.added:
            out.print(f"{safe(ch.name)}  + {safe(rid)}", highlight=False)
        for rid in ch.already:
            out.print(f"{safe(ch.name)}  = {safe(rid)} (already in it)", highlight=False)
    else:
        state = "public" if ch.action == "publish" else "private"
        out.print(f"{safe(ch.name)}  {'now' if ch.changed else 'already'} {state}", highlight=False)
    if ch.bundle_sha256:
        out.print(f"[dim]bundle of its public records: sha256 {ch.bundle_sha256}[/]")


@collection_app.command("create")
def create(name: NameArg, title: Annotated[str, typer.Option("--title", help="Its title (one line).")] = "",
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Create an empty, private collection."""
    archive = _open(store)
    c = archive.collections.create(name, title=title, actor=archive.default_actor())
    if as_json:
        _emit_json(c)
        return
    _show(c)


@collection_app.command("add")
def add(name: NameArg, record_ids: Annotated[list[str], typer.Argument(help="Records to append, in order.")],
        store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Append records in the order given (one already in it keeps its place)."""
    archive = _open(store)
    ch = archive.collections.add(name, record_ids, actor=archive.default_actor(), passphrase=_passphrase_source())
    if as_json:
        _emit_json(ch)
        return
    _change(ch)


@collection_app.command("remove")
def remove(name: NameArg, record_ids: Annotated[list[str], typer.Argument(help="Records to take out.")],
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Take records out of the collection (refused for a record under a legal hold, naming the hold)."""
    archive = _open(store)
    ch = archive.collections.remove(name, record_ids, actor=archive.default_actor())
    if as_json:
        _emit_json(ch)
        return
    for rid in ch.removed:
        _out().print(f"{safe(ch.name)}  - {safe(rid)}", highlight=False)
    for rid in ch.absent:
        _out().print(f"{safe(ch.name)}  = {safe(rid)} (was not in it)", highlight=False)


@collection_app.command("publish")
def publish(name: NameArg, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Publish the collection at /c/NAME: it lists only its records that are public themselves, and
    makes the bundle of them (an export, logged)."""
    archive = _open(store)
    ch = archive.collections.publish(name, actor=archive.default_actor(), passphrase=_passphrase_source())
    if as_json:
        _emit_json(ch)
        return
    _change(ch)


@collection_app.command("unpublish")
def unpublish(name: NameArg, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Make the collection private again: /c/NAME then answers like an unknown name."""
    archive = _open(store)
    ch = archive.collections.unpublish(name, actor=archive.default_actor())
    if as_json:
        _emit_json(ch)
        return
    _change(ch)


@collection_app.command("list")
def list_(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every collection, public or private."""
    archive = _open(store)
    found = archive.collections.list()
    if as_json:
        _emit_json(found)
        return
    for c in found:
        _show(c)
    if not found:
        _out().print("[dim]no collections yet: `archiver collection create NAME --title …`[/]")


@collection_app.command("show")
def show(name: NameArg, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """A collection and its records in order (each one's own public or private state)."""
    archive = _open(store)
    c = archive.collections.get(name)
    if as_json:
        _emit_json(c)
        return
    _show(c)
    public = archive.publications.public_ids(list(c.record_ids))
    for i, rid in enumerate(c.record_ids, 1):
        _out().print(f"  {i:>3}. {safe(rid)}  {'public' if rid in public else 'private (not listed on its page)'}",
                     highlight=False)
