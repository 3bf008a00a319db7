"""Declared extraction (Open Terms Archive select/remove rules): semantics, and fidelity on the real corpus."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from archiver.capture.maintext import comparable_words, declared_text
from archiver.errors import UsageError

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"

PAGE = b"""<html><head><title>T</title></head><body>
<div id="cookie-banner"><h2>We value your privacy</h2><p>43 partners can use this purpose.</p></div>
<nav><a href="/">Home</a></nav>
<main><h1>Terms</h1><p>Read our <a href="/privacy">privacy policy</a>.</p>
<details><summary>Summary</summary>Short version.</details>
<h2>1. Fees</h2><ul><li>Free.</li><li>No ads.</li></ul></main>
<aside id="extra"><h2>Annex</h2><p>Annex text.</p></aside>
<footer>Newsletter</footer></body></html>"""


def text(page: bytes, **kw: object) -> str:
    return declared_text(page, base_url="https://example.org/terms", **kw)  # type: ignore[arg-type]


def test_select_union_in_document_order_then_remove() -> None:
    out = text(PAGE, select=["#extra", "main"], remove="details")
    assert out.index("# Terms") < out.index("# Annex")  # document order, not rule order
    assert "Short version" not in out and "partners" not in out and "Newsletter" not in out
    assert "[privacy policy](https://example.org/privacy)" in out  # link targets kept, absolute
    assert "- Free." in out and "# 1. Fees" in out


def test_what_is_and_is_not_a_change() -> None:
    base = text(PAGE, select="main")
    banner = PAGE.replace(b"43 partners", b"44 partners").replace(b"Home</a>", b"Start</a>")
    assert text(banner, select="main") == base  # cookie banner and navigation are not the document
    level = PAGE.replace(b"<h2>1. Fees</h2>", b"<h3>1. Fees</h3>")
    assert text(level, select="main") == base  # same words, another heading level
    link = PAGE.replace(b'href="/privacy"', b'href="/privacy-2026"')
    assert text(link, select="main") != base  # the link now points elsewhere


def test_range_selector_and_bad_rules() -> None:
    out = text(PAGE, select={"startBefore": "h1", "endBefore": "#extra"})
    assert out.startswith("# Terms") and "Annex" not in out and "partners" not in out
    out = text(PAGE, select={"startAfter": "nav", "endAfter": "#extra"})
    assert "Annex text." in out and "Home" not in out
    with pytest.raises(UsageError):
        text(PAGE, select={"start": "h1"})
    with pytest.raises(UsageError):
        text(PAGE, select="main >>> p")


def _declared_versions() -> list[tuple[str, Path, Path, dict[str, object]]]:
    if not (CORPUS / "manifest.json").is_file():
        return []
    out = []
    for e in json.loads((CORPUS / "manifest.json").read_text("utf-8")):
        html = CORPUS / e["dir"] / e["snapshot"]["file"]
        if html.suffix == ".html":
            out.append((f"{e['service']} {e['terms_type']} {html.stem}", html, CORPUS / e["dir"] / e["version"]["file"],
                        e["declaration"]))
    return out


@pytest.mark.skipif(not (CORPUS / "manifest.json").is_file(), reason="../shared/corpus is not beside the checkout")
def test_fidelity_to_open_terms_archive_on_the_corpus() -> None:
    """Word-sequence similarity of our declared text with OTA's own Markdown of the same snapshot."""
    scores = {}
    for name, html, md, decl in _declared_versions():
        ours = declared_text(html.read_bytes(), select=decl.get("select"), remove=decl.get("remove"),  # type: ignore[arg-type]
                             base_url=str(decl.get("fetch", "")))
        scores[name] = difflib.SequenceMatcher(None, comparable_words(ours), comparable_words(md.read_text("utf-8")),
                                               autojunk=False).ratio()
    print("\n".join(f"{v:.3f}  {k}" for k, v in sorted(scores.items(), key=lambda kv: kv[1])))
    assert len(scores) >= 30
    assert sum(scores.values()) / len(scores) >= 0.95
    assert min(scores.values()) >= 0.9, min(scores.items(), key=lambda kv: kv[1])
