"""One exhibit PDF, unsigned: a cover sheet, the captured page as the person saw it, the certificate of
authenticity, and every page stamped with its Bates number in the footer.

What "as the person saw it" is, in order: the browser capture's print PDF (``pdf``); a captured PDF
document (``content`` whose type is ``application/pdf``: the document itself is what was seen); the
screenshot (``screenshot``, a full page cut into page-high slices); else the extracted text (``text``),
and the exhibit then says on its cover and in the report that no rendering was captured. A PDF or an
image that cannot be read falls through to the next with the reason. Nothing is written to the store
here: the evidentiary artifacts are read, never changed (the new PDF is a new file).

Pages are laid out with ReportLab and joined with pypdf (both already dependencies of the core); the
footer of every page, captured pages included, gets a white band with the exhibit label on the left
and the Bates number on the right, drawn over the page (an overlay merged onto it).
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import UsageError

if TYPE_CHECKING:
    from archiver.ports import VerifyingStore

PREFIX = re.compile(r"[A-Z0-9_.-]{0,20}")
DIGITS = 6
FOOTER = 30.0  # points kept clear at the bottom of our own pages for the Bates band


def bates(prefix: str, n: int) -> str:
    """``ABC000017``: the prefix and the number, zero-padded to six digits (more when it needs them)."""
    return f"{prefix}{n:0{DIGITS}d}"


def check_prefix(prefix: str) -> str:
    if not PREFIX.fullmatch(prefix):
        raise UsageError(f"Bates prefix {prefix[:30]!r} must be 0-20 of A-Z 0-9 . _ -")
    return prefix


@dataclass(frozen=True, slots=True)
class Facts:
    """What the cover sheet states, gathered from the store by the caller."""

    label: str
    matter: str
    record_id: str
    manifest_sha256: str
    citation: str
    provenance: tuple[tuple[str, str], ...]
    artifacts: tuple[tuple[str, str, int, str], ...]  # name, media type, size, sha256
    trusted_time: tuple[str, ...]
    source: str  # pdf | captured-pdf | screenshot | text
    source_note: str


@dataclass(frozen=True, slots=True)
class Assembled:
    data: bytes
    pages: int
    source: str
    source_note: str


def _styles() -> Any:
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    base = getSampleStyleSheet()
    return {
        "h1": ParagraphStyle("h1", parent=base["Heading1"], fontSize=20, spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontSize=11.5, spaceBefore=6, spaceAfter=2,
                             keepWithNext=1),
        "p": ParagraphStyle("p", parent=base["BodyText"], fontSize=9, leading=11.5),
        "small": ParagraphStyle("small", parent=base["BodyText"], fontSize=8, leading=10),
        "mono": ParagraphStyle("mono", parent=base["BodyText"], fontName="Courier", fontSize=7.2, leading=9),
        "text": ParagraphStyle("text", parent=base["BodyText"], fontName="Courier", fontSize=8, leading=10),
    }


def _esc(s: str) -> str:
    return html.escape(s, quote=False)


def _doc(buf: io.BytesIO, title: str) -> Any:
    from reportlab.lib.pagesizes import letter
    from reportlab.platypus import SimpleDocTemplate

    return SimpleDocTemplate(buf, pagesize=letter, leftMargin=50, rightMargin=50, topMargin=50,
                             bottomMargin=50 + FOOTER, title=title, author="archiver")


def cover(f: Facts) -> bytes:
    """The cover sheet: label, matter, citation, provenance, every artifact's SHA-256 (each on one line,
    so ``pdftotext`` gives it back whole), trusted time, what follows and how to verify."""
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    st = _styles()
    body: list[Any] = [Paragraph(_esc(f.label), st["h1"]),
                       Paragraph(f"Matter: <b>{_esc(f.matter)}</b> &nbsp; Record: <b>{_esc(f.record_id)}</b>", st["p"]),
                       Spacer(1, 6), Paragraph("Citation", st["h2"]), Paragraph(_esc(f.citation), st["p"]),
                       Paragraph("Provenance", st["h2"])]
    rows = [[Paragraph(f"<b>{_esc(k)}</b>", st["small"]), Paragraph(_esc(v), st["small"])] for k, v in f.provenance]
    t = Table(rows, colWidths=[110, 402])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                           ("TOPPADDING", (0, 0), (-1, -1), 1)]))
    body += [t, Paragraph("SHA-256 of every artifact", st["h2"])]
    arts = [[Paragraph(f"<b>{_esc(name)}</b> {_esc(media.split(';')[0])}, {size:,} bytes", st["small"]),
             Paragraph(sha, st["mono"])] for name, media, size, sha in f.artifacts]
    arts.append([Paragraph("<b>manifest</b> (signed)", st["small"]), Paragraph(f.manifest_sha256, st["mono"])])
    t = Table(arts, colWidths=[222, 290])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                           ("TOPPADDING", (0, 0), (-1, -1), 1)]))
    body.append(t)
    body.append(Paragraph("Trusted time (RFC 3161)", st["h2"]))
    for line in f.trusted_time or ("No timestamp token: the capture time rests on the capturing host's clock.",):
        body.append(Paragraph(_esc(line), st["small"]))
    body.append(Paragraph("What follows", st["h2"]))
    shown = {"pdf": "the page as the browser printed it at capture (the record's pdf artifact)",
             "captured-pdf": "the captured PDF document itself (the record's content artifact)",
             "screenshot": "the browser's screenshot of the page at capture (the record's screenshot artifact)",
             "text": "the page's extracted text (the record's text artifact)"}[f.source]
    body.append(Paragraph(_esc(f"The captured page as seen: {shown}. ") + _esc(f.source_note), st["small"]))
    body.append(Paragraph("Then the certificate of authenticity (FRE 902(13)/(14)) for this record.", st["small"]))
    body.append(Paragraph("How to verify", st["h2"]))
    for line in (f"1. Ask the holder for the record's bundle (archiver export {f.record_id} -o record.wacz) and run "
                 "archiver verify record.wacz: it recomputes every hash above and checks the manifest signature, "
                 "the timestamp tokens and the chain of custody, offline.",
                 "2. Hash any artifact with sha256sum and compare with the value above; the manifest's hash is what "
                 "the RFC 3161 token signs (openssl ts -verify -digest <manifest sha256> -in token.tsr).",
                 "3. This PDF is signed (PAdES) and carries an RFC 3161 document timestamp: pdfsig exhibit.pdf, or "
                 "any PDF reader's signature panel; a changed byte invalidates the signature.",
                 "4. The Bates number in each page's footer is recorded with this exhibit in the matter."):
        body.append(Paragraph(_esc(line), st["small"]))
    buf = io.BytesIO()
    _doc(buf, f"{f.label}: cover sheet").build(body)
    return buf.getvalue()


def text_pages(text: str, title: str) -> bytes:
    """The extracted text, one paragraph a line, in a monospaced face."""
    from reportlab.platypus import Paragraph, Spacer

    st = _styles()
    body: list[Any] = [Paragraph(_esc(title), st["h2"])]
    for line in text.splitlines():
        body.append(Paragraph(_esc(line), st["text"]) if line.strip() else Spacer(1, 5))
    buf = io.BytesIO()
    _doc(buf, title).build(body)
    return buf.getvalue()


def screenshot_pages(png: bytes) -> bytes:
    """The screenshot at the page's width, cut into slices a page high (a full-page capture is tall)."""
    from PIL import Image
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    img = Image.open(io.BytesIO(png))
    img.load()
    w, h = letter
    avail_w, avail_h = w - 72, h - 72 - FOOTER
    scale = avail_w / img.width
    slice_px = max(1, int(avail_h / scale))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter)
    c.setTitle("screenshot")
    for top in range(0, img.height, slice_px):
        part = img.crop((0, top, img.width, min(img.height, top + slice_px)))
        dh = part.height * scale
        c.drawImage(ImageReader(part), 36, h - 36 - dh, width=avail_w, height=dh)
        c.showPage()
    c.save()
    return buf.getvalue()


def _pdf_pages(data: bytes) -> int:
    from pypdf import PdfReader

    n = len(PdfReader(io.BytesIO(data), strict=False).pages)
    if n == 0:
        raise ValueError("the PDF has no pages")
    return n


def captured(store: VerifyingStore, record_id: str, blobs: dict[str, str], media: dict[str, str]) -> \
        tuple[bytes, str, str]:
    """(pages, source, note): the first rendering that can be read, in the order of the module docstring."""
    reasons: list[str] = []
    if "pdf" in blobs:
        data = store.blobs.read_bytes(blobs["pdf"])
        try:
            _pdf_pages(data)
            return data, "pdf", ""
        except Exception as exc:  # pypdf raises many types on a malformed file: the next rendering is used
            reasons.append(f"its pdf artifact could not be read ({type(exc).__name__})")
    if "content" in blobs and media.get("content", "").split(";")[0].strip() == "application/pdf":
        data = store.blobs.read_bytes(blobs["content"])
        try:
            _pdf_pages(data)
            return data, "captured-pdf", ""
        except Exception as exc:
            reasons.append(f"the captured PDF could not be read ({type(exc).__name__})")
    if "screenshot" in blobs:
        try:
            return screenshot_pages(store.blobs.read_bytes(blobs["screenshot"])), "screenshot", \
                ("; ".join(reasons) + ": the screenshot is shown instead.") if reasons else ""
        except Exception as exc:
            reasons.append(f"its screenshot could not be read ({type(exc).__name__})")
    if "text" not in blobs:
        raise UsageError(f"record {record_id} has no rendering and no extracted text to put in an exhibit")
    why = "; ".join(reasons) if reasons else "this record has no screenshot or PDF (it was not captured with a browser)"
    note = f"Fallback to text: {why}; its extracted text is shown instead."
    text = store.blobs.read_bytes(blobs["text"]).decode("utf-8", "replace")
    return text_pages(text, f"Extracted text of record {record_id}"), "text", note


def stamp(parts: list[bytes], *, label: str, footer: str, prefix: str, first: int) -> tuple[bytes, int]:
    """Join ``parts`` and stamp page i with Bates number ``first + i`` (returns the PDF and its page count)."""
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfgen import canvas

    writer = PdfWriter()
    for part in parts:
        for page in PdfReader(io.BytesIO(part), strict=False).pages:
            writer.add_page(page)
    over = io.BytesIO()
    c = canvas.Canvas(over)
    boxes = []
    for i, page in enumerate(writer.pages):
        if page.rotation:  # a rotated page: make the rotation part of its content, so the footer lands below
            page.transfer_rotation_to_content()
        box = page.mediabox
        x0, y0, w = float(box.left), float(box.bottom), float(box.width)
        boxes.append((x0, y0))
        c.setPageSize((x0 + w, y0 + float(box.height)))
        c.setFillColorRGB(1, 1, 1)
        c.rect(x0, y0, w, 22, stroke=0, fill=1)
        c.setFillColorRGB(0, 0, 0)
        c.setFont("Helvetica", 8)
        c.drawString(x0 + 24, y0 + 8, f"{label} · {footer}"[:110])
        c.setFont("Helvetica-Bold", 10)
        c.drawRightString(x0 + w - 24, y0 + 7, bates(prefix, first + i))
        c.showPage()
    c.save()
    stamps = PdfReader(io.BytesIO(over.getvalue())).pages
    for page, st in zip(writer.pages, stamps, strict=True):
        page.merge_page(st)
    writer.add_metadata({"/Title": f"{label} ({footer})", "/Producer": "archiver"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), len(writer.pages)


__all__ = ["Assembled", "Facts", "bates", "captured", "check_prefix", "cover", "screenshot_pages", "stamp",
           "text_pages"]
