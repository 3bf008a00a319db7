"""Provisions: pinned clauses re-found on every watch run (``archiver.provisions``).

Exit codes: 0 ok; 1 the quote does not occur in the record's main-text (as ``cite --quote``: the error
names the closest sentence); 2 bad input (a label over 200 characters, a malformed or unknown
provision ID, a record without main-text).
"""

from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import _APP_OPTS, JsonOpt, StoreOpt, _emit_json, _open, _out, app, safe

if TYPE_CHECKING:  # imported by the command that uses it: every command imports this module at start-up
    from archiver.provisions import Provision, ProvisionReport

provision_app = typer.Typer(**_APP_OPTS, help="Provisions: pin a clause of a watched document; each watch run "
                                             "re-finds it (unchanged, changed, moved, removed).")
app.add_typer(provision_app, name="provision")

PidArg = Annotated[str, typer.Argument(help="Provision ID (P-XXXX-XXXX).")]


def _line(p: "Provision") -> None:
    label = f"  {safe(p.label)}" if p.label else ""
    state = p.status if p.active else f"{p.status}, no longer tracked"
    _out().print(f"{safe(p.provision_id)}  {state:<9}  {safe(p.entity or '-')} · {safe(p.document or '-')} · "
                 f"§ {safe(p.section or '(preamble)')}{label}", highlight=False)


def _show(r: "ProvisionReport") -> None:
    p, out = r.provision, _out()
    out.print(f"Provision {safe(p.provision_id)}" + (f": {safe(p.label)}" if p.label else ""), highlight=False)
    rows = [("Entity", p.entity or "-"), ("Document", p.document or "-"), ("URL", p.url),
            ("Section", p.section or "(before the first heading)"), ("Status", p.status),
            ("First tracked", p.first_tracked), ("Last verified", p.last_verified),
            ("Current record", p.record_id), ("SHA-256", p.sha256)]
    if not p.active:
        rows.append(("Untracked", p.untracked_at or ""))
    if r.document_versions > 1:
        rows.append(("Document", f"has changed before ({r.document_versions} versions)"))
    for name, value in rows:
        out.print(f"  {name + ':':<16}{safe(value)}", highlight=False)
    out.print(f"\n  “{safe(p.text)}”\n", highlight=False)
    for v in r.versions:
        out.print(f"Version {v.number}  {safe(v.first_seen)} → {safe(v.last_seen)}  records {safe(v.record_id)}"
                  f"{'' if v.last_record_id == v.record_id else ' … ' + safe(v.last_record_id)}", highlight=False)
        out.print(f"  sha256 {v.sha256}  § {safe(v.section or '(preamble)')}", highlight=False)
        out.print(f"  “{safe(v.text)}”", highlight=False)
        for e in v.edits:
            out.print(f"  {e.op}: " + (f"[red]-{safe(e.removed)}[/] " if e.removed else "")
                      + (f"[green]+{safe(e.added)}[/]" if e.added else ""), highlight=False)
    out.print("\nObservations:", highlight=False)
    for c in r.checks:
        extra = f" (similarity {c.similarity:.2f})" if c.status == "changed" else ""
        out.print(f"  {safe(c.captured_at)}  {safe(c.record_id)}  {c.status}{extra}"
                  + (f"  § {safe(c.section)}" if c.section and c.status in ("moved", "changed") else ""),
                  highlight=False)


@provision_app.command("add")
def add(record_id: Annotated[str, typer.Argument(help="The record holding the clause.")],
        quote: Annotated[str, typer.Option("--quote", "-q", help="The clause's exact text (whitespace and quote "
                                           "marks may differ).")],
        label: Annotated[str | None, typer.Option("--label", help="A short name (one line, at most 200 "
                                                  "characters).")] = None,
        store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Pin a clause of a record's main-text as a provision (a `provision-add` custody entry)."""
    archive = _open(store)
    p = archive.provisions.add(record_id, quote, label=label, actor=archive.default_actor())
    if as_json:
        _emit_json(p)
        return
    _out().print(f"pinned {safe(p.provision_id)} in {safe(p.record_id)} § {safe(p.section or '(preamble)')}"
                 f"  sha256 {p.sha256}", highlight=False)


@provision_app.command("list")
def list_(entity: Annotated[str | None, typer.Option("--entity", help="Only this entity's.")] = None,
          url: Annotated[str | None, typer.Option("--url", help="Only this document URL's.")] = None,
          store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The tracked provisions, oldest first, with their latest status."""
    archive = _open(store)
    found = archive.provisions.list(entity=entity, url=url)
    if as_json:
        _emit_json(found)
        return
    for p in found:
        _line(p)
    if not found:
        _out().print("[dim]no provisions: `archiver provision add RECORD_ID --quote …`[/]")


@provision_app.command("show")
def show(provision_id: PidArg, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every version of the clause text with the record holding it, and every observation."""
    archive = _open(store)
    r = archive.provisions.show(provision_id)
    if as_json:
        _emit_json(r)
        return
    _show(r)


@provision_app.command("remove")
def remove(provision_id: PidArg, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Stop tracking a provision (its history stays; a `provision-remove` custody entry)."""
    archive = _open(store)
    p = archive.provisions.remove(provision_id, actor=archive.default_actor())
    if as_json:
        _emit_json(p)
        return
    _out().print(f"{safe(p.provision_id)} is no longer tracked", highlight=False)
