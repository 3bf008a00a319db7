"""Checking evidence: verify, timestamp, wayback."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import (
    Exit,
    JsonOpt,
    StoreOpt,
    _emit_json,
    _open,
    _optional_store,
    _out,
    _passphrase_source,
    _render_stamps,
    _status_style,
    app,
    safe,
)

if TYPE_CHECKING:
    from archiver.records import Verification


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
           trust_log_key: Annotated[list[str] | None, typer.Option("--trust-log-key", help="For a bundle: trust "
                                                                   "this transparency log's verifier key (vkey, "
                                                                   "`archiver log key`; repeatable).")] = None,
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Run every check on a record (or all, or an exported .wacz bundle) and give its verdict.

    Verdicts: VERIFIED (exit 0); INTACT, SIGNER NOT TRUSTED, INCOMPLETE, or TAMPERED (exit 1). A
    context check (the version chain, Wayback corroboration) never fails: a record whose
    predecessor is absent is verified, and says its chain is partial."""
    from archiver.errors import UsageError

    if (record_id is None) == (not all_):
        raise UsageError("give a record ID, a bundle file, or --all")
    if record_id is not None and _is_bundle_path(record_id):
        _verify_bundle(Path(record_id), trust_key or [], tsa_certs, store, as_json, trust_log_key or [])
        return
    archive = _open(store)
    reports = archive.verify_all(wayback=wayback) if all_ else [archive.verify(record_id or "", wayback=wayback)]
    if as_json:
        _emit_json(reports[0] if not all_ else reports)
    else:
        for r in reports:
            if all_ and r.ok and not verbose:
                passed = sum(1 for c in r.checks if c.status.value == "PASS")
                _out().print(f"[bold]{safe(r.subject)}[/]  [green]VERIFIED[/]  ({passed} checks passed)")
            else:
                _render_report(r)
        if all_:
            bad = sum(1 for r in reports if not r.ok)
            _out().print(f"{len(reports) - bad} verified, {bad} failed")
    if not all(r.ok for r in reports):
        raise Exit(1)


_COLOUR = {"verified": "green", "intact-untrusted": "yellow", "incomplete": "yellow", "tampered": "bold red"}


def _render_report(report: "Verification") -> None:
    from archiver.verify.verdict import VERDICT_TEXT

    out = _out()
    v = report.verdict
    failed = len(report.failures)
    out.print(f"[bold]{safe(report.subject)}[/]  [{_COLOUR[v.value]}]{VERDICT_TEXT[v]}[/]"
              + (f"  ({failed} check(s) failed)" if failed else ""))
    for c in report.checks:
        out.print(f"  [{_status_style(c.status.value)}]{c.status.value:<7}[/] {safe(f'{c.name:<20}')} "
                  f"[dim]{c.category.value:<12}[/] {safe(c.detail)}")


def _is_bundle_path(text: str) -> bool:
    """A .wacz/.zip name or an existing zip file (checked here: importing the bundle code costs start-up)."""
    import os

    if text.lower().endswith((".wacz", ".zip")):
        return True
    if not os.path.isfile(text):
        return False  # a record ID: no zipfile import
    import zipfile

    return zipfile.is_zipfile(text)


def _verify_bundle(path: Path, trust_key: list[str], tsa_certs: Path | None, store: Path | None,
                   as_json: bool, trust_log_key: list[str]) -> None:
    from archiver.bundle import default_trust, verify_bundle
    from archiver.errors import UsageError
    from archiver.verify import VERDICT_MEANING, VERDICT_TEXT, exit_code, overall

    if not path.is_file():
        raise UsageError(f"no such bundle file: {path}")
    trust = default_trust(_optional_store(store), trust_key, tsa_certs, trust_log_key)
    reports = verify_bundle(path, trust)
    verdict = overall(reports)
    if as_json:
        from archiver.reports import BundleReport

        _emit_json(BundleReport(bundle=str(path), ok=all(r.ok for r in reports), verdict=verdict,
                                reports=tuple(reports)))
    else:
        for r in reports:
            _render_report(r)
        _out().print(f"bundle {safe(path)}: [{_COLOUR[verdict.value]}]{VERDICT_TEXT[verdict]}[/] "
                     f"({len(reports) - 1} record(s)): {VERDICT_MEANING[verdict]}")
        if verdict.value == "intact-untrusted":
            _out().print("  pin the operator's key id with --trust-key (they can read it from `archiver keys list`)")
    if exit_code(verdict):
        raise Exit(exit_code(verdict))


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
        _emit_json(results)
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
    from archiver.reports import WaybackReport

    archive = _open(store)
    try:
        add = archive.wayback(record_id, save=save, if_not_archived_within=within, passphrase=_passphrase_source())
    except WaybackError as exc:
        if as_json:
            _emit_json(WaybackReport(record_id=record_id, verdict="unknown", reason=exc.message))
        raise
    assert add.wayback is not None
    w = add.wayback
    if as_json:
        _emit_json(WaybackReport.of(add.record_id, w))
        return
    out = _out()
    out.print(f"[bold]{safe(add.record_id)}[/]  Wayback verdict: [bold]{safe(w.verdict)}[/]")
    if w.snapshot_url:
        out.print(f"  snapshot   {safe(w.snapshot_url)}")
        out.print(f"  digest     Archive {safe(w.archive_digest)}  ours {safe(w.our_digest)}")
    if w.saved:
        out.print("  saved      Save Page Now archived the URL during this check")
    out.print(f"  note       {safe(w.note)}")
