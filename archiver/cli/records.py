"""Reading the store: list, show, lookup, verify-file, get."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import (
    Exit,
    JsonOpt,
    StoreOpt,
    _emit_json,
    _err,
    _open,
    _out,
    app,
    safe,
)

if TYPE_CHECKING:
    pass


@app.command("list")
def list_(url: Annotated[str | None, typer.Option(help="Only this URL.")] = None,
          entity: Annotated[str | None, typer.Option(help="Only this entity.")] = None,
          limit: Annotated[int, typer.Option(help="At most this many (one page).", min=1)] = 100,
          after: Annotated[str | None, typer.Option(help="The page after this record ID (the last one shown).")]
          = None,
          all_: Annotated[bool, typer.Option("--all", help="Every record, not one page.")] = False,
          store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List the records in the store, oldest first, one page at a time (--all for every one)."""
    from rich.table import Table

    rows = _open(store).list(url=url, entity=entity, limit=None if all_ else limit + 1, after=after)
    more = not all_ and len(rows) > limit
    rows = rows[:limit] if more else rows
    hint = f"more: archiver list --after {rows[-1].record_id}" if more and rows else None
    if as_json:
        _emit_json(rows)
        if hint:
            _err().print(hint)
        return
    table = Table()
    for col in ("Record", "Captured (UTC)", "Entity", "Document", "Status", "URL"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(safe(x) for x in (r.record_id, r.captured_at, r.entity or "", r.document or "",
                                             str(r.status), r.final_url)))
    _out().print(table)
    _out().print(f"{len(rows)} record(s)" + (f"; {hint}" if hint else ""))


@app.command()
def show(record_id: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Show one record: its subject, HTTP facts, artifacts and signature."""
    archive = _open(store)
    m = archive.manifest(record_id)
    addenda = archive.addenda(m.record_id)
    if as_json:
        from archiver.reports import AddendumEntry, RecordReport

        _emit_json(RecordReport(manifest=m, addenda=tuple(AddendumEntry(sha256=sha, addendum=a,
                                                                        unreadable=True if a is None else None)
                                                          for sha, a in addenda)))
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
    for k, v in rows:
        out.print(f"[bold]{k:<{width}}[/]  {safe(v)}")
    out.print("[bold]Artifacts[/]")
    for a in m.artifacts:
        out.print(f"  {safe(f'{a.name:<10}')} sha256:{safe(a.sha256)}  {a.size:>12,} bytes  {safe(a.media_type)}")
    out.print("[bold]Capture steps[/]")
    for st in m.capture.steps:
        out.print(f"  {safe(f'{st.step:<8}')} {safe(f'{st.status:<7}')} {safe(st.detail)}")
    out.print("[bold]Trusted time[/]")
    stamped = [a.timestamp for _, a in addenda if a is not None and a.timestamp is not None]
    for t in stamped:
        batch = f"batch of {t.merkle.tree_size} (leaf {t.merkle.leaf_index + 1})" if t.merkle else "single"
        out.print(f"  genTime {safe(t.gen_time)}  {safe(t.tsa_name)}  {safe(t.tsa_url)}  {batch}"
                  + ("  deferred" if t.deferred else ""))
    if not stamped:
        out.print("  [yellow]unstamped[/]: no RFC 3161 token (archiver timestamp " + safe(m.record_id) + ")")
    out.print("[bold]Wayback Machine[/]")
    links = [a.wayback for _, a in addenda if a is not None and a.wayback is not None]
    for w in links:
        out.print(f"  {safe(w.checked_at)}  [bold]{safe(w.verdict)}[/]  {safe(w.snapshot_url or 'no snapshot')}"
                  + (f"  (snapshot {w.snapshot_timestamp})" if w.snapshot_timestamp else ""))
    if links and links[-1].verdict == "differs":
        out.print(f"  [dim]{safe(links[-1].note)}[/]")
    if not links:
        out.print(f"  not checked (archiver wayback {safe(m.record_id)})")


@app.command()
def lookup(sha256: Annotated[str, typer.Option("--sha256", help="SHA-256 (hex or sha256:hex).")],
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Which record holds a file with this hash? Exit 1 when none does."""
    matches = _open(store).lookup(sha256)
    if as_json:
        _emit_json(matches)
    else:
        out = _out()
        for m in matches:
            out.print(safe(f"{m.record_id}  {m.artifact:<10} {m.captured_at}  {m.url}"))
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
        from archiver.reports import FileCheck

        _emit_json(FileCheck(file=str(path), sha256=actual, expected_match=expected_ok, ok=ok,
                             records=tuple(matches)))
    else:
        out = _out()
        out.print(f"{safe(path)}  sha256:{actual}")
        if expected_ok is not None:
            out.print("  [green]matches the expected hash[/]" if expected_ok
                      else f"  [bold red]does NOT match the expected hash {sha256}[/]")
        for m in matches:
            out.print(safe(f"  matches {m.record_id} artifact {m.artifact} ({m.url}, captured {m.captured_at})"))
        if not matches:
            out.print("  matches no record in this store")
    if not ok:
        raise Exit(1)


@app.command()
def get(record_id: str, name: Annotated[str, typer.Argument(help="Artifact: warc, content, text, manifest, …")],
        output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write it (default: "
                                                    "stdout, when stdout is not a terminal).")] = None,
        store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Write an artifact out byte-exact (its hash is checked on the way); to stdout without -o."""
    if output is None:
        from archiver.errors import UsageError

        if as_json:
            raise UsageError("--json needs -o FILE (without -o the artifact's bytes go to stdout)")
        if sys.stdout.isatty():
            raise UsageError("stdout is a terminal: not writing the artifact's bytes there",
                             hint=f"pipe it (archiver get {record_id} {name} | …) or name a file with -o FILE")
        sys.stdout.flush()
        _open(store).write_artifact(record_id, name, sys.stdout.buffer, to="stdout")
        return
    sha, size = _open(store).get(record_id, name, output)
    if as_json:
        from archiver.reports import WrittenFile

        _emit_json(WrittenFile(file=str(output), sha256=sha, size=size))
    else:
        _out().print(f"wrote {safe(output)} ({size:,} bytes, sha256:{sha})")
