"""Concordance DAT and Opticon OPT: the load files every review platform imports.

DAT (Concordance's delimited text): the first line names the fields; every value is enclosed in the
quote character þ (U+00FE) and values are separated by the field delimiter U+0014 (ASCII 20, shown as
¶ in code page 437, which is why the spec calls it that); a line break inside a value is written as ®
(U+00AE), the "newline" character; lines end with CR LF. We write UTF-8 with a byte-order mark, which
Relativity, Concordance and the rest detect.

OPT (Opticon image cross-reference): one line per page image, seven comma-separated fields —
``ImageKey,Volume,ImagePath,DocumentBreak,FolderBreak,BoxBreak,PageCount``: the key is the page's
Bates number, ``Y`` marks the first page of a document, whose line also carries the document's page
count; paths are relative, with backslashes. ASCII (our keys and paths are), CR LF.

Only writers live here: the tests read a production back with a parser of their own, written from
this description, so a mistake here cannot be repeated by the reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

QUOTE = "\u00fe"
DELIM = "\u0014"
NEWLINE = "\u00ae"
BOM = "\ufeff"
CRLF = "\r\n"


def _value(v: str) -> str:
    """A value as Concordance stores it: line breaks as ®; the quote character itself cannot appear
    in a field, so it is dropped (the spec has no escape for it)."""
    return v.replace("\r\n", NEWLINE).replace("\n", NEWLINE).replace("\r", NEWLINE).replace(QUOTE, "")


def dat(fields: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    lines = [DELIM.join(QUOTE + _value(f) + QUOTE for f in fields)]
    for row in rows:
        if len(row) != len(fields):
            raise ValueError(f"a DAT row has {len(row)} values for {len(fields)} fields")
        lines.append(DELIM.join(QUOTE + _value(v) + QUOTE for v in row))
    return (BOM + CRLF.join(lines) + CRLF).encode("utf-8")


def opt(pages: Iterable[tuple[str, str, str, bool, int]]) -> bytes:
    """``pages``: (image key, volume, relative path with backslashes, first page of a document, the
    document's page count — written on its first page only)."""
    lines = []
    for key, volume, path, first, count in pages:
        if "," in key + volume + path:
            raise ValueError(f"an OPT field cannot hold a comma: {key!r} {volume!r} {path!r}")
        lines.append(",".join((key, volume, path, "Y" if first else "", "", "", str(count) if first else "")))
    return (CRLF.join(lines) + CRLF).encode("ascii")


__all__ = ["BOM", "DELIM", "NEWLINE", "QUOTE", "dat", "opt"]
