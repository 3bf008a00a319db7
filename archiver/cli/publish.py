"""Publishing: make records public at their permalink, or private again (``archiver.publication``)."""

from typing import Annotated

import typer

from archiver.cli._common import JsonOpt, StoreOpt, _emit_json, _open, _out, _passphrase_source, app, safe
from archiver.publication import PublicationReport


def _render(reports: list[PublicationReport]) -> None:
    out = _out()
    for r in reports:
        state = "public" if r.public else "private"
        what = f"now {state}" if r.changed else f"already {state}"
        link = f"  {safe(r.permalink)}" if r.permalink and r.public else ""
        out.print(f"{safe(r.record_id)}  {what}{link}", highlight=False)
    if any(r.public for r in reports) and not any(r.permalink for r in reports):
        out.print("[dim]no permalink yet: `archiver config set web.public_url https://…` names the public base[/]")


@app.command()
def publish(record_ids: Annotated[list[str], typer.Argument(help="Records to make public.")],
            store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Make records public: anyone may open them at <web.public_url>/r/<ID> (a signed addendum and a
    custody entry naming you)."""
    archive = _open(store)
    reports = archive.publications.publish(record_ids, actor=archive.default_actor(), passphrase=_passphrase_source())
    if as_json:
        _emit_json(reports)
        return
    _render(reports)


@app.command()
def unpublish(record_ids: Annotated[list[str], typer.Argument(help="Records to make private again.")],
              reason: Annotated[str, typer.Option("--reason", help="Why (signed into the record's history; "
                                                                   "one line).")],
              store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Make records private again: their permalink then answers like an unknown ID. The record keeps
    the trace of having been public (a signed addendum with the reason)."""
    archive = _open(store)
    reports = archive.publications.unpublish(record_ids, reason=reason, actor=archive.default_actor(),
                                             passphrase=_passphrase_source())
    if as_json:
        _emit_json(reports)
        return
    _render(reports)
