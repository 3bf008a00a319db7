"""Re-finding a clause in a new version of its document: pure functions over text, no store.

A provision is looked for in the document's reading text (``main-text`` without link targets and
heading marks: ``cite.quote.plain_markdown``), section by section (``textdiff.split_sections``):

- **unchanged**: its text occurs, whitespace and quote shapes aside (the quote-pinning rule), in the
  section it was in;
- **moved**: the same words occur in another section;
- **changed**: nothing exact, but a passage of the same section is at least :data:`SIMILARITY`
  alike (words compared in lower case with ``difflib``); when that section is gone or holds nothing
  close, the closest passage of the whole document at that similarity (a clause moved *and* edited is
  changed, not removed, and the new section is recorded);
- **removed**: no passage of the document comes that close.

Passages are runs of whole sentences (cut at ``.!?`` and line ends) of up to about twice the clause's
length, trimmed to the part that lines up with the clause when much longer (a clause pinned as part of
a sentence is compared with that part: the similarity is that part's). A clause that ends (starts) a
sentence keeps the new text to the end (from the start) of its sentence, so words added at either end
are part of the new version. The new text is always the document's own characters.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from archiver.cite.quote import _normalise, plain_markdown
from archiver.textdiff import Section

#: How alike (difflib ratio over lower-cased words) a passage must be to count as the clause, changed.
SIMILARITY = 0.6
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True, slots=True)
class Found:
    """Where (and whether) a clause is in one version of the document."""

    status: str  # unchanged | moved | changed | removed
    text: str | None = None  # the document's own characters (None when removed)
    section: str | None = None  # heading ("" for text before the first heading)
    section_key: str | None = None
    similarity: float = 0.0


def norm(text: str) -> str:
    """Whitespace runs collapsed, quote marks straightened: what two texts are compared by."""
    return _normalise(text)[0]


def _words(text: str) -> list[str]:
    return norm(text).lower().split()


def holds(text: str, clause: str) -> bool:
    """Whether ``clause`` occurs in ``text`` (both normalised) as whole words: a clause that begins or
    ends with a letter must not sit inside a longer word, else "able to delete" would be found,
    unchanged, in "unable to delete" and "limited" in "unlimited" (a change of meaning missed)."""
    if not clause:
        return False
    lead = r"(?<!\w)" if re.match(r"\w", clause[0]) else ""
    tail = r"(?!\w)" if re.match(r"\w", clause[-1]) else ""
    return re.search(lead + re.escape(clause) + tail, text) is not None


def reading_text(section: Section) -> str:
    return plain_markdown(section.text)


def section_of(sections: list[Section], excerpt: str) -> Section | None:
    """The first section whose reading text holds ``excerpt`` (None when it spans sections)."""
    target = norm(excerpt)
    return next((s for s in sections if target in norm(reading_text(s))), None)


def _exact(text: str, excerpt: str) -> str:
    """``excerpt`` as it is written in ``text`` (known to occur there, whitespace and quotes aside)."""
    from archiver.cite.quote import find_quote

    return find_quote(text, excerpt).excerpt


def _passages(text: str, max_words: int) -> list[list[tuple[int, int, int]]]:
    """Runs of whole sentences of at most ``max_words`` words: (start, end, sentence number) per word."""
    sentences: list[list[tuple[int, int, int]]] = []
    pos = 0
    for piece in [*_SENTENCE_END.finditer(text), None]:
        end = piece.start() if piece else len(text)
        n = len(sentences)
        sent = [(pos + m.start(), pos + m.end(), n) for m in re.finditer(r"\S+", text[pos:end])]
        if sent:
            sentences.append(sent)
        pos = piece.end() if piece else len(text)
    out = []
    for i in range(len(sentences)):
        spans: list[tuple[int, int, int]] = []
        for j in range(i, len(sentences)):
            if spans and len(spans) + len(sentences[j]) > max_words:
                break
            spans = spans + sentences[j]
            out.append(spans)
    return out


def _trimmed(target: list[str], words: list[str]) -> tuple[int, int]:
    """The part of a passage that lines up with the clause, when the passage is much longer."""
    if len(words) <= 1.3 * len(target):
        return 0, len(words)
    blocks = [b for b in difflib.SequenceMatcher(None, target, words, autojunk=False).get_matching_blocks() if b.size]
    if not blocks:
        return 0, len(words)
    first, last = blocks[0], blocks[-1]
    start = max(0, first.b - first.a)
    end = min(len(words), last.b + last.size + (len(target) - last.a - last.size))
    return start, max(end, start + 1)


def closest(text: str, clause: str) -> tuple[float, str]:
    """The passage of ``text`` most like ``clause``: (similarity, the passage's own characters). A clause
    that ends a sentence keeps its new text to the end of that sentence, one that starts a sentence from
    its start (so words added at either end are part of the new text)."""
    target = _words(clause)
    if not target:
        return 0.0, ""
    whole_end = clause.rstrip()[-1:] in ".!?"
    whole_start = clause.lstrip()[:1].isupper()
    best, best_text = 0.0, ""
    for spans in _passages(text, 2 * len(target) + 10):
        words = [norm(text[a:b]).lower() for a, b, _n in spans]
        lo, hi = _trimmed(target, words)
        m = difflib.SequenceMatcher(None, target, words[lo:hi], autojunk=False)
        if m.real_quick_ratio() <= best or m.quick_ratio() <= best:
            continue
        r = m.ratio()  # judged on the part that lines up; the text reaches the sentence's ends
        if r > best:
            if whole_start:
                while lo > 0 and spans[lo - 1][2] == spans[lo][2]:
                    lo -= 1
            if whole_end:
                while hi < len(spans) and spans[hi][2] == spans[hi - 1][2]:
                    hi += 1
            best, best_text = r, text[spans[lo][0]:spans[hi - 1][1]]
    return best, best_text


def refind(clause: str, section_key: str | None, sections: list[Section], *,
           threshold: float = SIMILARITY) -> Found:
    """Where ``clause`` (last seen in the section ``section_key``) is in ``sections``: see the module."""
    target = norm(clause)
    texts = [(s, reading_text(s)) for s in sections]
    hits = [(s, t) for s, t in texts if holds(norm(t), target)]
    if hits:
        same = next(((s, t) for s, t in hits if s.key == section_key), None)
        s, t = same or hits[0]
        return Found("unchanged" if same else "moved", _exact(t, clause), s.heading, s.key, 1.0)
    home = [(s, t) for s, t in texts if s.key == section_key]
    for group in (home, [(s, t) for s, t in texts if s.key != section_key]):
        best: tuple[float, str, Section | None] = (0.0, "", None)
        for s, t in group:
            r, passage = closest(t, clause)
            if r > best[0]:
                best = (r, passage, s)
        if best[2] is not None and best[0] >= threshold:
            return Found("changed", best[1], best[2].heading, best[2].key, round(best[0], 4))
    return Found("removed")


__all__ = ["SIMILARITY", "Found", "closest", "norm", "reading_text", "refind", "section_of"]
