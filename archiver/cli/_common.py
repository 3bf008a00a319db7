"""What every command module shares: the Typer apps, common options, output and error helpers."""

import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from archiver.api import Archive
    from archiver.records import StampResult, Verification
    from archiver.reports import WaybackReport
    from archiver.schema import JsonRecord

# Plain click help (no rich import) keeps `archiver --help` fast; our own output still uses rich.
_APP_OPTS: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": None, "pretty_exceptions_enable": False}
app = typer.Typer(**_APP_OPTS, add_completion=False,
                  help="Capture web documents as signed, verifiable evidence records.")
keys_app = typer.Typer(**_APP_OPTS, help="Signing keys and the keyring of trusted signers.")
config_app = typer.Typer(**_APP_OPTS, help="Settings kept in the store.")
store_app = typer.Typer(**_APP_OPTS, help="Store maintenance.")
watch_app = typer.Typer(**_APP_OPTS, help="Watch documents: re-capture on an interval, detect changes.")
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")
app.add_typer(store_app, name="store")
app.add_typer(watch_app, name="watch")

StoreOpt = Annotated[Path | None, typer.Option("--store", envvar="ARCHIVER_HOME",
                                               help="Store directory (default: $ARCHIVER_HOME or the data dir).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


# C0 and C1 controls, DEL, and the invisible characters that reorder or hide text on a terminal
# (bidi embeddings and isolates, line/paragraph separators, zero-width joiners, BOM)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def safe(text: object) -> str:
    """``text`` ready to sit inside a rich markup string: every control character shown as an escape
    (``\\x1b``, ``\\r``, ``\\u202e``) and every ``[`` escaped for rich.

    Why: names and values from a bundle or a capture (member names, record IDs, URLs, titles, check
    details quoting them) are chosen by whoever made the bundle or the page. Printed raw, an ESC
    sequence clears the screen or rewrites the line above ("imported 1 record(s)" over a refusal),
    and a ``[/bold]`` is taken by rich for markup and raises. The JSON output needs none of this:
    JSON escapes control characters itself."""
    from rich.markup import escape

    def show(m: re.Match[str]) -> str:
        c = m.group()
        named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c)
        return named or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return escape(_UNSAFE.sub(show, str(text)))


def _out() -> "Console":
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _err() -> "Console":
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _emit_json(obj: "JsonRecord | Sequence[JsonRecord]") -> None:
    """Print a report (or a list of them) as JSON: always a typed record's own ``to_dict()``."""
    from archiver.schema import plain

    sys.stdout.write(json.dumps(plain(obj), indent=2, ensure_ascii=False) + "\n")


def _emit_line(obj: "JsonRecord") -> None:
    """One JSON line (batch outputs stream one record per line)."""
    from archiver.schema import plain

    sys.stdout.write(json.dumps(plain(obj), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _open(store: Path | None) -> "Archive":
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


def _wayback_inline(archive: "Archive", record_id: str, save: bool) -> "WaybackReport":
    """Wayback after a capture: a failure is reported as verdict "unknown", never fails the capture."""
    from archiver.errors import WaybackError
    from archiver.reports import WaybackReport

    try:
        add = archive.wayback(record_id, save=save, passphrase=_passphrase_source())
    except WaybackError as exc:
        return WaybackReport(record_id=record_id, verdict="unknown", reason=exc.message)
    assert add.wayback is not None
    return WaybackReport.of(record_id, add.wayback)


def _render_wayback_line(wb: "WaybackReport") -> None:
    colour = {"identical": "green", "differs": "yellow", "no-snapshot": "yellow"}.get(wb.verdict, "red")
    ev = wb.evidence
    where = (ev.snapshot_url or ev.note) if ev is not None else (wb.reason or "")
    _out().print(f"  wayback    [{colour}]{safe(wb.verdict)}[/]  {safe(where)}")


def _render_stamps(stamps: "list[StampResult]") -> None:
    out = _out()
    for st in stamps:
        n = len(st.record_ids)
        what = f"{n} records, one Merkle root {st.batch_root[:16]}…" if st.batch_root else "manifest"
        if st.ok:
            out.print(f"  timestamp  {safe(st.tsa_url)}  genTime {safe(st.gen_time)}  ({what})")
        else:
            out.print(f"  [yellow]unstamped[/]  {safe(st.tsa_url)}: {safe(st.error or '')}"
                      f"  (later: archiver timestamp --pending)")


def _render_verification(report: "Verification") -> None:
    out = _out()
    verdict = "[green]VERIFIED[/]" if report.ok else "[bold red]FAILED[/]"
    out.print(f"[bold]{safe(report.subject)}[/]  {verdict}")
    for c in report.checks:
        out.print(f"  [{_status_style(c.status.value)}]{c.status.value:<7}[/] {safe(f'{c.name:<20}')} {safe(c.detail)}")


def _optional_store(store: Path | None) -> "Archive | None":
    from archiver.errors import StoreNotFoundError

    try:
        return _open(store)
    except StoreNotFoundError:
        return None  # verifying a bundle needs no store
