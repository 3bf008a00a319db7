"""Certificate of authenticity, structured after FRE 902(13)/(14), in Markdown, HTML and PDF.

It states what a qualified person would attest to: the process, the exhibits and their SHA-256
values, that the produced copies hash to what was recorded at acquisition (checked now by running
every verification, and refused if any record fails), trusted timestamps, the chain of custody and
independent corroboration. The 28 U.S.C. § 1746 declaration is left for a human to sign: this tool
never signs in a person's name.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archiver._version import __version__
from archiver.cite.styles import common_name, md
from archiver.errors import NotCertifiableError, UsageError
from archiver.records import Addendum, Manifest

if TYPE_CHECKING:
    from archiver.ports import VerifyingStore


@dataclass(frozen=True, slots=True)
class Exhibit:
    number: str
    record_id: str
    url: str
    captured: str
    file: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class RecordPart:
    manifest: Manifest
    manifest_sha256: str
    checks_passed: int
    timestamps: tuple[Addendum, ...]
    wayback: tuple[Addendum, ...]
    custody: tuple[tuple[str, str, str], ...]  # (time, event, actor)


@dataclass(frozen=True, slots=True)
class Certificate:
    declarant: str
    title: str
    organization: str
    verified_on: str
    records: tuple[RecordPart, ...]
    exhibits: tuple[Exhibit, ...] = field(default=())


_FILES = {"warc": "capture.warc.gz", "content": "document (decoded body)", "text": "extracted text"}


def build(archive: VerifyingStore, record_ids: list[str], *, declarant: str, title: str = "",
          organization: str = "") -> Certificate:
    if not record_ids:
        raise UsageError("name at least one record to certify")
    if not declarant.strip():
        raise UsageError("--declarant is required: a certificate is a person's declaration")
    parts: list[RecordPart] = []
    exhibits: list[Exhibit] = []
    for n, rid in enumerate(dict.fromkeys(archive.resolve(r).record_id for r in record_ids), 1):
        report = archive.verify(rid)
        if not report.ok:
            raise NotCertifiableError(f"record {rid} does not verify ({', '.join(c.name for c in report.failures)});"
                                      " it cannot be certified")
        summary = archive.resolve(rid)
        m = archive.manifest(rid)
        adds = [a for _, a in archive.addenda(rid) if a is not None]
        custody = tuple((e.time, e.event, e.actor) for e in archive.custody.for_record(rid))
        parts.append(RecordPart(m, summary.manifest_sha256, sum(1 for c in report.checks if c.status.value == "PASS"),
                                tuple(a for a in adds if a.timestamp), tuple(a for a in adds if a.wayback), custody))
        for letter, art in zip("ABCDEFG", [a for a in m.artifacts if a.name in _FILES], strict=False):
            exhibits.append(Exhibit(f"{n}-{letter}", rid, m.subject.final_url, m.captured_at,
                                    art.file or _FILES[art.name], art.size, art.sha256))
        exhibits.append(Exhibit(f"{n}-M", rid, m.subject.final_url, m.captured_at, "manifest.json (signed)", -1,
                                summary.manifest_sha256))
    return Certificate(declarant=declarant.strip(), title=title.strip(), organization=organization.strip(),
                       verified_on=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), records=tuple(parts),
                       exhibits=tuple(exhibits))


def log_issued(archive: VerifyingStore, cert: Certificate, fmt: str, *, to: str) -> None:
    """The custody event of a certificate made for its records: one per record, whichever front-end made it."""
    for p in cert.records:
        archive.custody.append("certificate", actor=archive.actor(), record_id=p.manifest.record_id,
                               subject_sha256=p.manifest_sha256, detail={"format": fmt, "to": to})


# ---- one structure, three renderings ---------------------------------------------------------------
def _sections(cert: Certificate) -> list[tuple[str, list[str | list[list[str]]]]]:
    """(heading, blocks): a block is a paragraph string or a table (first row = header)."""
    who = cert.declarant + (f", {cert.title}" if cert.title else "") + (f" of {cert.organization}"
                                                                          if cert.organization else "")
    tsas = sorted({common_name(a.timestamp.tsa_name) for p in cert.records for a in p.timestamps if a.timestamp})
    out: list[tuple[str, list[str | list[list[str]]]]] = []
    out.append(("1. Declarant", [
        f"I, {who}, declare that I am over eighteen years of age, that I am qualified by my role and training to "
        "make this certification, and that I am familiar with the process described below by which the records "
        "listed in this certificate were generated and preserved."]))
    out.append(("2. The process", [
        f"The records were generated by archiver {__version__}, an evidence-capture tool. For each record it "
        "requested the URL over HTTP(S), kept every byte received for every redirect hop in a WARC/1.1 file "
        "(ISO 28500) together with the server's IP address and, for HTTPS, its TLS certificate chain; computed "
        "SHA-256 digests of every artifact; and wrote a manifest of those digests, signed with the operator's "
        "Ed25519 key, with every step appended to a hash-chained custody log.",
        "Time source: the capture host's clock for `captured_at`, and "
        + (f"RFC 3161 timestamp tokens from {', '.join(tsas)} over each signed manifest." if tsas else
           "no RFC 3161 timestamp authority (the capture times rest on the host clock alone).")]))
    table: list[list[str]] = [["Exhibit", "Record", "URL", "Captured (UTC)", "File", "Size (bytes)", "SHA-256"]]
    for e in cert.exhibits:
        table.append([e.number, e.record_id, e.url, e.captured, e.file, f"{e.size:,}" if e.size >= 0 else "—",
                      e.sha256])
    out.append(("3. Exhibits", [table]))
    ident: list[str | list[list[str]]] = [
        "For each exhibit, the SHA-256 recorded at acquisition (in the signed manifest) equals the SHA-256 of the "
        f"copy produced. I verified this on {cert.verified_on} by running `archiver verify`, which recomputed every "
        "digest and checked every signature, timestamp token and the custody chain:"]
    for p in cert.records:
        signer = p.manifest.signature.key_id if p.manifest.signature else "—"
        ident.append(f"Record {p.manifest.record_id}: verified, {p.checks_passed} checks passed, none failed; "
                     f"manifest SHA-256 {p.manifest_sha256}; signed by {signer}.")
    out.append(("4. Digital identification", ident))
    ts: list[str | list[list[str]]] = []
    for p in cert.records:
        if not p.timestamps:
            ts.append(f"Record {p.manifest.record_id}: no timestamp token.")
        for a in p.timestamps:
            t = a.timestamp
            assert t is not None
            how = f"batch of {t.merkle.tree_size}, Merkle inclusion proof verified" if t.merkle else "single token"
            ts.append(f"Record {p.manifest.record_id}: genTime {t.gen_time} from {t.tsa_name} ({t.tsa_url}), serial "
                      f"{t.serial}, {how}.")
    out.append(("5. Trusted timestamps (RFC 3161)", ts))
    cust: list[list[str]] = [["Record", "Time (UTC)", "Event", "By"]]
    for p in cert.records:
        cust += [[p.manifest.record_id, t, ev, actor] for t, ev, actor in p.custody]
    out.append(("6. Chain of custody", ["Entries of the hash-chained custody log for these records "
                                        "(the chain verified unbroken):", cust]))
    wb: list[str | list[list[str]]] = []
    for p in cert.records:
        if not p.wayback:
            wb.append(f"Record {p.manifest.record_id}: not checked against the Wayback Machine.")
        for a in p.wayback:
            w = a.wayback
            assert w is not None
            wb.append(f"Record {p.manifest.record_id}: {w.verdict} — {w.snapshot_url or 'no snapshot'} "
                      f"(checked {w.checked_at}). {w.note[:1].upper() + w.note[1:]}.")
    out.append(("7. Independent corroboration (Internet Archive)", wb))
    out.append(("8. Declaration", [
        "I declare under penalty of perjury under the laws of the United States of America that the foregoing "
        "is true and correct (28 U.S.C. § 1746).",
        "Executed on ______________________ (date) at ______________________ (place).",
        "Signature: ____________________________________",
        f"Name: {cert.declarant}" + (f" — {cert.title}" if cert.title else "")
        + (f", {cert.organization}" if cert.organization else "")]))
    return out


TITLE = "Certificate of Authenticity of Electronic Records"
SUBTITLE = "Federal Rules of Evidence 902(13) and 902(14)"


def to_markdown(cert: Certificate) -> str:
    lines = [f"# {TITLE}", "", f"*{SUBTITLE}*", ""]
    for heading, blocks in _sections(cert):
        lines += [f"## {heading}", ""]
        for b in blocks:
            if isinstance(b, list):
                lines.append("| " + " | ".join(md(c) for c in b[0]) + " |")
                lines.append("|" + "---|" * len(b[0]))
                lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in b[1:]]
            else:
                lines.append(md(b).replace("\\_\\_", "__").replace("\\`", "`"))
            lines.append("")
    return "\n".join(lines)


_CSS = """
@page { size: letter landscape; margin: 1.6cm; }
body { font-family: Helvetica; font-size: 9.5pt; line-height: 1.35; }
h1 { font-size: 16pt; margin-bottom: 0; }
.sub { font-style: italic; color: #444; margin-top: 2pt; }
h2 { font-size: 11.5pt; border-bottom: 1px solid #999; margin-top: 12pt; }
table { width: 100%; }
th, td { border: 1px solid #999; padding: 3pt; vertical-align: top; font-size: 8pt; }
th { background-color: #eee; }
code, .hash { font-family: Courier; font-size: 7.5pt; }
"""


_WIDTHS = {"Exhibit": 6, "Record": 9, "URL": 22, "Captured (UTC)": 12, "File": 14, "Size (bytes)": 7,
           "SHA-256": 30, "Time (UTC)": 22, "Event": 20, "By": 40}


def _chunks(text: str, size: int) -> str:
    return "<br/>".join(html.escape(text[i:i + size]) for i in range(0, len(text), size))


def _cell(text: str) -> str:
    """xhtml2pdf does not wrap long unbroken strings: break hashes, URLs and times ourselves."""
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return f'<span class="hash">{text[:32]}<br/>{text[32:]}</span>'
    if text.startswith(("http://", "https://")):
        return _chunks(text, 30)
    if len(text) >= 20 and text[4:5] == "-" and text[10:11] == "T":
        return html.escape(text[:10]) + "<br/>" + html.escape(text[11:])
    return html.escape(text)


def to_html(cert: Certificate) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{TITLE}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{TITLE}</h1>", f'<p class="sub">{SUBTITLE}</p>']
    for heading, blocks in _sections(cert):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for b in blocks:
            if isinstance(b, list):
                parts.append("<table><tr>" + "".join(f'<th width="{_WIDTHS.get(c, 10)}%">{html.escape(c)}</th>'
                                                     for c in b[0]) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in b[1:]]
                parts.append("</table>")
            else:
                parts.append("<p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(b)) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def to_pdf(cert: Certificate) -> bytes:
    """Render the HTML with xhtml2pdf (pure Python, on ReportLab): no browser or system library needed."""
    from xhtml2pdf import pisa  # type: ignore[import-untyped]

    buf = io.BytesIO()
    result = pisa.CreatePDF(to_html(cert), dest=buf, encoding="utf-8")
    if result.err:
        raise UsageError(f"could not render the certificate as PDF ({result.err} error(s))")
    return buf.getvalue()


def render(cert: Certificate, fmt: str) -> bytes:
    if fmt == "md":
        return to_markdown(cert).encode("utf-8")
    if fmt == "html":
        return to_html(cert).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(cert)
    raise UsageError(f"unknown certificate format {fmt!r}", hint="md, html or pdf")


def write(cert: Certificate, fmt: str, dest: Path) -> int:
    from store.fsutil import atomic_write_bytes

    data = render(cert, fmt)
    atomic_write_bytes(dest, data)
    return len(data)


__all__ = ["Certificate", "build", "log_issued", "render", "to_html", "to_markdown", "to_pdf", "write"]
