"""Citations and certificates of authenticity."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import (
    JsonOpt,
    StoreOpt,
    _emit_json,
    _err,
    _open,
    _out,
    app,
)

if TYPE_CHECKING:
    pass


@app.command()
def cite(record_id: Annotated[str, typer.Argument(help="Record ID, or provision ID (P-XXXX-XXXX): the clause's "
                                                   "current text in the record that holds it.")],
         style: Annotated[str, typer.Option("--style", "-s", help="record, markdown, bluebook, apa, chicago-note, "
                                            "chicago-bib, mla, csl-json, bibtex, ris.")] = "record",
         quote: Annotated[str | None, typer.Option("--quote", "-q", help="Pin an exact excerpt (whitespace and "
                                                   "quote marks may differ).")] = None,
         store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """A citation of a record (or of a provision: its excerpt in the record holding its current text)."""
    from archiver.cite import STYLES, citation_data, render
    from archiver.errors import UsageError

    if style not in STYLES:
        raise UsageError(f"unknown citation style {style!r}", hint="styles: " + ", ".join(STYLES))
    from archiver.provisions import is_provision_id

    archive = _open(store)
    provision_id = None
    if is_provision_id(record_id):
        from archiver.cite import provision_citation_data

        if quote is not None:
            raise UsageError("a provision is cited with its own text", hint="--quote is for a record ID")
        provision = archive.provisions.get(record_id)
        provision_id = provision.provision_id
        report = archive.verify(provision.record_id, log=False)
        data = provision_citation_data(archive, provision_id, report=report)
    else:
        report = archive.verify(record_id, log=False)
        data = citation_data(archive, record_id, quote=quote, report=report)
    text = render(data, style)
    if not report.ok:
        from archiver.cli._common import safe

        _err().print(f"[bold red]WARNING[/]: record {safe(data.record_id)} does NOT verify "
                     f"({safe(', '.join(c.name for c in report.failures))}); do not rely on this citation")
    if as_json:
        from archiver.reports import CitationReport, QuoteReport

        q = data.quote
        _emit_json(CitationReport(record_id=data.record_id, style=style, verified=report.ok, citation=text,
                                  quote=QuoteReport(excerpt=q.excerpt, sha256=q.sha256, start=q.start, end=q.end,
                                                    section=q.section, fragment=q.fragment()) if q else None,
                                  provision_id=provision_id))
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
        cert_mod.log_issued(archive, cert, fmt, to="stdout", actor=archive.default_actor())
        return
    size = cert_mod.write(cert, fmt, output)
    cert_mod.log_issued(archive, cert, fmt, to=str(output), actor=archive.default_actor())
    _out().print(f"wrote {output} ({size:,} bytes): {len(cert.exhibits)} exhibit(s) from {len(cert.records)} "
                 "record(s); the § 1746 declaration awaits a signature")
