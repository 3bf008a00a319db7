"""The ``archiver`` command: parse, call the API, render, map errors to exit codes. Nothing else.

Exit codes: 0 ok, 1 verification failed, 2 usage/bad input, 3 network/remote failure, 4 store error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from archiver.api import Archive
    from archiver.records import StampResult, Verification

# Plain click help (no rich import) keeps `archiver --help` fast; our own output still uses rich.
_APP_OPTS: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": None, "pretty_exceptions_enable": False}
app = typer.Typer(**_APP_OPTS, add_completion=False,
                  help="Capture web documents as signed, verifiable evidence records.")
keys_app = typer.Typer(**_APP_OPTS, help="Signing keys and the keyring of trusted signers.")
config_app = typer.Typer(**_APP_OPTS, help="Settings kept in the store.")
store_app = typer.Typer(**_APP_OPTS, help="Store maintenance.")
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")
app.add_typer(store_app, name="store")
watch_app = typer.Typer(**_APP_OPTS, help="Watch documents: re-capture on an interval, detect changes.")
app.add_typer(watch_app, name="watch")

StoreOpt = Annotated[Path | None, typer.Option("--store", envvar="ARCHIVER_HOME",
                                               help="Store directory (default: $ARCHIVER_HOME or the data dir).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _out() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _open(store: Path | None) -> Archive:
    from archiver.api import Archive

    return Archive.open(store)


def _passphrase_source() -> Any:
    def source() -> str | None:
        env = os.environ.get("ARCHIVER_KEY_PASSPHRASE")
        if env:
            return env
        if sys.stdin.isatty():
            return str(typer.prompt("Signing key passphrase", hide_input=True))
        return None

    return source


def _status_style(status: str) -> str:
    return {"PASS": "green", "FAIL": "bold red", "SKIPPED": "yellow"}.get(status, "")


# --------------------------------------------------------------------------------------------
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
    from rich.markup import escape

    from archiver.api import Archive, Backends
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
        _emit_json({"store": str(archive.root), "new_key_id": key_id, "backends": archive.backends.describe()})
        return
    out = _out()
    out.print(f"Store ready at [bold]{archive.root}[/]: {escape(archive.backends.describe())}")
    if key_id:
        out.print(f"New signing key [bold]{key_id}[/] ({'passphrase-protected' if secret else 'no passphrase'}),"
                  f" private part in {archive.keys.private_path} (mode 0600)")
    else:
        out.print("The store already has a signing key; `archiver keys list` shows it.")


@app.command()
def capture(url: Annotated[str | None, typer.Argument(help="URL to capture.")] = None,
            input_file: Annotated[Path | None, typer.Option("-i", "--input", help="File of URLs, one per line "
                                                            "(optional TAB entity TAB document).")] = None,
            jobs: Annotated[int, typer.Option("-j", "--jobs", help="Concurrent fetches for -i.")] = 4,
            entity: Annotated[str | None, typer.Option(help="Who publishes the document.")] = None,
            document: Annotated[str | None, typer.Option(help="Which document it is.")] = None,
            allow_private: Annotated[bool, typer.Option("--allow-private",
                                                        help="Allow private/loopback targets.")] = False,
            insecure: Annotated[bool, typer.Option("--insecure", help="Accept an unverifiable TLS certificate "
                                                   "(recorded in the manifest).")] = False,
            allow_status: Annotated[bool, typer.Option("--allow-status",
                                                       help="Keep non-2xx responses as evidence.")] = False,
            wayback_mode: Annotated[str | None, typer.Option("--wayback", help="After capturing: `lookup` the "
                                                             "Wayback Machine, or `save` there too.")] = None,
            browser: Annotated[bool, typer.Option("--browser", help="Capture through headless Chromium: "
                                                  "screenshot, PDF, rendered DOM, every resource.")] = False,
            full_page: Annotated[bool, typer.Option("--full-page/--viewport-only", help="Screenshot the whole "
                                                    "page or the viewport.")] = True,
            viewport: Annotated[str, typer.Option("--viewport", help="Browser window, WIDTHxHEIGHT.")] = "1440x900",
            wait: Annotated[str, typer.Option("--wait", help="load, domcontentloaded, networkidle or "
                                              "commit.")] = "networkidle",
            strict: Annotated[bool, typer.Option("--strict", help="Fail instead of keeping a page that never "
                                                 "reached --wait.")] = False,
            page_timeout: Annotated[float, typer.Option("--page-timeout", help="Seconds for the page to reach "
                                                        "--wait.")] = 60.0,
            store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Capture a URL (or a batch with -i) into signed evidence records."""
    bopts = None
    if browser:
        from archiver.capture.browser import BrowserOptions, parse_viewport

        bopts = BrowserOptions(full_page=full_page, viewport=parse_viewport(viewport), wait=wait, strict=strict,
                               timeout=page_timeout)
    if wayback_mode not in (None, "lookup", "save"):
        from archiver.errors import UsageError

        raise UsageError(f"--wayback takes lookup or save, not {wayback_mode!r}")
    if (url is None) == (input_file is None):
        from archiver.errors import UsageError

        raise UsageError("give either a URL or -i FILE", hint="archiver capture https://example.org/privacy")
    archive = _open(store)
    if input_file is not None:
        _capture_batch(archive, input_file, jobs, allow_private, insecure, allow_status, as_json, wayback_mode,
                       bopts)
        return
    assert url is not None
    stamps: list[StampResult] = []
    m = archive.capture(url, entity=entity, document=document, allow_private=allow_private or None,
                        insecure=insecure, allow_status=allow_status, passphrase=_passphrase_source(),
                        on_stamp=stamps.append, browser=bopts)
    wb: dict[str, Any] | None = None
    if wayback_mode:
        wb = _wayback_inline(archive, m.record_id, wayback_mode == "save")
    if as_json:
        _emit_json({**m.to_dict(), "timestamps": [st.to_dict() for st in stamps],
                    **({"wayback": wb} if wb is not None else {})})
        return
    out = _out()
    out.print(f"Captured [bold]{m.record_id}[/]  {m.subject.final_url}  HTTP {m.http.status}")
    for a in m.artifacts:
        out.print(f"  {a.name:<10} sha256:{a.sha256}  {a.size:>12,} bytes")
    if m.capture.insecure:
        out.print("  [yellow]TLS certificate NOT verified (--insecure), recorded in the manifest[/]")
    b = m.capture.browser
    if b is not None:
        out.print(f"  browser    {b.name} {b.version}, {b.viewport}, waited for {b.wait}"
                  + (" [yellow](partial)[/]" if b.partial else "") + f", {b.resources} sub-resource(s)"
                  + (f", {len(b.blocked)} blocked" if b.blocked else ""))
    _render_stamps(stamps)
    if wb is not None:
        _render_wayback_line(wb)


def _wayback_inline(archive: Archive, record_id: str, save: bool) -> dict[str, Any]:
    """Wayback after a capture: a failure is reported as verdict "unknown", never fails the capture."""
    from archiver.errors import WaybackError

    try:
        add = archive.wayback(record_id, save=save, passphrase=_passphrase_source())
    except WaybackError as exc:
        return {"verdict": "unknown", "reason": exc.message}
    return _wayback_dict(add)


def _wayback_dict(add: Any) -> dict[str, Any]:
    d: dict[str, Any] = add.to_dict()["wayback"]
    return d


def _render_wayback_line(wb: dict[str, Any]) -> None:
    from rich.markup import escape

    colour = {"identical": "green", "differs": "yellow", "no-snapshot": "yellow"}.get(wb["verdict"], "red")
    where = wb.get("snapshot_url") or wb.get("reason") or wb.get("note", "")
    _out().print(f"  wayback    [{colour}]{wb['verdict']}[/]  {escape(str(where))}")


def _render_stamps(stamps: list[StampResult]) -> None:
    from rich.markup import escape

    out = _out()
    for st in stamps:
        n = len(st.record_ids)
        what = f"{n} records, one Merkle root {st.batch_root[:16]}…" if st.batch_root else "manifest"
        if st.ok:
            out.print(f"  timestamp  {escape(st.tsa_url)}  genTime {st.gen_time}  ({what})")
        else:
            out.print(f"  [yellow]unstamped[/]  {escape(st.tsa_url)}: {escape(st.error or '')}"
                      f"  (later: archiver timestamp --pending)")


def _capture_batch(archive: Archive, input_file: Path, jobs: int, allow_private: bool, insecure: bool,
                   allow_status: bool, as_json: bool, wayback_mode: str | None = None,
                   bopts: Any = None) -> None:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from archiver.api import parse_batch_lines
    from archiver.errors import UsageError
    from archiver.records import BatchItem

    try:
        items = parse_batch_lines(input_file.read_text("utf-8").splitlines())
    except OSError as exc:
        raise UsageError(f"cannot read {input_file}: {exc.strerror}") from exc
    if not items:
        raise UsageError(f"{input_file} holds no URLs")

    def line(item: BatchItem) -> None:
        if as_json:
            sys.stdout.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
            sys.stdout.flush()

    kwargs: dict[str, Any] = {"jobs": jobs, "allow_private": allow_private or None, "insecure": insecure,
                              "allow_status": allow_status, "passphrase": _passphrase_source(), "browser": bopts}
    stamps: list[StampResult] = []
    kwargs["on_stamp"] = stamps.append
    if as_json:
        results = archive.capture_batch(items, on_result=line, **kwargs)
        for st in stamps:
            sys.stdout.write(json.dumps({"timestamp": st.to_dict()}, ensure_ascii=False) + "\n")
    else:
        with Progress(TextColumn("capturing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=_err(), transient=True) as progress:
            task = progress.add_task("capture", total=len(items))
            results = archive.capture_batch(items, on_result=lambda _i: progress.advance(task), **kwargs)
        table = Table(title=f"Batch of {len(results)}")
        for col in ("URL", "record", "result", "s"):
            table.add_column(col)
        for r in results:
            result = "[green]ok[/]" if r.ok else f"[red]{escape(r.error or '')}[/]"
            table.add_row(escape(r.url), r.record_id or "-", result,
                          f"{r.seconds:.2f}")
        out = _out()
        out.print(table)
        ok = sum(1 for r in results if r.ok)
        out.print(f"{ok} captured, {len(results) - ok} failed")
        _render_stamps(stamps)
    for r in results:
        if wayback_mode and r.record_id:
            wb = _wayback_inline(archive, r.record_id, wayback_mode == "save")
            if as_json:
                sys.stdout.write(json.dumps({"record_id": r.record_id, "wayback": wb}, ensure_ascii=False) + "\n")
            else:
                _out().print(f"{r.record_id}", end="")
                _render_wayback_line(wb)
    failed = [r for r in results if not r.ok]
    if failed:
        raise Exit(max(r.exit_code for r in failed))


@app.command("list")
def list_(url: Annotated[str | None, typer.Option(help="Only this URL.")] = None,
          entity: Annotated[str | None, typer.Option(help="Only this entity.")] = None,
          limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
          store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List the records in the store."""
    from rich.markup import escape
    from rich.table import Table

    rows = _open(store).list(url=url, entity=entity, limit=limit)
    if as_json:
        _emit_json([r.to_dict() for r in rows])
        return
    table = Table()
    for col in ("Record", "Captured (UTC)", "Entity", "Document", "Status", "URL"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(escape(x) for x in (r.record_id, r.captured_at, r.entity or "", r.document or "",
                                             str(r.status), r.final_url)))
    _out().print(table)
    _out().print(f"{len(rows)} record(s)")


@app.command()
def show(record_id: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Show one record: its subject, HTTP facts, artifacts and signature."""
    archive = _open(store)
    m = archive.manifest(record_id)
    addenda = archive.addenda(m.record_id)
    if as_json:
        _emit_json({**m.to_dict(), "addenda": [{"sha256": sha, **(a.to_dict() if a else {"unreadable": True})}
                                               for sha, a in addenda]})
        return
    out = _out()
    s = m.subject
    rows = [("Record ID", m.record_id), ("Entity", s.entity or ""), ("Document", s.document or ""),
            ("Title", s.title or ""), ("Document date", s.document_date or ""),
            ("Captured (UTC)", m.captured_at), ("URL", s.url)]
    if s.final_url != s.url:
        rows.append(("Final URL", s.final_url))
    rows += [("HTTP", f"{m.http.status} {m.http.reason}".strip()), ("Server IP", m.http.server_ip or ""),
             ("Content-Type", m.http.content_type or ""), ("Last-Modified", m.http.last_modified or ""),
             ("ETag", m.http.etag or "")]
    if m.http.tls:
        rows.append(("TLS", f"{m.http.tls.version} {m.http.tls.cipher}"
                            + ("" if m.http.tls.verified else "  (NOT verified: --insecure)")))
    rows += [("SHA-256 (content)", m.digests.content_sha256), ("SHA-1 b32 (payload)", m.digests.payload_sha1_b32),
             ("Operator", " / ".join(x for x in (m.operator.name, m.operator.organization) if x)),
             ("Signed by", m.signature.key_id if m.signature else "UNSIGNED")]
    if m.previous:
        rows.append(("Previous", m.previous.record_id))
    width = max(len(k) for k, _ in rows)
    from rich.markup import escape

    for k, v in rows:
        out.print(f"[bold]{k:<{width}}[/]  {escape(v)}")
    out.print("[bold]Artifacts[/]")
    for a in m.artifacts:
        out.print(f"  {a.name:<10} sha256:{a.sha256}  {a.size:>12,} bytes  {a.media_type}")
    out.print("[bold]Capture steps[/]")
    for st in m.capture.steps:
        out.print(f"  {st.step:<8} {st.status:<7} {st.detail}")
    out.print("[bold]Trusted time[/]")
    stamped = [a.timestamp for _, a in addenda if a is not None and a.timestamp is not None]
    for t in stamped:
        batch = f"batch of {t.merkle.tree_size} (leaf {t.merkle.leaf_index + 1})" if t.merkle else "single"
        out.print(f"  genTime {t.gen_time}  {escape(t.tsa_name)}  {escape(t.tsa_url)}  {batch}"
                  + ("  deferred" if t.deferred else ""))
    if not stamped:
        out.print("  [yellow]unstamped[/]: no RFC 3161 token (archiver timestamp " + m.record_id + ")")
    out.print("[bold]Wayback Machine[/]")
    links = [a.wayback for _, a in addenda if a is not None and a.wayback is not None]
    for w in links:
        out.print(f"  {w.checked_at}  [bold]{w.verdict}[/]  {escape(w.snapshot_url or 'no snapshot')}"
                  + (f"  (snapshot {w.snapshot_timestamp})" if w.snapshot_timestamp else ""))
    if links and links[-1].verdict == "differs":
        out.print(f"  [dim]{escape(links[-1].note)}[/]")
    if not links:
        out.print(f"  not checked (archiver wayback {m.record_id})")


def _render_verification(report: Verification) -> None:
    out = _out()
    verdict = "[green]VERIFIED[/]" if report.ok else "[bold red]FAILED[/]"
    out.print(f"[bold]{report.subject}[/]  {verdict}")
    for c in report.checks:
        out.print(f"  [{_status_style(c.status.value)}]{c.status.value:<7}[/] {c.name:<20} {c.detail}")


@app.command()
def verify(record_id: Annotated[str | None, typer.Argument(help="Record ID.")] = None,
           all_: Annotated[bool, typer.Option("--all", help="Verify every record.")] = False,
           verbose: Annotated[bool, typer.Option("-v", "--verbose", help="With --all, list every check of "
                                                 "every record, not only of failed ones.")] = False,
           wayback: Annotated[bool, typer.Option("--wayback", help="Also ask the Wayback Machine whether the "
                                                 "recorded snapshot is still there.")] = False,
           trust_key: Annotated[list[str] | None, typer.Option("--trust-key", help="For a bundle: trust this "
                                                               "signer fingerprint (repeatable).")] = None,
           tsa_certs: Annotated[Path | None, typer.Option("--tsa-certs", help="For a bundle: TSA trust anchors "
                                                          "(PEM) instead of the store's tsa.certs.")] = None,
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Run every check on a record (or all, or an exported .wacz bundle); exit 1 if anything failed."""
    from archiver.errors import UsageError

    if (record_id is None) == (not all_):
        raise UsageError("give a record ID, a bundle file, or --all")
    from archiver.bundle import is_bundle_path

    if record_id is not None and is_bundle_path(record_id):
        _verify_bundle(Path(record_id), trust_key or [], tsa_certs, store, as_json)
        return
    archive = _open(store)
    reports = archive.verify_all(wayback=wayback) if all_ else [archive.verify(record_id or "", wayback=wayback)]
    if as_json:
        _emit_json(reports[0].to_dict() if not all_ else [r.to_dict() for r in reports])
    else:
        for r in reports:
            if all_ and r.ok and not verbose:
                passed = sum(1 for c in r.checks if c.status.value == "PASS")
                _out().print(f"[bold]{r.subject}[/]  [green]VERIFIED[/]  ({passed} checks passed)")
            else:
                _render_verification(r)
        if all_:
            bad = sum(1 for r in reports if not r.ok)
            _out().print(f"{len(reports) - bad} verified, {bad} failed")
    if not all(r.ok for r in reports):
        raise Exit(1)


@app.command()
def timestamp(record_ids: Annotated[list[str] | None, typer.Argument(help="Record IDs (several share one "
                                                                     "Merkle-batched token).")] = None,
              pending: Annotated[bool, typer.Option("--pending", help="Stamp every record that has no "
                                                    "token yet.")] = False,
              tsa: Annotated[list[str] | None, typer.Option("--tsa", help="TSA URL instead of tsa.urls "
                                                            "(repeatable).")] = None,
              store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Add RFC 3161 timestamp tokens to records (after a TSA outage, or from a second TSA)."""
    from archiver.errors import TimestampError, UsageError

    archive = _open(store)
    ids = list(record_ids or [])
    if pending:
        ids += archive.pending_timestamps()
    elif not ids:
        raise UsageError("give record IDs or --pending")
    if not ids:
        if as_json:
            _emit_json([])
        else:
            _out().print("nothing to stamp: every record has a timestamp token")
        return
    results = archive.timestamp(ids, passphrase=_passphrase_source(), tsa_urls=tsa or None)
    if as_json:
        _emit_json([r.to_dict() for r in results])
    else:
        _out().print(f"{len(set(ids))} record(s):")
        _render_stamps(results)
    if not any(r.ok for r in results):
        raise TimestampError("no timestamp authority issued a token: "
                             + "; ".join(f"{r.tsa_url}: {r.error}" for r in results))


@app.command("wayback")
def wayback_cmd(record_id: Annotated[str, typer.Argument(help="Record ID.")],
                save: Annotated[bool, typer.Option("--save", help="Ask Save Page Now to archive the URL too "
                                                   "(SPN2 with ARCHIVER_IA_ACCESS_KEY/SECRET_KEY, else legacy)."
                                                   )] = False,
                within: Annotated[str | None, typer.Option("--if-not-archived-within", help="With --save: skip "
                                                           "if archived this recently (e.g. 3d, 12h).")] = None,
                store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Find the Wayback snapshots nearest the capture, compare digests, and record the verdict."""
    from archiver.errors import WaybackError

    archive = _open(store)
    try:
        add = archive.wayback(record_id, save=save, if_not_archived_within=within, passphrase=_passphrase_source())
    except WaybackError as exc:
        if as_json:
            _emit_json({"record_id": record_id, "verdict": "unknown", "reason": exc.message})
        raise
    assert add.wayback is not None
    w = add.wayback
    if as_json:
        _emit_json({"record_id": add.record_id, **_wayback_dict(add)})
        return
    from rich.markup import escape

    out = _out()
    out.print(f"[bold]{add.record_id}[/]  Wayback verdict: [bold]{w.verdict}[/]")
    if w.snapshot_url:
        out.print(f"  snapshot   {escape(w.snapshot_url)}")
        out.print(f"  digest     Archive {w.archive_digest}  ours {w.our_digest}")
    if w.saved:
        out.print("  saved      Save Page Now archived the URL during this check")
    out.print(f"  note       {escape(w.note)}")


@app.command()
def cite(record_id: Annotated[str, typer.Argument(help="Record ID.")],
         style: Annotated[str, typer.Option("--style", "-s", help="record, markdown, bluebook, apa, chicago-note, "
                                            "chicago-bib, mla, csl-json, bibtex, ris.")] = "record",
         quote: Annotated[str | None, typer.Option("--quote", "-q", help="Pin an exact excerpt (whitespace and "
                                                   "quote marks may differ).")] = None,
         store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """A citation of a record for a filing, a report or a bibliography."""
    from archiver.cite import STYLES, citation_data, render
    from archiver.errors import UsageError

    if style not in STYLES:
        raise UsageError(f"unknown citation style {style!r}", hint="styles: " + ", ".join(STYLES))
    archive = _open(store)
    report = archive.verify(record_id, log=False)
    data = citation_data(archive, record_id, quote=quote, report=report)
    text = render(data, style)
    if not report.ok:
        _err().print(f"[bold red]WARNING[/]: record {data.record_id} does NOT verify "
                     f"({', '.join(c.name for c in report.failures)}); do not rely on this citation")
    if as_json:
        _emit_json({"record_id": data.record_id, "style": style, "verified": report.ok, "citation": text,
                    **({"quote": {"excerpt": data.quote.excerpt, "sha256": data.quote.sha256,
                                  "start": data.quote.start, "end": data.quote.end, "section": data.quote.section,
                                  "fragment": data.quote.fragment()}} if data.quote else {})})
    else:
        sys.stdout.write(text)


@app.command()
def certificate(record_ids: Annotated[list[str], typer.Argument(help="Record IDs (the exhibits).")],
                declarant: Annotated[str, typer.Option("--declarant", help="Who declares (a person).")],
                title: Annotated[str, typer.Option("--title", help="The declarant's title.")] = "",
                org: Annotated[str, typer.Option("--org", help="The declarant's organisation.")] = "",
                fmt: Annotated[str, typer.Option("--format", "-f", help="md, html or pdf.")] = "md",
                output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write "
                                                            "(required for pdf).")] = None,
                store: StoreOpt = None) -> None:
    """Certificate of authenticity (FRE 902(13)/(14)); refuses records that do not verify."""
    from archiver.cite import certificate as cert_mod
    from archiver.errors import UsageError

    if fmt not in ("md", "html", "pdf"):
        raise UsageError(f"unknown certificate format {fmt!r}", hint="md, html or pdf")
    if fmt == "pdf" and output is None:
        raise UsageError("a PDF certificate needs -o FILE")
    archive = _open(store)
    cert = cert_mod.build(archive, record_ids, declarant=declarant, title=title, organization=org)
    if output is None:
        sys.stdout.write(cert_mod.render(cert, fmt).decode("utf-8"))
        return
    size = cert_mod.write(cert, fmt, output)
    for p in cert.records:
        archive.custody.append("certificate", actor=declarant, record_id=p.manifest.record_id,
                               subject_sha256=p.manifest_sha256, detail={"format": fmt, "to": str(output)})
    _out().print(f"wrote {output} ({size:,} bytes): {len(cert.exhibits)} exhibit(s) from {len(cert.records)} "
                 "record(s); the § 1746 declaration awaits a signature")


def _optional_store(store: Path | None) -> Archive | None:
    from archiver.errors import StoreNotFoundError

    try:
        return _open(store)
    except StoreNotFoundError:
        return None  # verifying a bundle needs no store


def _verify_bundle(path: Path, trust_key: list[str], tsa_certs: Path | None, store: Path | None,
                   as_json: bool) -> None:
    from archiver.bundle import default_trust, verify_bundle
    from archiver.errors import UsageError

    if not path.is_file():
        raise UsageError(f"no such bundle file: {path}")
    trust = default_trust(_optional_store(store), trust_key, tsa_certs)
    reports = verify_bundle(path, trust)
    if as_json:
        _emit_json({"bundle": str(path), "ok": all(r.ok for r in reports), "reports": [r.to_dict() for r in reports]})
    else:
        for r in reports:
            _render_verification(r)
        bad = sum(1 for r in reports if not r.ok)
        _out().print(f"bundle {path}: {'VERIFIED' if not bad else 'FAILED'} ({len(reports) - 1} record(s))")
    if not all(r.ok for r in reports):
        raise Exit(1)


@app.command("export")
def export_cmd(record_ids: Annotated[list[str], typer.Argument(help="Record IDs to put in the bundle.")],
               output: Annotated[Path, typer.Option("-o", "--output", help="The .wacz file to write.")],
               store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Export records as a self-verifying WACZ bundle (deterministic bytes)."""
    from archiver.bundle import export

    result = export(_open(store), record_ids, output, passphrase=_passphrase_source())
    if as_json:
        _emit_json({"path": result.path, "records": list(result.records), "bytes": result.size,
                    "sha256": result.sha256, "datapackage_hash": result.datapackage_hash, "signer": result.signer})
        return
    _out().print(f"wrote {result.path} ({result.size:,} bytes, sha256:{result.sha256}) with "
                 f"{len(result.records)} record(s); signed by bundle key {result.signer}")


@app.command("import")
def import_cmd(path: Annotated[Path, typer.Argument(help="A .wacz bundle exported by archiver.")],
               force: Annotated[bool, typer.Option("--force", help="Import despite failed trust/timestamp "
                                                   "checks (marked in the custody log).")] = False,
               trust_key: Annotated[list[str] | None, typer.Option("--trust-key", help="Trust this signer "
                                                                   "fingerprint (repeatable).")] = None,
               store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Verify a bundle, then add its records to this store (blobs are never duplicated)."""
    from archiver.bundle import default_trust, import_bundle
    from archiver.errors import UsageError

    if not path.is_file():
        raise UsageError(f"no such bundle file: {path}")
    archive = _open(store)
    reports, imported = import_bundle(archive, path, default_trust(archive, trust_key or [], None), force=force)
    if as_json:
        _emit_json({"bundle": str(path), "imported": imported, "verified": all(r.ok for r in reports)})
        return
    skipped = len(reports) - 1 - len(imported)
    _out().print(f"imported {len(imported)} record(s) from {path}: {', '.join(imported) or '-'}"
                 + (f"; {skipped} already present" if skipped else ""))


@app.command()
def lookup(sha256: Annotated[str, typer.Option("--sha256", help="SHA-256 (hex or sha256:hex).")],
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Which record holds a file with this hash? Exit 1 when none does."""
    matches = _open(store).lookup(sha256)
    if as_json:
        _emit_json([m.to_dict() for m in matches])
    else:
        out = _out()
        for m in matches:
            out.print(f"{m.record_id}  {m.artifact:<10} {m.captured_at}  {m.url}")
        if not matches:
            out.print("no record holds that hash")
    if not matches:
        raise Exit(1)


@app.command("verify-file")
def verify_file(path: Path, sha256: Annotated[str | None, typer.Option("--sha256", help="Expected SHA-256.")] = None,
                store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Hash a loose file and say which records it matches (and whether it matches --sha256)."""
    from archiver.records import Digest

    actual, matches = _open(store).verify_file(path, sha256)
    expected_ok = None if sha256 is None else Digest.parse(sha256).hex == actual
    ok = bool(matches) if expected_ok is None else expected_ok
    if as_json:
        _emit_json({"file": str(path), "sha256": actual, "expected_match": expected_ok, "ok": ok,
                    "records": [m.to_dict() for m in matches]})
    else:
        out = _out()
        out.print(f"{path}  sha256:{actual}")
        if expected_ok is not None:
            out.print("  [green]matches the expected hash[/]" if expected_ok
                      else f"  [bold red]does NOT match the expected hash {sha256}[/]")
        for m in matches:
            out.print(f"  matches {m.record_id} artifact {m.artifact} ({m.url}, captured {m.captured_at})")
        if not matches:
            out.print("  matches no record in this store")
    if not ok:
        raise Exit(1)


@app.command()
def get(record_id: str, name: Annotated[str, typer.Argument(help="Artifact: warc, content, text, manifest, …")],
        output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")],
        store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Write an artifact out byte-exact (its hash is checked on the way)."""
    sha, size = _open(store).get(record_id, name, output)
    if as_json:
        _emit_json({"file": str(output), "sha256": sha, "size": size})
    else:
        _out().print(f"wrote {output} ({size:,} bytes, sha256:{sha})")


# ---- keys -------------------------------------------------------------------------------------
@keys_app.command("generate")
def keys_generate(replace: Annotated[bool, typer.Option("--replace", help="Retire the current key.")] = False,
                  passphrase: Annotated[bool, typer.Option("--passphrase", help="Protect it with a passphrase.")]
                  = False, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Create a new Ed25519 signing key (0600)."""
    secret = None
    if passphrase:
        secret = os.environ.get("ARCHIVER_KEY_PASSPHRASE") or typer.prompt(
            "New key passphrase", hide_input=True, confirmation_prompt=True)
    key_id = _open(store).generate_key(secret, replace=replace)
    if as_json:
        _emit_json({"key_id": key_id})
    else:
        _out().print(f"New signing key {key_id}")


@keys_app.command("list")
def keys_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The signing key and every trusted public key."""
    infos = _open(store).keys.list()
    if as_json:
        _emit_json([{"key_id": i.key_id, "trusted": i.trusted, "signing": i.signing, "encrypted": i.encrypted,
                     "path": i.path} for i in infos])
        return
    out = _out()
    for i in infos:
        flags = ", ".join(f for f, on in (("signing", i.signing), ("trusted", i.trusted),
                                          ("passphrase", i.encrypted)) if on)
        out.print(f"{i.key_id}  [{flags}]")


@keys_app.command("export-public")
def keys_export_public(output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
                       store: StoreOpt = None) -> None:
    """Print (or write) the signing key's public half as PEM."""
    from archiver.provenance.keys import public_pem
    from store.fsutil import atomic_write_bytes

    pem = public_pem(_open(store).keys.signing_public_key())
    if output:
        atomic_write_bytes(output, pem)
    else:
        sys.stdout.write(pem.decode("ascii"))


@keys_app.command("trust")
def keys_trust(pem_file: Path, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Add a public key (PEM) to the keyring of trusted signers."""
    from archiver.errors import UsageError

    try:
        data = pem_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {pem_file}: {exc.strerror}") from exc
    key_id = _open(store).keys.trust(data, source=str(pem_file))
    if as_json:
        _emit_json({"key_id": key_id, "trusted": True})
    else:
        _out().print(f"trusted {key_id}")


@keys_app.command("untrust")
def keys_untrust(key_id: str, store: StoreOpt = None) -> None:
    """Remove a public key from the keyring."""
    if not _open(store).keys.untrust(key_id):
        from archiver.errors import NotFoundError

        raise NotFoundError(f"{key_id} is not in the keyring", hint="see `archiver keys list`")
    _out().print(f"no longer trusted: {key_id}")


# ---- config -----------------------------------------------------------------------------------
@config_app.command("get")
def config_get(key: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    value = _open(store).config.get(key)
    if as_json:
        _emit_json({key: value})
    else:
        sys.stdout.write((" ".join(value) if isinstance(value, list) else str(value)) + "\n")


@config_app.command("set")
def config_set(key: str, value: Annotated[list[str], typer.Argument(help="Value (several for a list setting).")],
               store: StoreOpt = None) -> None:
    """Set a setting; list settings (tsa.urls) take several values."""
    from archiver.config import SETTINGS
    from archiver.errors import ConfigError

    setting = SETTINGS.get(key)
    if setting is not None and setting.type is not list and len(value) != 1:
        raise ConfigError(f"{key} takes one value, got {len(value)}")
    stored = _open(store).config.set(key, " ".join(value))
    _out().print(f"{key} = {stored!r}")


@config_app.command("unset")
def config_unset(key: str, store: StoreOpt = None) -> None:
    _open(store).config.unset(key)
    _out().print(f"{key} reset to its default")


@config_app.command("list")
def config_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    from archiver.config import SETTINGS

    items = _open(store).config.items()
    if as_json:
        _emit_json({k: v for k, v, _ in items})
        return
    out = _out()
    for k, v, is_default in items:
        out.print(f"{k:<28} {v!r:<30} {'(default) ' if is_default else ''}[dim]{SETTINGS[k].help}[/]")


# ---- queue ------------------------------------------------------------------------------------
@app.command()
def submit(urls: Annotated[list[str] | None, typer.Argument(help="URLs to enqueue.")] = None,
           input_file: Annotated[Path | None, typer.Option("-i", "--input", help="File of URLs, one per line "
                                                           "(optional TAB entity TAB document).")] = None,
           entity: Annotated[str | None, typer.Option(help="Who publishes the documents (URL arguments).")] = None,
           document: Annotated[str | None, typer.Option(help="Which document it is (URL arguments).")] = None,
           allow_private: Annotated[bool, typer.Option("--allow-private",
                                                       help="Allow private/loopback targets.")] = False,
           insecure: Annotated[bool, typer.Option("--insecure", help="Accept unverifiable TLS.")] = False,
           allow_status: Annotated[bool, typer.Option("--allow-status", help="Keep non-2xx responses.")] = False,
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Enqueue captures for `archiver worker` processes (needs a PostgreSQL catalog)."""
    from archiver.api import parse_batch_lines
    from archiver.errors import UsageError
    from archiver.queue import submit as do_submit

    items = [(u, entity, document) for u in urls or []]
    if input_file is not None:
        try:
            items += parse_batch_lines(input_file.read_text("utf-8").splitlines())
        except OSError as exc:
            raise UsageError(f"cannot read {input_file}: {exc.strerror}") from exc
    if not items:
        raise UsageError("nothing to submit: give URLs or -i FILE")
    result = do_submit(_open(store), items, allow_private=allow_private, insecure=insecure,
                       allow_status=allow_status)
    if as_json:
        _emit_json({"submitted": len(result.job_ids), "job_ids": list(result.job_ids)})
        return
    first, last = (result.job_ids[0], result.job_ids[-1]) if result.job_ids else (0, 0)
    _out().print(f"{len(result.job_ids)} capture job(s) queued (ids {first}–{last}); "
                 "run `archiver worker` to take them, `archiver status` to follow")


@app.command()
def worker(concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Captures run at once.")] = 4,
           until_empty: Annotated[bool, typer.Option("--until-empty", help="Exit once no job is waiting.")] = False,
           name: Annotated[str | None, typer.Option(help="Worker name in logs.")] = None,
           quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the start and stop lines.")] = False,
           store: StoreOpt = None) -> None:
    """Take capture jobs from the queue until stopped (Ctrl-C / SIGTERM finish running jobs first)."""
    import logging
    import socket

    from archiver.queue import Tally, run_worker

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from rich.markup import escape

    archive = _open(store)
    tally = Tally()
    label = name or f"{socket.gethostname()}:{os.getpid()}"
    err = _err()

    def done(url: str, record_id: str | None, error: str | None) -> None:
        tally(url, record_id, error)
        if not quiet:
            err.print(f"  {record_id}  {escape(url)}" if record_id else f"  [red]failed[/] {escape(url)}: "
                      f"{escape(error or '')}", highlight=False)

    err.print(f"worker {label}: taking capture jobs, concurrency {concurrency}")
    run_worker(archive, concurrency=concurrency, until_empty=until_empty, name=label, on_done=done)
    err.print(f"worker {label} stopped: {tally.ok} captured, {tally.failed} failed attempt(s)")


@app.command()
def requeue(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Put failed capture jobs back in the queue (once the site or the network is back)."""
    from archiver.queue import requeue_failed

    ids = requeue_failed(_open(store))
    if as_json:
        _emit_json({"requeued": len(ids), "job_ids": list(ids)})
        return
    _out().print(f"{len(ids)} failed job(s) queued again" if ids else "no failed jobs")


@app.command()
def status(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Queue depth, jobs running, done and failed, captures in the last minute, recent failures."""
    from rich.markup import escape

    from archiver.queue import status as queue_status

    st = queue_status(_open(store))
    if as_json:
        _emit_json(st.to_dict())
        return
    out = _out()
    out.print(f"queued {st.todo}   running {st.doing}   done {st.succeeded}   failed {st.failed}"
              f"   cancelled {st.cancelled}")
    out.print(f"workers alive {st.workers}   captures in the last minute {st.done_last_minute}"
              f"   records in the catalog {st.records}")
    for f in st.recent_failures:
        kind = "will retry" if f.retry else "final"
        out.print(f"  [red]job {f.job_id}[/] try {f.attempt} ({kind}) {escape(f.url)}: {escape(f.error)}")


# ---- store ------------------------------------------------------------------------------------
@store_app.command("rebuild-index")
def store_rebuild(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild the catalog from the manifests in the blob store."""
    n = _open(store).rebuild_index()
    if as_json:
        _emit_json({"records": n})
    else:
        _out().print(f"catalog rebuilt: {n} record(s)")


@store_app.command("info")
def store_info(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Where this store keeps its catalog, custody log and blobs, and how many records it holds."""
    archive = _open(store)
    b = archive.backends
    info = {"store": str(archive.root), "catalog": archive.catalog.backend,
            "catalog_location": archive.catalog.location,
            "custody": "catalog table custody" if b.catalog else str(archive.root / "custody.log"),
            "blobs": b.s3.url if b.s3 else str(archive.root / "objects"),
            "object_lock": b.s3.object_lock if b.s3 else None, "retain": b.s3.retain if b.s3 else None,
            "legal_hold": b.s3.legal_hold if b.s3 else False, "records": archive.catalog.count()}
    if as_json:
        _emit_json(info)
        return
    out = _out()
    for k, v in info.items():
        if v not in (None, False):
            out.print(f"{k:<18} {v}", highlight=False)


@store_app.command("migrate")
def store_migrate(to: Annotated[str, typer.Option("--to", help="postgresql://user@host/db (an empty database).")],
                  store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Copy this store's SQLite catalog and custody log into PostgreSQL and switch the store to it."""
    from archiver.api import migrate_catalog

    report = migrate_catalog(_open(store), to)
    if as_json:
        _emit_json({"target": report.target, "rows": report.rows, "custody_entries": report.custody_entries})
        return
    out = _out()
    out.print(f"catalog moved to {report.target}: " + ", ".join(f"{n} {t}" for t, n in report.rows.items() if n)
              + f"; custody chain of {report.custody_entries} entries intact")


@store_app.command("clean")
def store_clean(store: StoreOpt = None) -> None:
    """Remove temp files (older than an hour) left behind by killed captures."""
    n = _open(store).blobs.clean_temps()
    _out().print(f"removed {n} stale temp file(s)")


@app.command()
def demo(store: StoreOpt = None) -> None:
    """Offline walk-through against the bundled sample site."""
    from archiver.demo import run_demo

    code = run_demo(_out(), store)
    if code:
        raise Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    from archiver import __version__

    sys.stdout.write(f"archiver {__version__}\n")


def main(argv: list[str] | None = None) -> int:
    from archiver.errors import ArchiverError

    try:
        app(args=argv, standalone_mode=False)
    except Exit as e:
        return e.code
    except ArchiverError as exc:
        from rich.markup import escape

        _err().print(f"[bold red]error:[/] {escape(exc.diagnostics())}")
        return exc.exit_code
    except typer.Abort:
        _err().print("aborted")
        return 2
    except (typer.BadParameter, typer.Exit) as exc:
        if isinstance(exc, typer.Exit):
            return int(exc.exit_code)
        raise
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return 2
        raise
    return 0


# ---- watching documents over time ----------------------------------------------------------------
@watch_app.command("add")
def watch_add(url: str, every: Annotated[str, typer.Option("--every", help="Interval: 90s, 30m, 12h, 1d, 1w.")] = "1d",
              entity: Annotated[str | None, typer.Option(help="Who publishes the document.")] = None,
              document: Annotated[str | None, typer.Option(help="Which document it is.")] = None,
              allow_private: Annotated[bool, typer.Option("--allow-private", help="Allow a private target.")] = False,
              insecure: Annotated[bool, typer.Option("--insecure", help="Accept an unverifiable TLS "
                                                     "certificate.")] = False,
              store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Add a URL to the watch list."""
    from archiver.monitor import add_watch

    w = add_watch(_open(store), url, entity=entity, document=document, every=every, allow_private=allow_private,
                  insecure=insecure)
    if as_json:
        _emit_json(w.to_dict())
    else:
        _out().print(f"watching {w.url} every {every}")


@watch_app.command("remove")
def watch_remove(url: str, store: StoreOpt = None) -> None:
    """Stop watching a URL (its records stay)."""
    from archiver.errors import NotFoundError

    if not _open(store).catalog.remove_watch(url):
        raise NotFoundError(f"{url} is not watched")
    _out().print(f"no longer watching {url}")


@watch_app.command("list")
def watch_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The watch list with each URL's last run."""
    from rich.markup import escape
    from rich.table import Table

    from archiver.monitor import _now, list_watches

    watches = list_watches(_open(store))
    if as_json:
        _emit_json([w.to_dict() for w in watches])
        return
    table = Table(title=f"{len(watches)} watched")
    for col in ("URL", "every", "entity / document", "last run", "outcome", "due"):
        table.add_column(col)
    now = _now()
    for w in watches:
        table.add_row(escape(w.url), f"{w.interval_s}s", escape(" / ".join(x for x in (w.entity, w.document) if x)),
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
    """Re-capture watched URLs; exit 0 when nothing changed, 10 when something did (for cron)."""
    import time as _time

    archive = _open(store)
    changed_any = False
    while True:
        summary = _watch_once(archive, due or loop, jobs, notify_url, as_json)
        changed_any = changed_any or bool(summary.changed)
        if not loop:
            break
        from archiver.monitor import list_watches

        watches = list_watches(archive)
        pause = min([w.interval_s for w in watches] or [60])
        _err().print(f"next run in {pause} s (Ctrl-C to stop)")
        try:
            _time.sleep(max(1, pause))
        except KeyboardInterrupt:
            break
    if changed_any:
        raise Exit(10)


def _watch_once(archive: Archive, due: bool, jobs: int, notify_url: str | None, as_json: bool) -> Any:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from archiver.monitor import list_watches, notify, run_watches

    total = len(list_watches(archive))
    if as_json:
        summary = run_watches(archive, due_only=due, jobs=jobs, passphrase=_passphrase_source())
    else:
        with Progress(TextColumn("watch run"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=_err(), transient=True) as progress:
            task = progress.add_task("watch", total=total)
            summary = run_watches(archive, due_only=due, jobs=jobs, passphrase=_passphrase_source(),
                                  on_result=lambda _r: progress.advance(task))
    if notify_url and summary.results:
        import dataclasses

        summary = dataclasses.replace(summary, notified=notify(notify_url, summary))
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), ensure_ascii=False) + "\n")
        return summary
    out = _out()
    if summary.skipped:
        out.print(f"[yellow]skipped[/]: {summary.skipped}")
    for r in summary.results:
        colour = {"changed": "bold yellow", "new": "cyan", "unchanged": "green", "failed": "red"}[r.outcome]
        what = r.error or (("sections: " + "; ".join(r.sections)) if r.sections else "")
        out.print(f"[{colour}]{r.outcome:<9}[/] {escape(r.url)}  {r.record_id or '-'}"
                  + (f" (after {r.previous_record_id})" if r.previous_record_id else "")
                  + (f"  HTTP {r.status}" if r.status and r.status != 200 else "") + f"  {escape(what)}")
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
    from rich.markup import escape

    from archiver.monitor import clause_history, versions

    archive = _open(store)
    if clause:
        c = clause_history(archive, url, clause)
        if as_json:
            _emit_json(c.to_dict())
            return
        out = _out()
        out.print(f"[bold]{escape(c.heading)}[/]  {c.changes} change(s) over {c.months_monitored} month(s) "
                  f"monitored; first seen {c.first_seen}, last seen {c.last_seen}")
        for rid, when, sha in c.history:
            out.print(f"  {when}  {rid}  sha256:{sha[:16]}…")
        return
    vs = versions(archive, url)
    runs = archive.catalog.watch_runs(url)
    failed = [r for r in runs if r["outcome"] == "failed"]
    if as_json:
        _emit_json({"url": url, "versions": [v.to_dict() for v in vs], "changes": len(vs) - 1,
                    "failed_runs": [dict(r) for r in failed]})
        return
    out = _out()
    out.print(f"[bold]{escape(url)}[/]: {len(vs)} version(s), {len(vs) - 1} change(s)")
    for v in vs:
        out.print(f"  v{v.number}  first seen {v.first_seen}  last verified {v.last_seen}  "
                  f"{len(v.record_ids)} capture(s)  HTTP {v.status}  {', '.join(v.record_ids)}")
    for r in failed[-5:]:
        out.print(f"  [red]failed run[/] {r['time']}: {escape(r['detail'])}")


@app.command()
def diff(record_a: str, record_b: str,
         fmt: Annotated[str, typer.Option("--format", "-f", help="text, html or json.")] = "text",
         sections: Annotated[bool, typer.Option("--sections", help="Compare section by section.")] = False,
         output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here instead of "
                                                     "stdout.")] = None,
         store: StoreOpt = None) -> None:
    """What changed between two records' normalised text."""
    from archiver.errors import UsageError
    from archiver.monitor import diff_records
    from archiver.textdiff import html_diff, line_diff, word_ops

    if fmt not in ("text", "html", "json"):
        raise UsageError(f"unknown diff format {fmt!r}", hint="text, html or json")
    archive = _open(store)
    a, b = archive.resolve(record_a), archive.resolve(record_b)
    if a.url != b.url:
        _err().print(f"[yellow]warning[/]: {a.record_id} and {b.record_id} are captures of different URLs")
    ta = archive.blobs.read_bytes(archive.artifact_sha256(a.record_id, "text")).decode("utf-8")
    tb = archive.blobs.read_bytes(archive.artifact_sha256(b.record_id, "text")).decode("utf-8")
    changes = diff_records(archive, a.record_id, b.record_id) if sections or fmt != "text" else None
    if fmt == "json":
        text = json.dumps({"a": a.record_id, "b": b.record_id, "identical": ta == tb,
                           "sections": [c.to_dict() for c in changes or []], "words": word_ops(ta, tb)},
                          indent=2, ensure_ascii=False) + "\n"
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
    from rich.markup import escape
    from rich.table import Table

    from archiver.monitor import clauses as clause_list

    items = clause_list(_open(store), record_id)
    if as_json:
        _emit_json([c.to_dict() for c in items])
        return
    table = Table(title=f"Clauses of {record_id}")
    for col in ("clause", "sha256", "changes", "first seen", "last seen", "months"):
        table.add_column(col)
    for c in items:
        table.add_row(escape(c.heading), c.sha256[:12], str(c.changes), c.first_seen[:16].replace("T", " "),
                      c.last_seen[:16].replace("T", " "), str(c.months_monitored))
    _out().print(table)


if __name__ == "__main__":
    sys.exit(main())
