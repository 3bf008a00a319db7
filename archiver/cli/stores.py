"""Creating and maintaining a store: init, store info/migrate/rebuild-index/clean."""

import os
from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import (
    JsonOpt,
    StoreOpt,
    _emit_json,
    _open,
    _out,
    app,
    store_app,
)

if TYPE_CHECKING:
    pass


@app.command()
def init(store: StoreOpt = None,
         passphrase: Annotated[bool, typer.Option("--passphrase", help="Protect the key with a passphrase "
                                                  "(ARCHIVER_KEY_PASSPHRASE or a prompt).")] = False,
         operator: Annotated[str | None, typer.Option(help="Operator name for manifests.")] = None,
         organization: Annotated[str | None, typer.Option(help="Operator's organisation.")] = None,
         blobs: Annotated[str | None, typer.Option(help="Keep blobs in S3-compatible storage: s3://bucket/prefix "
                                                   "(credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).")]
         = None,
         s3_endpoint: Annotated[str | None, typer.Option(help="S3 endpoint URL (MinIO, SeaweedFS, Ceph...).")]
         = None,
         s3_region: Annotated[str, typer.Option(help="S3 region.")] = "us-east-1",
         object_lock: Annotated[str | None, typer.Option(help="Object Lock every blob: compliance or governance.")]
         = None,
         retain: Annotated[str | None, typer.Option(help="Retention for --object-lock: 7y, 90d, 2w or YYYY-MM-DD.")]
         = None,
         legal_hold: Annotated[bool, typer.Option("--legal-hold", help="Also put every blob under legal hold.")]
         = False,
         catalog: Annotated[str | None, typer.Option(help="Catalog in PostgreSQL: postgresql://user@host/db "
                                                     "(password via PGPASSWORD or ~/.pgpass).")] = None,
         as_json: JsonOpt = False) -> None:
    """Create the store and an Ed25519 signing key (optionally with S3 blobs and a PostgreSQL catalog)."""
    from archiver.api import Archive, Backends
    from archiver.cli._common import safe
    from archiver.errors import UsageError

    secret = None
    if passphrase:
        secret = os.environ.get("ARCHIVER_KEY_PASSPHRASE") or typer.prompt(
            "New key passphrase", hide_input=True, confirmation_prompt=True)
    backends = None
    if blobs or catalog:
        from store.s3 import S3Settings

        if catalog and not catalog.startswith(("postgresql://", "postgres://")):
            raise UsageError(f"--catalog must be a postgresql:// URL, not {catalog!r}")
        if blobs and not blobs.startswith("s3://"):
            raise UsageError(f"--blobs must be an s3:// URL, not {blobs!r}")
        s3 = S3Settings.from_url(blobs, endpoint=s3_endpoint, region=s3_region, object_lock=object_lock,
                                 retain=retain, legal_hold=legal_hold) if blobs else None
        backends = Backends(catalog=catalog, s3=s3)
    elif object_lock or retain or legal_hold or s3_endpoint:
        raise UsageError("--object-lock, --retain, --legal-hold and --s3-endpoint need --blobs s3://...")
    archive, key_id = Archive.init(store, passphrase=secret, operator=operator, organization=organization,
                                   backends=backends)
    if as_json:
        from archiver.reports import InitReport

        _emit_json(InitReport(store=str(archive.root), new_key_id=key_id, backends=archive.backends.describe()))
        return
    out = _out()
    out.print(f"Store ready at [bold]{archive.root}[/]: {safe(archive.backends.describe())}")
    if key_id:
        out.print(f"New signing key [bold]{key_id}[/] ({'passphrase-protected' if secret else 'no passphrase'}),"
                  f" private part in {archive.keys.private_path} (mode 0600)")
    else:
        out.print("The store already has a signing key; `archiver keys list` shows it.")


@store_app.command("rebuild-index")
def store_rebuild(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild the catalog from the manifests in the blob store."""
    report = _open(store).rebuild_index()
    if as_json:
        _emit_json(report)
        return
    from archiver.cli._common import safe

    out = _out()
    out.print(f"catalog rebuilt: {report.records} record(s), {report.addenda} addend(um/a)")
    if report.uncommitted:
        out.print(f"{len(report.uncommitted)} manifest(s) signed but never committed (no custody entry): "
                  "not records, not indexed")
    for item in report.newer:  # never dropped silently: a newer release wrote these
        out.print(f"[yellow]not indexed (format newer than this release):[/] {safe(item)}")


@store_app.command("info")
def store_info(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Where this store keeps its catalog, custody log and blobs, and how many records it holds."""
    info = _open(store).info()
    if as_json:
        _emit_json(info)
        return
    out = _out()
    for k, v in info.to_dict().items():
        if v not in (None, False) and k != "holds":
            out.print(f"{k:<18} {v}", highlight=False)
    from archiver.cli._common import safe

    out.print(f"{'holds':<18} {len(info.holds) or 'none'}", highlight=False)
    for h in info.holds:
        out.print(f"  matter {safe(h.matter)}: {safe(h.reason)} ({h.records} record(s); placed by {safe(h.placed_by)} "
                  f"at {h.placed_at})", highlight=False)


@store_app.command("gc")
def store_gc(dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")]
             = False,
             min_age: Annotated[float, typer.Option("--min-age", help="Spare blobs younger than this many hours "
                                                    "(a capture in progress may be about to name them).")] = 24.0,
             store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Delete blobs no record, addendum or custody entry names (left by killed captures) and stale temp
    files. Never a held record's blob: the refusal names the hold (exit 2)."""
    from archiver.gc import collect

    report = collect(_open(store), dry_run=dry_run, min_age_hours=min_age)
    if as_json:
        _emit_json(report)
        return
    out = _out()
    verb = "would delete" if dry_run else "deleted"
    shown = report.orphans if dry_run else report.deleted
    out.print(f"{report.blobs} blob(s), {report.referenced} referenced; {verb} {len(shown)} orphan(s)"
              + ("" if dry_run else f" ({report.bytes_freed} bytes) and {report.temps_removed} temp file(s)")
              + (f"; {report.young} younger than {report.min_age_hours:g} h spared" if report.young else ""),
              highlight=False)
    for sha in shown:
        out.print(f"  sha256:{sha}", highlight=False)


@store_app.command("migrate")
def store_migrate(to: Annotated[str | None, typer.Option(
                      "--to", help="Move the catalog into PostgreSQL: postgresql://user@host/db (an empty database).")]
                  = None,
                  store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Apply the catalog's pending schema migrations and list them; with --to, copy this store's SQLite
    catalog and custody log into PostgreSQL and switch the store to it."""
    from archiver.cli._common import safe
    from archiver.migrate import apply_migrations, migrate_catalog

    if to is None:
        schema = apply_migrations(_open(store))
        if as_json:
            _emit_json(schema)
            return
        out = _out()
        out.print(f"catalog {safe(schema.catalog)}: " + (f"applied {len(schema.applied)} migration(s)"
                                                          if schema.applied else "up to date"), highlight=False)
        now = {(m.subsystem, m.version): m for m in schema.applied}
        for m in schema.migrations:
            done = now.get((m.subsystem, m.version))
            state = ("pending" if m.applied_at is None else f"applied {m.applied_at}" if done is None
                     else "applied now" + (", baseline of a store made before migrations" if done.baseline else ""))
            out.print(f"  {m.subsystem:<8} {m.version:>3}  {safe(m.name)}  ({state})", highlight=False)
        return
    report = migrate_catalog(_open(store), to)
    if as_json:
        _emit_json(report)
        return
    out = _out()
    out.print(f"catalog moved to {report.target}: " + ", ".join(f"{n} {t}" for t, n in report.rows.items() if n)
              + f"; custody chain of {report.custody_entries} entries intact")


@store_app.command("clean")
def store_clean(store: StoreOpt = None) -> None:
    """Remove temp files (older than an hour) left behind by killed captures."""
    n = _open(store).blobs.clean_temps()
    _out().print(f"removed {n} stale temp file(s)")
