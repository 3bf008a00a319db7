"""Publishing: make records public at their permalink, or private again (``archiver.publication``)."""

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import Exit, JsonOpt, StoreOpt, _emit_json, _open, _out, _passphrase_source, app, safe
from archiver.errors import UsageError

if TYPE_CHECKING:  # imported by the command that uses it: every command imports this module at start-up
    from archiver.publication import PublicationReport


def _static(out: Path, record_ids: list[str], *, all_public: bool, force: bool, store: Path | None,
            as_json: bool) -> None:
    """Checked here (one line, exit 2, nothing written), then written by the web front-end's static
    writer in a process of its own (the CLI never imports the web app; ``serve`` works the same way)."""
    from archiver.extras import require

    if all_public == bool(record_ids):
        raise UsageError("name the records to write, or --all-public (not both)",
                         hint="archiver publish --static OUT --all-public")
    require("web", "fastapi")
    archive = _open(store)  # a missing store is reported here
    from archiver.publication import check_static_out

    check_static_out(out, force=force, store_root=archive.root)
    args = [sys.executable, "-m", "archiver.web.static_site", "--store", str(archive.root),
            *(["--force"] if force else []), *(["--all-public"] if all_public else []),
            *(["--json"] if as_json else []), "--", str(out), *record_ids]
    sys.stdout.flush()
    code = subprocess.run(args, check=False).returncode  # our own module; the arguments are a list
    if code:
        raise Exit(code)


def _render(reports: "list[PublicationReport]") -> None:
    out = _out()
    for r in reports:
        state = "public" if r.public else "private"
        what = f"now {state}" if r.changed else f"already {state}"
        link = f"  {safe(r.permalink)}" if r.permalink and r.public else ""
        out.print(f"{safe(r.record_id)}  {what}{link}", highlight=False)
        if r.names_private_predecessor:
            out.print(f"  [yellow]note:[/] its signed manifest names the record before it, "
                      f"{safe(r.names_private_predecessor)}, which is private: that ID is readable in the public "
                      "bundle (a signature cannot be redacted)", highlight=False)
    if any(r.public for r in reports) and not any(r.permalink for r in reports):
        out.print("[dim]no permalink yet: `archiver config set web.public_url https://…` names the public base[/]")


@app.command()
def publish(record_ids: Annotated[list[str] | None, typer.Argument(help="Records to make public (with --static: "
                                                                       "the public records to write).")] = None,
            static: Annotated[Path | None, typer.Option("--static", help="Write the public side as static files "
                                                        "into this new or empty directory instead (pages, JSON, "
                                                        "bundles, collections, TimeMaps, index.html).")] = None,
            all_public: Annotated[bool, typer.Option("--all-public", help="With --static: every public "
                                                     "record.")] = False,
            force: Annotated[bool, typer.Option("--force", help="With --static: replace a non-empty "
                                                "directory whole.")] = False,
            store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Make records public: anyone may open them at <web.public_url>/r/<ID> (a signed addendum and a
    custody entry naming you). With --static OUT, write the public side as files for any static host."""
    if static is not None:
        _static(static, record_ids or [], all_public=all_public, force=force, store=store, as_json=as_json)
        return
    if all_public or force:
        raise UsageError("--all-public and --force go with --static OUT")
    archive = _open(store)
    reports = archive.publications.publish(record_ids or [], actor=archive.default_actor(),
                                           passphrase=_passphrase_source())
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
