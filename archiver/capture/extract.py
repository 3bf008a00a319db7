"""Normalised text from HTML and PDF: the basis of change detection and quote pinning.

Normalisation must make the same words give the same bytes whatever the markup: scripts,
styles and hidden templates are dropped, block elements become line breaks, whitespace runs
collapse, text is Unicode NFC, and blank-line runs shrink to one. Heading levels and inline
emphasis leave no trace, so re-styling a page is not a change of its text.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from archiver.errors import CaptureError

BLOCK_TAGS = frozenset(
    "address article aside blockquote body br caption dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody td tfoot th "
    "thead tr ul title option legend".split())
DROP_TAGS = frozenset("script style noscript template svg canvas iframe object head".split())

# Whitespace other than a plain space that folds into one: tab, form feed, vertical tab, no-break
# and the Unicode spaces (U+2000..U+200B, narrow no-break, medium mathematical, ideographic).
_OTHER_WS = "\t\f\v\u00a0" + "".join(map(chr, range(0x2000, 0x200C))) + "\u202f\u205f\u3000"
# Literal two spaces first: the regex engine then skips ahead to each candidate with a fast search,
# where a character class (or ` {2,}`) tests every position (4x slower on corpus pages).
_SPACES = re.compile("  +")
_BLANK_LINES = re.compile("\n\n\n+")


@dataclass(frozen=True, slots=True)
class Extracted:
    text: str
    title: str | None
    document_date: str | None
    kind: str  # "html" | "pdf" | "text"


def normalize_text(raw: str) -> str:
    text = unicodedata.normalize("NFC", raw)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00ad", "").replace("\ufeff", "")
    for ws in _OTHER_WS:  # each is absent from most pages: a C-level search, no replace
        if ws in text:
            text = text.replace(ws, " ")
    lines = [line.strip() for line in _SPACES.sub(" ", text).split("\n")]
    # blank-line runs shrink to one, none at either end
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text else ""


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.I)
    return m.group(1) if m else None


def html_text(data: bytes, content_type: str | None = None) -> tuple[str, str | None]:
    import lxml.etree
    import lxml.html

    charset = _charset(content_type)
    # lxml.etree's parser, not lxml.html's: the same tree without a Python class lookup per element
    # (a tenth of the extraction time on corpus pages)
    try:
        parser = lxml.etree.HTMLParser(encoding=charset, remove_comments=True, remove_pis=True)
        root = lxml.html.document_fromstring(data, parser=parser)
    except (LookupError, ValueError, lxml.etree.ParserError):
        parser = lxml.etree.HTMLParser(remove_comments=True, remove_pis=True)
        try:
            root = lxml.html.document_fromstring(data, parser=parser)
        except (ValueError, lxml.etree.ParserError):
            return "", None
    title_el = root.find(".//title")
    title = normalize_text("".join(str(t) for t in title_el.itertext())).strip() if title_el is not None else None
    body = root.find("body")
    node = body if body is not None else root
    text = _marked_text(node)
    if text is None:
        text = _walked_text(node)
    return normalize_text(text), title or None


# Block breaks are marked with a private-use character while libxml2 serialises the text: the tree is
# edited in place (hidden elements renamed and stripped with the others, a mark at the start and end of
# every block) and ``tostring(method="text")`` then walks it in C. A page that itself contains the
# mark takes the Python walk instead; both give the same text (tests/test_extract.py).
_MARK = "\ue000"
_BLOCKS = tuple(sorted(BLOCK_TAGS))
_DROPS = tuple(sorted(DROP_TAGS))


def _marked_text(node: Any) -> str | None:
    import lxml.etree

    if _MARK in lxml.etree.tostring(node, method="text", encoding=str, with_tail=True):
        return None
    for el in node.iterfind(".//*[@hidden]"):
        el.tag = "script"  # dropped with its content, its tail kept: as the walk treats hidden elements
    if node.get("hidden") is not None:
        return node.tail or ""
    lxml.etree.strip_elements(node, *_DROPS, with_tail=False)
    for pre in node.iter("pre"):  # newlines inside <pre> are line breaks, elsewhere just spaces
        for el in pre.iter():
            if el.text:
                el.text = el.text.replace("\n", _MARK)
            if el is not pre and el.tail:
                el.tail = el.tail.replace("\n", _MARK)
    for el in node.iter(*_BLOCKS):
        el.text = _MARK + (el.text or "")
        el.tail = _MARK + (el.tail or "")
    text = lxml.etree.tostring(node, method="text", encoding=str, with_tail=True)
    return text.replace("\n", " ").replace("\r", " ").replace(_MARK, "\n")


def _walked_text(node: Any) -> str:
    parts: list[str] = []

    def flat(text: str, pre: bool) -> str:
        # In HTML a newline inside running text is just a space; only blocks break lines.
        if pre or not ("\n" in text or "\t" in text or "\r" in text or "  " in text or "\f" in text
                       or "\v" in text):
            return text  # the common case, without a regex call per text node
        return _INLINE_WS.sub(" ", text)

    def walk(el: Any, pre: bool = False) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        tag = tag.lower()
        if tag in DROP_TAGS or el.get("hidden") is not None:
            if el.tail:
                parts.append(flat(el.tail, pre))
            return
        block = tag in BLOCK_TAGS
        inner_pre = pre or tag == "pre"
        if block:
            parts.append("\n")
        if el.text:
            parts.append(flat(el.text, inner_pre))
        for child in el:
            walk(child, inner_pre)
        if block:
            parts.append("\n")
        if el.tail:
            parts.append(flat(el.tail, pre))

    walk(node)
    return "".join(parts)


# Whitespace runs that need folding: a single plain space is already right, and replacing every one
# of them was most of the regex time.
_INLINE_WS = re.compile(r"[ \t\r\n\f\v]{2,}|[\t\r\n\f\v]")


def reflow(text: str) -> str:
    """Join a PDF's wrapped lines into paragraphs, so re-wrapping is not a change."""
    paragraphs = [" ".join(block.split("\n")) for block in text.split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p.strip())


def pdf_text(data: bytes) -> tuple[str, str | None]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [reflow(normalize_text(page.extract_text(extraction_mode="layout") or ""))
                 for page in reader.pages]
        meta = reader.metadata
        title = str(meta.title).strip() if meta is not None and meta.title else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise CaptureError(f"cannot extract text from the PDF: {exc}") from exc
    return normalize_text("\n\n".join(pages)), title or None


_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_DATE_LABEL = (r"(?:last\s+(?:updated?|modified|revised)|effective(?:\s+date)?|updated|revised"
               r"|date\s+of\s+last\s+revision)")
_LEAD = r"\s*(?:on|as\s+of)?\s*[:\-–]?\s*"
_LABEL = re.compile(_DATE_LABEL, re.I)
_LABEL_WORDS = ("last", "effective", "update", "revised", "date")  # every label starts with one
_DATE_PATTERNS = (
    re.compile(_DATE_LABEL + _LEAD + r"(?P<m>[A-Za-z]+)\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})", re.I),
    re.compile(_DATE_LABEL + _LEAD + r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?P<m>[A-Za-z]+)\.?,?\s+(?P<y>\d{4})", re.I),
    re.compile(_DATE_LABEL + _LEAD + r"(?P<y>\d{4})-(?P<mn>\d{2})-(?P<d>\d{2})", re.I),
)


def find_document_date(text: str) -> str | None:
    """The date a document states for itself ("Last updated: May 5, 2026"), as ISO 8601."""
    head = text[:20000]
    end = 0
    for start in _label_starts(head):
        label = _LABEL.match(head, start) if start >= end else None  # labels never overlap (as finditer)
        if label is None:
            continue
        end = label.end()
        for pat in _DATE_PATTERNS:
            m = pat.match(head, label.start())
            if not m:
                continue
            groups = m.groupdict()
            try:
                month = int(groups["mn"]) if groups.get("mn") else _month(groups["m"])
                if month is None:
                    continue
                return date(int(groups["y"]), month, int(groups["d"])).isoformat()
            except ValueError:
                continue
    return None


def _label_starts(head: str) -> list[int]:
    """Where a date label may start, in order: every label begins with one of a few words, and a plain
    search for them costs a fraction of a case-insensitive regex scan (50 ns a character). Where case
    folding changes lengths or lets another letter match (ſ, ı, İ), every position is a candidate."""
    low = head.lower()
    if len(low) != len(head) or any(c in head for c in "\u017f\u0131\u0130"):
        return [m.start() for m in _LABEL.finditer(head)]
    starts = []
    for word in _LABEL_WORDS:
        i = low.find(word)
        while i >= 0:
            starts.append(i)
            i = low.find(word, i + 1)
    return sorted(set(starts))


def _month(name: str) -> int | None:
    low = name.lower()
    for full, num in _MONTHS.items():
        if len(low) >= 3 and full.startswith(low):
            return num
    return None


def sniff_kind(data_head: bytes, media_type: str) -> str | None:
    mt = media_type.lower()
    if mt == "application/pdf" or data_head.startswith(b"%PDF-"):
        return "pdf"
    if mt in ("text/html", "application/xhtml+xml"):
        return "html"
    if mt.startswith("text/"):
        return "text"
    head = data_head[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def extract(data: bytes, media_type: str, content_type: str | None) -> Extracted | None:
    kind = sniff_kind(data[:1024], media_type)
    if kind is None:
        return None
    if kind == "pdf":
        text, title = pdf_text(data)
    elif kind == "html":
        text, title = html_text(data, content_type)
    else:
        text, title = normalize_text(data.decode(_charset(content_type) or "utf-8", errors="replace")), None
    return Extracted(text=text, title=title, document_date=find_document_date(text), kind=kind)
