"""The transparency log: checkpoints, the verifier key, proofs, consistency, audit, sync."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import Exit, JsonOpt, StoreOpt, _emit_json, _open, _out, app, safe

if TYPE_CHECKING:
    from archiver.tlog.cosigning import WitnessConfig
    from archiver.tlog.reports import LogWitnessEntry

log_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                      help="The transparency log of every record: checkpoints, proofs, audit.")
app.add_typer(log_app, name="log")
log_witness_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                              help="The witnesses each new checkpoint is submitted to for cosigning.")
log_app.add_typer(log_witness_app, name="witness")


@log_app.command("checkpoint")
def log_checkpoint(no_stamp: Annotated[bool, typer.Option("--no-stamp", help="Do not ask the TSAs for a "
                                                          "timestamp.")] = False,
                   store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Sign a checkpoint of the log (a C2SP signed note), stamped by the configured TSAs; the last one
    is returned when the log has not grown since."""
    rep = _open(store).log.checkpoint(stamp=not no_stamp)
    if as_json:
        _emit_json(rep)
        return
    out = _out()
    out.print(f"{'Signed' if rep.new else 'Unchanged since'} checkpoint of size {rep.size} "
              f"({safe(rep.origin)}), root {rep.root}", highlight=False)
    for s in rep.stamps:
        out.print(f"  stamped by {safe(s.tsa_url)} at {s.gen_time}" if s.ok
                  else f"  [red]not stamped[/] by {safe(s.tsa_url)}: {safe(s.error)}", highlight=False)
    for w in rep.witnesses:
        how = {"cosigned": "cosigned by", "already": "already cosigned by"}.get(w.outcome)
        out.print(f"  {how} {safe(w.name)}" if how else
                  f"  [red]{w.outcome}[/]: {safe(w.name)} ({safe(w.url)}): {safe(w.reason)}", highlight=False)


@log_app.command("key")
def log_key(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Print the log's verifier key (name+hex+base64): what a third party needs to check checkpoints."""
    from archiver.tlog.reports import LogKeyReport

    v = _open(store).log.verifier()
    if as_json:
        _emit_json(LogKeyReport(origin=v.name, vkey=v.vkey(), key_id=f"{v.key_id:08x}"))
        return
    sys.stdout.write(v.vkey() + "\n")


@log_app.command("prove")
def log_prove(record_id: str,
              output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the proof here.")] = None,
              no_stamp: Annotated[bool, typer.Option("--no-stamp", help="If a checkpoint must be signed first, "
                                                     "do not stamp it.")] = False,
              store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Write a c2sp.org/tlog-proof@v1 file: the record's manifest is in the log (signing a checkpoint
    first when the record is newer than the last one)."""
    from archiver.provenance.ids import normalize_record_id
    from archiver.tlog.proofs import ProofFile
    from archiver.tlog.reports import LogProofReport
    from store.fsutil import atomic_write_bytes

    archive = _open(store)
    rid = normalize_record_id(record_id)  # the log proves what it holds, whatever the catalog says now
    data = archive.log.prove(rid, stamp=not no_stamp)
    if output is not None:
        atomic_write_bytes(output, data)
    if as_json:
        proof = ProofFile.parse(data)
        latest = archive.log.latest()
        _emit_json(LogProofReport(record_id=rid, index=proof.index, size=latest.size if latest else 0,
                                  entry=(proof.extra or b"").decode("ascii").strip(),
                                  path=str(output) if output else None, proof=data.decode("utf-8")))
    elif output is None:
        sys.stdout.write(data.decode("utf-8"))
    else:
        _out().print(f"Proof of {rid} written to {safe(output)}", highlight=False)


@log_app.command("verify")
def log_verify(from_: Annotated[Path, typer.Option("--from", help="An older checkpoint of this log, kept "
                                                   "by you or a third party.", exists=True, dir_okay=False)],
               store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Check that the log's latest checkpoint extends an older one (consistency proof). Exit 1 if not."""
    rep = _open(store).log.verify_from(from_.read_bytes())
    if as_json:
        _emit_json(rep)
    else:
        out = _out()
        if rep.ok:
            out.print(f"PASS  the checkpoint of size {rep.new_size} extends the one of size {rep.old_size} "
                      f"({rep.proof_hashes} proof hashes)", highlight=False)
        for p in rep.problems:
            out.print(f"[red]FAIL[/]  {safe(p.message)}", highlight=False)
    if not rep.ok:
        raise Exit(1)


@log_app.command("audit")
def log_audit(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild the tree from the entry bundles and check it against the catalog, the stored records and
    every signed checkpoint; each mismatch is a FAIL naming it. Exit 1 if any."""
    archive = _open(store)
    rep = archive.log.audit(archive.blobs)
    if as_json:
        _emit_json(rep)
    else:
        out = _out()
        for p in rep.problems:
            out.print(f"[red]FAIL[/]  {p.check}: {safe(p.message)}", highlight=False)
        out.print(f"{'PASS' if rep.ok else 'FAIL'}  {rep.entries_checked} entries, {rep.records_checked} records, "
                  f"{rep.checkpoints_checked} checkpoints checked; size {rep.size}, root {rep.root}", highlight=False)
    if not rep.ok:
        raise Exit(1)


@log_app.command("sync")
def log_sync(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Append what the outbox holds past the log's position (every commit does; this finishes a sync
    a crash cut off) and write the tiles it completed."""
    from archiver.tlog.reports import LogSyncReport

    archive = _open(store)
    res = archive.log.sync()
    rep = LogSyncReport(appended=res.appended, outbox_rows=res.rows, size=res.size, outbox_seq=res.outbox_seq,
                        tiles=archive.log.files.describe())
    if as_json:
        _emit_json(rep)
    else:
        _out().print(f"{rep.appended} entries appended; the log holds {rep.size}", highlight=False)


@log_witness_app.command("add")
def log_witness_add(url: Annotated[str, typer.Argument(help="The witness's submission prefix (it answers "
                                                       "<URL>/add-checkpoint).")],
                    vkey: Annotated[str, typer.Argument(help="The witness's vkey (type 0x04): `archiver witness "
                                                        "key` on its side.")],
                    store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Submit every new checkpoint to this witness (c2sp.org/tlog-witness) and keep its cosignature."""
    from archiver.tlog.cosigning import add_witness

    w = add_witness(_open(store).log, url, vkey)
    if as_json:
        _emit_json(_entry(w))
    else:
        _out().print(f"witness {safe(w.name)} at {safe(w.url)}: the next checkpoint is submitted to it "
                     "(`archiver log checkpoint` submits the current one)", highlight=False)


@log_witness_app.command("list")
def log_witness_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The configured witnesses and the size each last cosigned."""
    from archiver.tlog.cosigning import witnesses

    ws = witnesses(_open(store).log)
    if as_json:
        _emit_json([_entry(w) for w in ws])
        return
    out = _out()
    for w in ws:
        out.print(f"{safe(w.name)}  {safe(w.url)}  cosigned size {w.size}  {safe(w.vkey)}", highlight=False)


@log_witness_app.command("remove")
def log_witness_remove(witness: Annotated[str, typer.Argument(help="Its name, vkey or URL.")],
                       store: StoreOpt = None) -> None:
    """Stop submitting checkpoints to a witness (cosignatures already stored stay)."""
    from archiver.tlog.cosigning import remove_witness

    w = remove_witness(_open(store).log, witness)
    _out().print(f"witness {safe(w.name)} removed", highlight=False)


def _entry(w: "WitnessConfig") -> "LogWitnessEntry":
    from archiver.tlog.reports import LogWitnessEntry

    return LogWitnessEntry(name=w.name, vkey=w.vkey, url=w.url, size=w.size, added_at=w.added_at)


@log_app.command("verify-proof")
def log_verify_proof(proof: Annotated[Path, typer.Argument(help="A c2sp.org/tlog-proof@v1 file (`archiver log "
                                                           "prove`).", exists=True, dir_okay=False)],
                     vkey: Annotated[list[str] | None, typer.Option("--vkey", help="The log's vkey (repeatable); "
                                                                     "default: the policy's log lines.")] = None,
                     policy: Annotated[Path | None, typer.Option("--policy", help="A c2sp.org/tlog-policy file: "
                                                                 "the witnesses, and how many, that must have "
                                                                 "cosigned (default: the store's log.policy).",
                                                                 exists=True, dir_okay=False)] = None,
                     store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Check a proof offline: the entry is in the checkpoint, the checkpoint is signed by the log and
    cosigned by the policy's quorum of witnesses. Exit 1 if not."""
    from archiver.tlog import policy as tlog_policy

    path = policy if policy is not None else _store_policy(store)
    rules = tlog_policy.load(path) if path is not None else None
    rep = tlog_policy.check(proof.read_bytes(), rules, vkeys=vkey or ())
    if as_json:
        _emit_json(rep)
    elif rep.ok:
        by = f", cosigned by {', '.join(rep.cosigned_by)}" if rep.cosigned_by else ""
        _out().print(f"PASS  entry {rep.index} ({safe(rep.entry)}) is in the checkpoint of size {rep.size} "
                     f"signed by {safe(rep.origin)}{by}; quorum {safe(rep.quorum or 'none (no policy)')}",
                     highlight=False)
    else:
        _out().print(f"[red]FAIL[/]  {safe(rep.reason)}", highlight=False)
    if not rep.ok:
        raise Exit(1)


def _store_policy(store: Path | None) -> Path | None:
    """The ``log.policy`` setting of the store, when there is one (verify-proof needs no store)."""
    from archiver.errors import ArchiverError

    try:
        where = _open(store).config.str_("log.policy")
    except ArchiverError:
        return None
    return Path(where).expanduser() if where else None
