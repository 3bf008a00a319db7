"""Sections and diffs of normalised text: what changed between two versions of a document.

Sections start at headings: the document's own h1–h6 when it was HTML, otherwise numbered or
Markdown-style heading lines. A section's identity (``key``) is its heading without numbering and
case, so "3. Sharing" and "4. Sharing" are the same clause after a renumbering.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import re
from dataclasses import asdict, dataclass
from typing import Any

_NUMBERED = re.compile(r"^(?:(?:section|article|§)\s*)?(?:\d+(?:\.\d+)*\.?|[ivxlc]+\.|[a-z]\))\s+\S", re.I)
_NUMBER_PREFIX = re.compile(r"^(?:(?:section|article|§)\s*)?(?:\d+(?:\.\d+)*\.?|[ivxlc]+\.|[a-z]\))\s+", re.I)
_MD_HEADING = re.compile(r"^#{1,6}\s+\S")


@dataclass(frozen=True, slots=True)
class Section:
    key: str  # stable identity: heading without numbering, lower-cased
    heading: str  # as written ("" for text before the first heading)
    text: str  # heading line and body
    sha256: str
    index: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def heading_key(heading: str) -> str:
    h = heading.strip().lstrip("#").strip()
    h = _NUMBER_PREFIX.sub("", h)
    return re.sub(r"\s+", " ", h).strip().rstrip(":").lower() or heading.strip().lower()


def html_headings(content: bytes) -> set[str]:
    """The h1–h6 texts of an HTML document, whitespace-normalised like the text artifact."""
    import lxml.etree
    import lxml.html

    try:
        doc = lxml.html.fromstring(content)
    except (ValueError, TypeError, lxml.etree.ParserError):
        return set()
    out = set()
    for el in doc.iter("h1", "h2", "h3", "h4", "h5", "h6"):
        text = re.sub(r"\s+", " ", "".join(str(t) for t in el.itertext())).strip()
        if text:
            out.add(text)
    return out


def _is_heading(line: str, headings: set[str] | None) -> bool:
    s = line.strip()
    if not s:
        return False
    if headings is not None:
        return s in headings
    if len(s) > 120 or s.endswith((".", ";", ",", ":")):
        return False
    return bool(_NUMBERED.match(s) or _MD_HEADING.match(s))


def split_sections(text: str, headings: set[str] | None = None) -> list[Section]:
    """Split normalised text at heading lines (``headings`` from HTML when known)."""
    blocks: list[tuple[str, list[str]]] = [("", [])]
    for line in text.split("\n"):
        if _is_heading(line, headings):
            blocks.append((line.strip(), [line]))
        else:
            blocks[-1][1].append(line)
    out: list[Section] = []
    seen: dict[str, int] = {}
    for heading, lines in blocks:
        body = "\n".join(lines).strip("\n")
        if not heading and not body.strip():
            continue
        key = heading_key(heading) if heading else "(preamble)"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:  # a repeated heading keeps its own identity
            key = f"{key} #{seen[key]}"
        out.append(Section(key=key, heading=heading, text=body,
                           sha256=hashlib.sha256(body.encode("utf-8")).hexdigest(), index=len(out)))
    return out


# ---- diffs ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SectionChange:
    key: str
    status: str  # added | removed | changed | moved | unchanged
    heading_a: str | None
    heading_b: str | None
    index_a: int | None
    index_b: int | None
    diff: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["diff"] = list(self.diff)
        return d


def diff_sections(a: list[Section], b: list[Section]) -> list[SectionChange]:
    """Match sections by key; report what was added, removed, changed or moved."""
    by_a = {s.key: s for s in a}
    by_b = {s.key: s for s in b}
    common = [k for k in (s.key for s in a) if k in by_b]
    order_b = sorted(common, key=lambda k: by_b[k].index)
    # a section "moved" when it is out of place in the longest common order of shared sections
    sm = difflib.SequenceMatcher(None, common, order_b, autojunk=False)
    in_place: set[str] = set()
    for block in sm.get_matching_blocks():
        in_place.update(common[block.a:block.a + block.size])
    out: list[SectionChange] = []
    for s in a:
        if s.key not in by_b:
            out.append(SectionChange(s.key, "removed", s.heading, None, s.index, None))
    for s in b:
        old = by_a.get(s.key)
        if old is None:
            out.append(SectionChange(s.key, "added", None, s.heading, None, s.index))
        elif old.sha256 != s.sha256 and _body(old) != _body(s):
            out.append(SectionChange(s.key, "changed", old.heading, s.heading, old.index, s.index,
                                     tuple(line_diff(old.text, s.text, context=1))))
        elif s.key not in in_place:
            out.append(SectionChange(s.key, "moved", old.heading, s.heading, old.index, s.index))
        else:
            out.append(SectionChange(s.key, "unchanged", old.heading, s.heading, old.index, s.index))
    return sorted(out, key=lambda c: (c.index_b if c.index_b is not None else (c.index_a or 0) - 0.5))


def _body(s: Section) -> str:
    """The section without its heading line: renumbering alone is not a change of the clause."""
    return s.text.split("\n", 1)[1] if s.heading and "\n" in s.text else ("" if s.heading else s.text)


def line_diff(a: str, b: str, *, context: int = 3, names: tuple[str, str] = ("a", "b")) -> list[str]:
    return [line.rstrip("\n") for line in difflib.unified_diff(a.split("\n"), b.split("\n"), names[0], names[1],
                                                               n=context, lineterm="")]


def word_ops(a: str, b: str) -> list[dict[str, Any]]:
    """Word-level edit operations (for JSON consumers)."""
    wa, wb = a.split(), b.split()
    ops = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        if tag != "equal":
            ops.append({"op": tag, "removed": " ".join(wa[i1:i2]), "added": " ".join(wb[j1:j2]),
                        "at_word_a": i1, "at_word_b": j1})
    return ops


def word_diff_html(a: str, b: str) -> tuple[str, str, str]:
    """(before, after, inline) as escaped HTML with ``<del>``/``<ins>`` around the words that changed."""
    wa, wb = re.split(r"(\s+)", a), re.split(r"(\s+)", b)
    before: list[str] = []
    after: list[str] = []
    inline: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        old, new = html.escape("".join(wa[i1:i2])), html.escape("".join(wb[j1:j2]))
        if tag == "equal":
            before.append(old)
            after.append(new)
            inline.append(new)
            continue
        if old:
            before.append(f"<del>{old}</del>")
            inline.append(f"<del>{old}</del>")
        if new:
            after.append(f"<ins>{new}</ins>")
            inline.append(f"<ins>{new}</ins>")
    return "".join(before), "".join(after), "".join(inline)


def html_diff(a: str, b: str, title_a: str, title_b: str, sections: list[SectionChange] | None = None) -> str:
    """A self-contained HTML page: word-level highlights, inline CSS, no scripts or external files."""
    wa, wb = re.split(r"(\s+)", a), re.split(r"(\s+)", b)
    parts = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        if tag == "equal":
            parts.append(html.escape("".join(wa[i1:i2])))
            continue
        if i2 > i1:
            parts.append(f"<del>{html.escape(''.join(wa[i1:i2]))}</del>")
        if j2 > j1:
            parts.append(f"<ins>{html.escape(''.join(wb[j1:j2]))}</ins>")
    summary = ""
    if sections is not None:
        rows = "".join(f"<tr class='{c.status}'><td>{c.status}</td><td>{html.escape(c.heading_b or c.heading_a or '')}"
                       f"</td></tr>" for c in sections if c.status != "unchanged")
        summary = f"<h2>Sections</h2><table>{rows or '<tr><td>no section changed</td></tr>'}</table>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Diff: {html.escape(title_a)} → {html.escape(title_b)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.5}}
pre{{white-space:pre-wrap;font-family:inherit}}del{{background:#fdd;color:#900}}ins{{background:#dfd;color:#060;
text-decoration:none}}td{{padding:2px 8px}}tr.added td{{background:#dfd}}tr.removed td{{background:#fdd}}
tr.changed td{{background:#ffd}}tr.moved td{{background:#def}}</style></head><body>
<h1>{html.escape(title_a)} → {html.escape(title_b)}</h1>{summary}
<h2>Text</h2><pre>{"".join(parts)}</pre></body></html>
"""


__all__ = ["Section", "SectionChange", "diff_sections", "heading_key", "html_diff", "html_headings", "line_diff",
           "split_sections", "word_diff_html", "word_ops"]
