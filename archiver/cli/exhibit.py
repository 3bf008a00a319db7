"""Exhibits and productions: `archiver exhibit` (signed, Bates-stamped PDFs) and `archiver produce`."""

from pathlib import Path
from typing import Annotated, Any

import typer

from archiver.cli._common import JsonOpt, StoreOpt, _emit_json, _open, _out, _passphrase_source, app, safe


def _asked_once() -> Any:
    """The key's passphrase, asked at most once for all the signing one command does."""
    source = _passphrase_source()
    memo: list[str | None] = []

    def once() -> str | None:
        if not memo:
            memo.append(source())
        return memo[0]
    return once


@app.command()
def exhibit(record_ids: Annotated[list[str], typer.Argument(help="Records, in exhibit order.")],
            matter: Annotated[str, typer.Option("--matter", help="The matter the records belong to.")],
            output: Annotated[Path, typer.Option("-o", "--output", help="Directory to write the PDFs into.")],
            label: Annotated[str | None, typer.Option("--label", help="The first exhibit's label "
                                                      "('Exhibit A'; the next ones count on).")] = None,
            bates_prefix: Annotated[str | None, typer.Option("--bates-prefix", help="Bates prefix (A-Z 0-9 . _ -; "
                                                             "default: from the matter's name).")] = None,
            bates_start: Annotated[int | None, typer.Option("--bates-start", help="First Bates number (default: "
                                                            "after the matter's last one of this prefix).")] = None,
            cert: Annotated[Path | None, typer.Option("--cert", help="Sign with this certificate (PEM, chain "
                                                      "after the leaf) instead of the store's.")] = None,
            key: Annotated[Path | None, typer.Option("--key", help="The private key of --cert (PEM).")] = None,
            store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """One signed (PAdES + RFC 3161 document timestamp), Bates-stamped exhibit PDF per record."""
    from archiver.errors import UsageError
    from archiver.exhibits import make_set
    from archiver.exhibits.signing import provided_material

    if (cert is None) != (key is None):
        raise UsageError("--cert and --key go together")
    archive = _open(store)
    material = provided_material(cert, key, _passphrase_source()) if cert and key else None
    made = make_set(archive, record_ids, matter=matter, out_dir=output, actor=archive.default_actor(),
                    passphrase=_asked_once(), label=label, bates_prefix=bates_prefix,
                    bates_start=bates_start, material=material)
    if as_json:
        _emit_json(made)
        return
    out = _out()
    for e in made.exhibits:
        out.print(f"{safe(e.label)}  {safe(e.record_id)}  {e.bates_first}–{e.bates_last}  {e.pages} page(s)  "
                  f"{safe(e.file)}", highlight=False)
        if e.note:
            out.print(f"  [yellow]{safe(e.note)}[/]", highlight=False)
    out.print(f"[dim]signed by {safe(made.signer)}; document timestamp from {safe(made.tsa_url)}[/]",
              highlight=False)


@app.command()
def produce(matter: Annotated[str, typer.Argument(help="The matter whose exhibits are produced.")],
            out_dir: Annotated[Path, typer.Argument(help="Directory to create (must not exist).")],
            fmt: Annotated[str, typer.Option("--format", "-f", help="loadfile, bagit or csv.")] = "loadfile",
            store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """A production of the matter's exhibits: a load file (DAT/OPT), a BagIt bag or a CSV index."""
    from archiver.exhibits.produce import produce as run

    archive = _open(store)
    made = run(archive, matter, out_dir, fmt=fmt, actor=archive.default_actor(), passphrase=_asked_once())
    if as_json:
        _emit_json(made)
        return
    _out().print(f"{safe(made.format)} production of matter {safe(made.matter)}: {made.exhibits} exhibit(s), "
                 f"{made.files} file(s), {made.bytes:,} bytes in {safe(made.out_dir)}", highlight=False)
