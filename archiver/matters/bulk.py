"""Bulk capture from a CSV (``archiver capture -i list.csv``): one row per URL, with the record's entity,
document, and the matter, tags and notes to file it under once captured (what Perma users asked for).

Why here and not in the CLI: reading the sheet (which rows are good, what is wrong with each bad one
and on which line) and filing each new record are decisions the web or a script would make the same
way. The rules: the header row names the columns, in any order and any case; ``url`` is required
(without it nothing is captured: ``UsageError``, exit 2); ``entity``, ``document``, ``matter``,
``tags`` (separated by ``;`` or ``,``) and ``notes`` are optional. A bad row — no URL, a URL we would
refuse, a matter that does not exist, a bad tag, more cells than the header — is reported with its
line number (the line in the file where the row starts, the header being line 1) and skipped; every
good row is captured. Filing happens after the capture, through the same calls as ``matter add``,
``tag`` and ``note`` (each a custody entry); the record itself is never changed by it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archiver.errors import ArchiverError, UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Store

COLUMNS = ("url", "entity", "document", "matter", "tags", "notes")
MAX_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One good row: what to capture and where to file it."""

    line: int
    url: str
    entity: str | None
    document: str | None
    matter: str | None
    tags: tuple[str, ...]
    notes: str | None


@dataclass(frozen=True, slots=True)
class RowProblem(Report):
    """A row that was not captured (or not filed), by its line in the file."""

    line: int
    error: str


def parse_csv(text: str, *, known_matters: set[str]) -> tuple[list[CsvRow], list[RowProblem]]:
    """The good rows and the problems of a capture sheet (see the module docstring)."""
    from archiver.capture.fetch import validate_url
    from archiver.matters.notes import check_tags

    if text.startswith("\ufeff"):  # spreadsheets save UTF-8 with a BOM
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UsageError("the CSV is empty: its first line must be a header naming at least a url column") from None
    except csv.Error as exc:
        raise UsageError(f"line 1: the CSV header cannot be read: {exc}") from exc
    names = [h.strip().lower() for h in header]
    if "url" not in names:
        raise UsageError(f"the CSV has no url column (its header is {', '.join(repr(h) for h in header[:10])})",
                         hint="the first line names the columns: url, entity, document, matter, tags, notes")
    unknown = [h for h in names if h and h not in COLUMNS]
    if unknown:
        raise UsageError(f"the CSV header names unknown column(s): {', '.join(repr(u) for u in unknown[:5])}",
                         hint="known columns: " + ", ".join(COLUMNS))
    if len(set(names) - {""}) != len([n for n in names if n]):
        raise UsageError("the CSV header names a column twice")
    rows: list[CsvRow] = []
    problems: list[RowProblem] = []
    line = reader.line_num + 1
    while True:
        start = line
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(start, f"cannot be read as CSV: {exc}"))
            break
        line = reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(rows) + len(problems) >= MAX_ROWS:
            raise UsageError(f"the CSV has more than {MAX_ROWS} rows: split it")
        if len(cells) > len(names):
            problems.append(RowProblem(start, f"{len(cells)} cells but the header names {len(names)} columns"))
            continue
        row = {n: c.strip() for n, c in zip(names, cells, strict=False) if n}
        url = row.get("url", "")
        try:
            if not url:
                raise UsageError("no URL")
            validate_url(url)
            matter = row.get("matter") or None
            if matter is not None and matter not in known_matters:
                raise UsageError(f"no matter named {matter!r} (create it first: `archiver matter create {matter}`)")
            raw_tags = [t for t in row.get("tags", "").replace(";", ",").split(",") if t.strip()]
            tags = tuple(check_tags(raw_tags)) if raw_tags else ()
        except ArchiverError as exc:
            problems.append(RowProblem(start, exc.message))
            continue
        rows.append(CsvRow(start, url, row.get("entity") or None, row.get("document") or None, matter, tags,
                           row.get("notes") or None))
    return rows, problems


def file_record(core: Store, row: CsvRow, record_id: str, *, actor: str) -> None:
    """File a captured row's record: into its matter, then its tags and its note (in that matter)."""
    from archiver.matters import add
    from archiver.matters.notes import add_note, add_tags

    if row.matter:
        add(core, row.matter, [record_id], actor=actor)
    if row.tags:
        add_tags(core, record_id, list(row.tags), matter=row.matter, actor=actor)
    if row.notes:
        add_note(core, record_id, row.notes, matter=row.matter, actor=actor)


__all__ = ["COLUMNS", "CsvRow", "RowProblem", "file_record", "parse_csv"]
