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


def _page(banner: str = "43", link: str = "/privacy", level: str = "h2") -> bytes:
    return (PAGE.replace(b"43 partners", banner.encode() + b" partners").replace(b'href="/privacy"', f'href="{link}"'
            .encode()).replace(b"<h2>1. Fees</h2>", f"<{level}>1. Fees</{level}>".encode()))


def test_capture_with_declared_rules_adds_a_signed_main_text(archive, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from archiver.demo.server import SampleSite, send

    state = {"page": _page()}
    with SampleSite({"/terms": lambda h: send(h, 200, state["page"], "text/html; charset=utf-8")}) as site:
        s = ["--store", str(archive.root)]
        r = cli("capture", site.base_url + "/terms", "--select", "main", "--select", "#extra", "--remove", "details",
                "--json", *s)
        assert r.code == 0, r.err
        rec = json.loads(r.out)
        main = next(a for a in rec["artifacts"] if a["name"] == "main-text")
        assert main["media_type"].startswith("text/markdown")
        assert rec["capture"]["main_text"] == {"method": "declared", "select": ["main", "#extra"],
                                               "remove": ["details"], "extractor": "archiver.maintext"}
        body = archive.blobs.read_bytes(main["sha256"]).decode()
        assert "# 1. Fees" in body and "partners" not in body and "Short version" not in body
        v = cli("verify", rec["record_id"], "--json", *s)
        checks = {c["name"]: c["status"] for c in json.loads(v.out)["checks"]}
        assert v.code == 0 and checks["warc.main-text"] == "PASS" and checks["artifact.main-text"] == "PASS"
        assert cli("capture", site.base_url + "/terms", "--remove", "details", *s).code == 2  # remove needs select

        # a watch on the document's own text: banner and heading level are not changes, a link target is
        assert cli("watch", "add", site.base_url + "/terms", "--select", "main", "--remove", "details", *s).code == 0
        outcomes = []
        for page in (_page(), _page(banner="44"), _page(level="h3"), _page(link="/privacy-2026")):
            state["page"] = page
            run = cli("watch", "run", "--json", *s)
            outcomes.append(json.loads(run.out.splitlines()[-1])["results"][0]["outcome"])
        # first: the rules changed (the capture above also selected #extra); then banner and heading level
        # changes are not versions; the changed link target is
        assert outcomes == ["changed", "unchanged", "unchanged", "changed"], outcomes
        hist = json.loads(cli("history", site.base_url + "/terms", "--json", *s).out)
        assert hist["changes"] == 2 and len(hist["versions"][1]["record_ids"]) == 3
        a, b = hist["versions"][1]["record_ids"][-1], hist["versions"][2]["record_ids"][0]
        diff = cli("diff", a, b, "--sections", *s)
        assert "CHANGED" in diff.out and "Terms" in diff.out and "privacy-2026" in diff.out, diff.out


def test_import_ota_declaration(archive, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    decl = tmp_path / "Example.json"
    decl.write_text(json.dumps({"name": "Example", "terms": {
        "Privacy Policy": {"fetch": "https://example.org/privacy", "select": ["main", {"startBefore": "h1",
                                                                                      "endBefore": "footer"}],
                           "remove": ".cookie"},
        "Terms of Service": {"fetch": "https://example.org/terms", "select": "#terms"}}}))
    r = cli("watch", "import-ota", str(decl), "--every", "12h", "--json", "--store", str(archive.root))
    assert r.code == 0, r.err
    got = {w["document"]: w for w in json.loads(r.out)}
    assert got["Privacy Policy"]["select"] == ["main", '{"endBefore": "footer", "startBefore": "h1"}']
    assert got["Privacy Policy"]["remove"] == [".cookie"] and got["Terms of Service"]["entity"] == "Example"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "X", "terms": {"T": {"fetch": "https://example.org/t"}}}))
    assert cli("watch", "import-ota", str(bad), "--store", str(archive.root)).code == 2
