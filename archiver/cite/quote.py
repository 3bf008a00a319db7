"""Quote pinning: prove that an exact excerpt occurs in a record's normalised text, and where.

Matching ignores whitespace differences and the shape of quote marks (a brief typed with straight
quotes must find a policy set with curly ones), nothing else: case, words and punctuation must be
exactly the document's. The excerpt reported is the document's own text, not the user's typing.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import urllib.parse
from dataclasses import dataclass

from archiver.errors import QuoteNotFoundError

_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
           "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"'}
_SPACES = set(" \t\n\r\f\v\u00a0\u2007\u202f\u2009\u200a\u2002\u2003")


@dataclass(frozen=True, slots=True)
class QuoteMatch:
    excerpt: str  # exactly as in the record's text artifact
    sha256: str  # of the excerpt, UTF-8
    start: int  # character offsets into the text artifact
    end: int
    line: int
    section: str | None
    # with a main-text artifact: is the excerpt in the document's own text (True), or only in the
    # page around it, a banner or a menu (False)? The section then comes from the document's headings.
    in_document: bool | None = None

    def fragment(self) -> str:
        """A text fragment directive (``#:~:text=``) that browsers scroll to and highlight."""
        words = " ".join(self.excerpt.split()).split(" ")

        def enc(s: str) -> str:
            # the directive's syntax reserves "-", "," and "&": a literal one must be percent-encoded
            return urllib.parse.quote(s, safe="").replace("-", "%2D")

        if len(words) > 12:
            return f"#:~:text={enc(' '.join(words[:5]))},{enc(' '.join(words[-5:]))}"
        return f"#:~:text={enc(' '.join(words))}"


def _normalise(text: str) -> tuple[str, list[int]]:
    """Collapse whitespace runs to one space and straighten quotes; keep a map back to offsets."""
    out: list[str] = []
    index: list[int] = []
    in_space = False
    for i, ch in enumerate(text):
        if ch in _SPACES:
            if not in_space and out:
                out.append(" ")
                index.append(i)
            in_space = True
            continue
        in_space = False
        out.append(_QUOTES.get(ch, ch))
        index.append(i)
    if out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


def _looks_like_heading(line: str) -> bool:
    s = line.strip()
    return 0 < len(s) <= 90 and not s.endswith((".", ",", ";", ":")) and len(s.split()) <= 12


def find_quote(text: str, quote: str) -> QuoteMatch:
    nt, index = _normalise(text)
    nq, _ = _normalise(quote)
    if not nq:
        raise QuoteNotFoundError("the quote is empty")
    pos = nt.find(nq)
    if pos < 0:
        raise QuoteNotFoundError(f"the quote does not occur in the record's text; closest: “{closest(nt, nq)}”",
                                 hint="quote exactly; only whitespace and the shape of quote marks may differ")
    start, end = index[pos], index[pos + len(nq) - 1] + 1
    excerpt = text[start:end]
    line_no = text.count("\n", 0, start) + 1
    section = None
    lines = text[:start].split("\n")
    # the paragraph holding the match is lines[-1]; look above it for the nearest heading-like line
    for candidate in reversed(lines[:-1]):
        if _looks_like_heading(candidate):
            section = candidate.strip()
            break
    return QuoteMatch(excerpt=excerpt, sha256=hashlib.sha256(excerpt.encode("utf-8")).hexdigest(), start=start,
                      end=end, line=line_no, section=section)


def plain_markdown(md: str) -> str:
    """main-text as a reader sees it: link labels without their targets, headings without ``#``."""
    text = re.sub(r"\[([^\]]*)\]\([^)\s]*\)", r"\1", md)
    return re.sub(r"(?m)^# ", "", text)


def in_main_text(match: QuoteMatch, main_text: str, quote: str) -> QuoteMatch:
    """Place an excerpt found in the page's text within the document's own text (main-text)."""
    import dataclasses

    try:
        doc = find_quote(plain_markdown(main_text), quote)
    except QuoteNotFoundError:
        return dataclasses.replace(match, in_document=False)
    return dataclasses.replace(match, in_document=True, section=doc.section or match.section)


def closest(normalised_text: str, normalised_quote: str, *, limit: int = 20000) -> str:
    """The sentence (or line) of the text most like the quote: what the user probably meant."""
    pieces = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n", normalised_text) if p.strip()][:limit]
    best, best_ratio = "", 0.0
    for piece in pieces:
        m = difflib.SequenceMatcher(None, normalised_quote, piece, autojunk=False)
        if m.real_quick_ratio() <= best_ratio or m.quick_ratio() <= best_ratio:
            continue
        r = m.ratio()
        if r > best_ratio:
            best, best_ratio = piece, r
    return best if len(best) <= 400 else best[:400] + "…"


__all__ = ["QuoteMatch", "closest", "find_quote", "in_main_text", "plain_markdown"]
