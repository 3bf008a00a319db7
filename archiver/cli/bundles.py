"""WACZ bundles: export and import."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import (
    JsonOpt,
    StoreOpt,
    _emit_json,
    _open,
    _out,
    _passphrase_source,
    app,
    safe,
)

if TYPE_CHECKING:
    pass


@app.command("export")
def export_cmd(record_ids: Annotated[list[str], typer.Argument(help="Record IDs to put in the bundle.")],
               output: Annotated[Path, typer.Option("-o", "--output", help="The .wacz file to write.")],
               store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Export records as a self-verifying WACZ bundle (deterministic bytes)."""
    archive = _open(store)
    result = archive.bundles.export(record_ids, output, passphrase=_passphrase_source(),
                                    actor=archive.default_actor())
    if as_json:
        from archiver.reports import ExportReport

        _emit_json(ExportReport(path=result.path, records=result.records, bytes=result.size, sha256=result.sha256,
                                datapackage_hash=result.datapackage_hash, signer=result.signer))
        return
    _out().print(f"wrote {safe(result.path)} ({result.size:,} bytes, sha256:{result.sha256}) with "
                 f"{len(result.records)} record(s); signed by bundle key {safe(result.signer)}")


@app.command("import")
def import_cmd(path: Annotated[Path, typer.Argument(help="A .wacz bundle exported by archiver.")],
               force: Annotated[bool, typer.Option("--force", help="Import a bundle that is intact but not "
                                                   "trusted (a key or TSA you do not trust; marked in the "
                                                   "custody log). Never a tampered or incomplete one.")] = False,
               trust_key: Annotated[list[str] | None, typer.Option("--trust-key", help="Trust this signer "
                                                                   "fingerprint (repeatable).")] = None,
               trust_log_key: Annotated[list[str] | None, typer.Option("--trust-log-key", help="Trust this "
                                                                       "transparency log's verifier key (vkey) from "
                                                                       "now on (repeatable).")] = None,
               store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Verify a bundle, then add its records to this store (blobs are never duplicated)."""
    from archiver.errors import UsageError

    if not path.is_file():
        raise UsageError(f"no such bundle file: {path}")
    archive = _open(store)
    reports, imported = archive.bundles.import_(path, archive.bundles.trust(trust_key or [],
                                                                            trust_log_keys=trust_log_key or []),
                                                force=force, actor=archive.default_actor())
    if as_json:
        from archiver.reports import ImportReport

        _emit_json(ImportReport(bundle=str(path), imported=tuple(imported), verified=all(r.ok for r in reports)))
        return
    skipped = len(reports) - 1 - len(imported)
    _out().print(f"imported {len(imported)} record(s) from {safe(path)}: {safe(', '.join(imported) or '-')}"
                 + (f"; {skipped} already present" if skipped else ""))
