"""The document's own text, by declaration: Open Terms Archive's ``select`` / ``remove`` CSS rules.

OTA semantics: keep the union of what the ``select`` selectors match, in document order (a match
inside another match counts once), then drop what the ``remove`` selectors match. A rule is a CSS
selector, a range (``{"startBefore" | "startAfter": css, "endBefore" | "endAfter": css}``: everything
between the two points, in document order), or a list of those.

The output keeps what a reader of the terms needs to compare versions: headings marked ``#``
whatever their level (a heading that changes level with the same words is not a change of the
document), link targets as ``[text](absolute URL)`` (a link that now points elsewhere is), list
items, and paragraphs separated by blank lines.

With nothing declared, ``automatic_text`` finds the document itself: the page's ``main`` /
``article`` region when it holds a fair share of the text, minus navigation, banners, footers,
dialogs, cookie-consent and newsletter boxes (by element, ARIA role, and class/id names) and
link-dense blocks such as tables of contents. On the corpus this beat the libraries built for it
(trafilatura keeps heading levels and promotes tables of contents to headings; readability-lxml
drops whole policies; resiliparse's main-content mode keeps no headings, so no sections):
``bench/bench_maintext.py`` measures all four.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from archiver.capture.extract import DROP_TAGS, normalize_text
from archiver.errors import UsageError

Rule = str | dict[str, str] | list[str | dict[str, str]]
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = frozenset("address article aside blockquote body caption dd details dialog div dl dt fieldset figcaption "
                    "figure footer form header hr main nav ol p pre section summary table tbody tfoot thead ul"
                    .split())
_WS = re.compile(r"[ \t\r\n\f\v]{2,}|[\t\r\n\f\v]")  # a lone space needs no replacing


def _rules(rule: Rule | None) -> list[str | dict[str, str]]:
    if rule is None:
        return []
    items = rule if isinstance(rule, list) else [rule]
    for r in items:
        ok = isinstance(r, str) or (isinstance(r, dict) and len(r) == 2
                                    and len({"startBefore", "startAfter"} & set(r)) == 1
                                    and len({"endBefore", "endAfter"} & set(r)) == 1
                                    and all(isinstance(v, str) for v in r.values()))
        if not ok:
            raise UsageError(f"unsupported selector rule {r!r}",
                             hint="a CSS selector, a range {startBefore|startAfter, endBefore|endAfter}, or a list")
    return list(items)


def _css(root: Any, sel: str) -> list[Any]:
    from lxml.cssselect import CSSSelector

    try:
        found: list[Any] = CSSSelector(sel, translator="html")(root)  # type: ignore[assignment]
        return found
    except Exception as exc:  # cssselect raises its own SelectorError tree
        raise UsageError(f"invalid CSS selector {sel!r}: {exc}") from exc


def _matches(root: Any, rules: list[str | dict[str, str]], order: dict[Any, int]) -> list[Any]:
    found: list[Any] = []
    for rule in rules:
        found += _css(root, rule) if isinstance(rule, str) else _range(root, rule, order)
    return found


def _range(root: Any, rule: dict[str, str], order: dict[Any, int]) -> list[Any]:
    """The elements wholly between a range's two points (the first match of each selector)."""
    def last(el: Any) -> int:
        return max((order[d] for d in el.iter()), default=order[el])

    start_sel = rule.get("startBefore") or rule["startAfter"]
    end_sel = rule.get("endBefore") or rule["endAfter"]
    starts, ends = _css(root, start_sel), _css(root, end_sel)
    if not starts or not ends:
        return []
    s, e = starts[0], ends[0]
    lo = order[s] if "startBefore" in rule else last(s) + 1
    hi = order[e] - 1 if "endBefore" in rule else last(e)
    if hi < lo:  # the end point comes first: OTA's versions then run to the end of the document
        hi = len(order)
    return [el for el in root.iter() if lo <= order[el] and last(el) <= hi]


def _parse(html: bytes, content_type: str | None) -> Any:
    import lxml.etree
    import lxml.html

    from archiver.capture.extract import _charset

    try:
        try:
            parser = lxml.html.HTMLParser(encoding=_charset(content_type), remove_comments=True, remove_pis=True)
            return lxml.html.document_fromstring(html, parser=parser)
        except (LookupError, ValueError):
            return lxml.html.document_fromstring(html, parser=lxml.html.HTMLParser(remove_comments=True))
    except (ValueError, lxml.etree.ParserError):  # an empty or unparseable document has no text
        return lxml.html.fromstring("<html><body></body></html>")


def _render(tops: list[Any], base_url: str) -> str:
    parts: list[str] = []
    for el in tops:
        _walk(el, parts, base_url)
        parts.append("\n\n")
    return normalize_text(re.sub(r"\n{3,}", "\n\n", "".join(parts)))


def declared_text(html: bytes, *, select: Rule | None, remove: Rule | None = None, base_url: str = "",
                  content_type: str | None = None) -> str:
    """The text of the declared part of a page; empty when the selectors match nothing."""
    root = _parse(html, content_type)
    body = root.find("body")
    order = {el: i for i, el in enumerate(root.iter())}
    chosen = _matches(root, _rules(select), order) if select else [body if body is not None else root]
    picked = set(chosen)
    tops = sorted((el for el in picked if not any(a in picked for a in el.iterancestors())), key=order.__getitem__)
    for el in _matches(root, _rules(remove), order):
        if el.getparent() is not None and (el in tops or any(a in picked for a in el.iterancestors())):
            if el in tops:
                tops.remove(el)
            else:
                el.drop_tree()
    return _render(tops, base_url)


def parse_rule(rule: str) -> str | dict[str, str]:
    """A rule as stored (a range travels as its JSON), checked: bad JSON or a bad range is bad input."""
    import json

    if not rule.lstrip().startswith("{"):
        return rule
    try:
        value = json.loads(rule)
    except ValueError as exc:
        raise UsageError(f"invalid range rule {rule!r}: {exc}",
                         hint='a range is JSON: {"startBefore": "h1", "endBefore": "footer"}') from exc
    checked = _rules(value)[0]
    if isinstance(checked, list):  # pragma: no cover - _rules of a dict is that dict
        raise UsageError(f"invalid range rule {rule!r}")
    return checked


def check_rules(select: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Refuse a declaration that could never extract anything (bad CSS, a malformed range) before it
    is saved, instead of at every capture; a selector valid here may still match nothing on a page."""
    import lxml.html

    root = lxml.html.fromstring("<html><body></body></html>")
    for r in select + remove:
        if not r.strip():
            raise UsageError("an empty selector rule", hint="give a CSS selector, or a range as JSON")
        rule = parse_rule(r)
        for sel in [rule] if isinstance(rule, str) else list(rule.values()):
            _css(root, sel)


def unmatched_selectors(html: bytes, select: tuple[str, ...], *,
                        content_type: str | None = None) -> list[tuple[str, str]]:
    """(rule, CSS selector) of every declared ``select`` rule that finds nothing on this page: a CSS
    rule that matches no element, or a range one of whose ends is missing. Any one of them means the
    declaration no longer describes the page, so what it extracts is not the document."""
    root = _parse(html, content_type)
    out: list[tuple[str, str]] = []
    for r in select:
        rule = parse_rule(r)
        if isinstance(rule, str):
            if not _css(root, rule):
                out.append((r, rule))
            continue
        for end in ("startBefore", "startAfter", "endBefore", "endAfter"):
            if end in rule and not _css(root, rule[end]):
                out.append((r, rule[end]))
    return out


# what made a declared main-text: "archiver.maintext" (no version) was before bold-paragraph headings
DECLARED_EXTRACTOR = "archiver.maintext/2"


# ---- automatic: the document without the page's chrome ---------------------------------------------
AUTOMATIC_EXTRACTOR = "archiver.maintext-auto/1"  # bump when the rules below change what they keep
_CHROME_TAGS = frozenset("nav aside form dialog button select svg iframe menu".split())
_CHROME_ROLES = frozenset("navigation banner contentinfo complementary dialog alertdialog search menu menubar "
                          "toolbar tablist status alert".split())
_CHROME_NAMES = re.compile(
    r"(?:^|[-_\s])(cookies?|consent|gdpr|onetrust|ot-sdk|didomi|cmp|qc-cmp2|truste|cookiebot|usercentrics|"
    r"sp_message|cc-window|cc-banner|newsletter|subscribe|breadcrumbs?|toc|table-of-contents|sidebar|share|social|"
    r"skip|navbar|nav|menu|footer|header|banner|modal|popup|overlay|advert|ads|promo)(?:$|[-_\s])", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def _sizes(root: Any) -> dict[Any, tuple[int, int, int]]:
    """(text length, link text length, link count) of every element, in one bottom-up pass."""
    sizes: dict[Any, tuple[int, int, int]] = {}
    for el in reversed(list(root.iter())):  # children before their parents
        if not isinstance(el.tag, str):
            continue
        if el.tag in DROP_TAGS:  # scripts and styles are not text a reader sees
            sizes[el] = (0, 0, 0)
            continue
        t, ln, n = len((el.text or "").strip()), 0, 0
        for c in el:
            t += len((c.tail or "").strip())
            if isinstance(c.tag, str):
                ct, cl, cn = sizes[c]
                t, ln, n = t + ct, ln + cl, n + cn
        sizes[el] = (t, t, n + 1) if el.tag == "a" else (t, ln, n)
    return sizes


def _is_chrome(el: Any, in_content: bool, size: tuple[int, int, int]) -> bool:
    tag = el.tag.lower()
    text, link_text, links = size
    if tag in _CHROME_TAGS or (tag in ("header", "footer") and not in_content):
        return True
    if (el.get("role") or "").lower() in _CHROME_ROLES or el.get("aria-hidden") == "true" \
            or el.get("aria-modal") == "true" or el.get("hidden") is not None \
            or _HIDDEN_STYLE.search(el.get("style") or ""):
        return True
    names = f"{el.get('id') or ''} {el.get('class') or ''}".strip()
    if names and _CHROME_NAMES.search(names):
        return True
    # link lists: tables of contents, menus, "related" boxes (a paragraph with links is prose)
    return links >= 3 and text > 0 and link_text / text >= 0.8 and tag not in ("p", "a")


def automatic_text(html: bytes, *, base_url: str = "", content_type: str | None = None) -> str:
    """The document's own text when nothing is declared.

    Nothing that holds over half of the chosen region's text is ever removed: a class name such as
    ``content-with-sidebar`` on the policy's own container must not empty the document."""
    root = _parse(html, content_type)
    body = root.find("body")
    body = body if body is not None else root
    sizes = _sizes(body)
    top = body
    regions = [el for el in body.iter("main", "article") if isinstance(el.tag, str)] + \
        [el for el in body.iter() if isinstance(el.tag, str) and el.get("role") == "main"]
    if regions:
        best = max(regions, key=lambda el: sizes[el][0])
        if sizes[best][0] >= 0.25 * sizes[body][0]:
            top = best
    limit = 0.5 * sizes[top][0]
    for el in list(top.iter()):
        if el is top or not isinstance(el.tag, str) or el.getparent() is None or sizes[el][0] > limit:
            continue
        in_content = top is not body or any(a.tag in ("main", "article") for a in el.iterancestors())
        if _is_chrome(el, in_content, sizes[el]):
            el.drop_tree()
    return _render([top], base_url)


def _inline(el: Any, base_url: str) -> str:
    parts: list[str] = []
    _children(el, parts, base_url, inline=True)
    return _WS.sub(" ", "".join(parts)).strip()


def _walk(el: Any, parts: list[str], base_url: str, inline: bool = False) -> None:
    tag = el.tag.lower() if isinstance(el.tag, str) else ""
    if tag in DROP_TAGS or el.get("hidden") is not None:
        if el.tail:
            parts.append(_WS.sub(" ", el.tail))
        return
    if (tag in _HEADINGS or (tag == "p" and _bold_heading(el))) and not inline:
        parts.append(f"\n\n# {_inline(el, base_url)}\n\n")
    elif tag == "a" and el.get("href") and not el.get("href", "").startswith(("javascript:", "#")):
        label = _inline(el, base_url)
        parts.append(f"[{label}]({urljoin(base_url, el.get('href').strip())})" if label else "")
    elif tag == "br":
        parts.append("\n")
    elif tag == "li" and not inline:
        parts.append(f"\n{_list_mark(el)} ")
        _children(el, parts, base_url, inline)
        parts.append("\n")
    elif tag in ("td", "th"):
        parts.append(" | ")
        _children(el, parts, base_url, inline)
    elif tag == "tr" and not inline:
        parts.append("\n")
        _children(el, parts, base_url, inline)
        parts.append("\n")
    elif tag in _BLOCKS and not inline:
        parts.append("\n\n")
        _children(el, parts, base_url, inline)
        parts.append("\n\n")
    else:
        _children(el, parts, base_url, inline)
    if el.tail:
        parts.append(_WS.sub(" ", el.tail))


def _list_mark(li: Any) -> str:
    """``N.`` for an item of an ordered list (as OTA's Markdown numbers it), ``-`` otherwise."""
    parent = li.getparent()
    if parent is None or not isinstance(parent.tag, str) or parent.tag.lower() != "ol":
        return "-"
    try:
        start = int(parent.get("start", "1"))
    except ValueError:
        start = 1
    items = [c for c in parent if isinstance(c.tag, str) and c.tag.lower() == "li"]
    return f"{start + items.index(li)}."


def _bold_heading(p: Any) -> bool:
    """A paragraph that is one short bold run, like ``<p><strong>4. Sharing</strong></p>``: where a
    page has no h1–h6, that is what a reader sees as a heading."""
    kids = [c for c in p if isinstance(c.tag, str)]
    if len(kids) != 1 or kids[0].tag not in ("b", "strong") or (p.text or "").strip() or (kids[0].tail or "").strip():
        return False
    words = " ".join("".join(kids[0].itertext()).split())
    return 0 < len(words) <= 120 and not words.endswith((".", ",", ";", ":"))


def _children(el: Any, parts: list[str], base_url: str, inline: bool) -> None:
    if el.text:
        parts.append(_WS.sub(" ", el.text))
    for child in el:
        _walk(child, parts, base_url, inline)


# ---- PDF: PDFium's text (word spacing as drawn), running headers and page numbers dropped ---------------
PDF_EXTRACTOR = "archiver.maintext-pdf/1"
_NUMBERED_LINE = re.compile(r"^(?:(?:section|article|§)\s*)?(?:\d+(?:\.\d+)*\.?|[IVXLC]+\.)\s+\S", re.I)
_BULLET = re.compile(r"^[●•▪◦\-–—*]\s")


def _pdf_lines(data: bytes) -> list[str]:
    from collections import Counter

    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UsageError(f"cannot read the PDF: {exc}") from exc
    pages = []
    for page in pdf:
        raw = page.get_textpage().get_text_bounded().replace("\r\n", "\n").replace("\r", "\n")
        pages.append([" ".join(x.split()) for x in raw.split("\n") if x.strip()])
    pdf.close()
    # a running header or footer is the same line (numbers aside) at the top or bottom of most pages
    edges: Counter[str] = Counter()
    for lines in pages:
        edges.update({re.sub(r"\d+", "#", x) for x in lines[:2] + lines[-2:]})
    running = {k for k, n in edges.items() if len(pages) > 2 and n >= len(pages) / 2}
    out = []
    for lines in pages:
        for i, line in enumerate(lines):
            key = re.sub(r"\d+", "#", line)
            if (i < 2 or i >= len(lines) - 2) and (key in running
                                                   or re.fullmatch(r"(page\s*)?#(\s*(/|of)\s*#)?", key, re.I)):
                continue
            out.append(line)
    return out


def pdf_main_text(data: bytes) -> str:
    """A PDF's text as paragraphs, numbered and capitalised heading lines marked ``#``.

    pypdf's text (the ``text`` artifact) loses word spacing differently in two renderings of the same
    words ("thatyou"), which made clauses look changed; PDFium places words as drawn."""
    lines = _pdf_lines(data)
    if not lines:
        return ""
    width = sorted(len(x) for x in lines)[len(lines) // 2]
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(" ".join(para))
            para.clear()

    for line in lines:
        caps = line.isupper() and len(line) <= 80 and sum(c.isalpha() for c in line) >= 4 and not line.endswith(".")
        if len(line) <= 120 and not line.endswith((",", ";")) and (_NUMBERED_LINE.match(line) or caps):
            flush()
            out.append("# " + line)
            continue
        if _BULLET.match(line):
            flush()
        para.append(line)
        if len(line) < 0.7 * width and line.endswith((".", ":", "!", "?", ";")):
            flush()
    flush()
    return normalize_text("\n\n".join(out))


# what this version can make again (verify re-derives only these; an older extractor is SKIPPED)
CURRENT_EXTRACTORS = frozenset({DECLARED_EXTRACTOR, AUTOMATIC_EXTRACTOR, PDF_EXTRACTOR})


def comparable_words(markdown: str) -> list[str]:
    """Words of a Markdown text without its markup, for comparing ours with OTA's."""
    text = re.sub(r"(?m)^[=-]{3,}\s*$", " ", markdown)  # setext heading underlines are heading markers
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets are compared separately
    text = re.sub(r"[#*_`>|\[\]\\]", " ", text)
    return text.split()


__all__ = ["AUTOMATIC_EXTRACTOR", "CURRENT_EXTRACTORS", "DECLARED_EXTRACTOR", "PDF_EXTRACTOR", "automatic_text",
           "check_rules", "comparable_words", "declared_text", "parse_rule", "pdf_main_text", "unmatched_selectors"]
