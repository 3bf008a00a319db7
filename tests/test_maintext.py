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
                                               "remove": ["details"], "extractor": "archiver.maintext/2"}
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
        # first: only the rules changed (the capture above also selected #extra): the older record is read
        # under the new rules (issue 31), so not a version; banner and heading level changes are not
        # versions either; the changed link target is
        assert outcomes == ["unchanged", "unchanged", "unchanged", "changed"], outcomes
        hist = json.loads(cli("history", site.base_url + "/terms", "--json", *s).out)
        assert hist["changes"] == 1 and len(hist["versions"][0]["record_ids"]) == 4
        a, b = hist["versions"][0]["record_ids"][-1], hist["versions"][1]["record_ids"][0]
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
    bad.write_text(json.dumps({"name": "X", "terms": {"T": {"fetch": "https://example.org/t", "select": "div[["}}}))
    assert cli("watch", "import-ota", str(bad), "--store", str(archive.root)).code == 2
    # no select rule (OTA's PDF declarations): the text is found automatically (issue 31)
    pdf = tmp_path / "pdf.json"
    pdf.write_text(json.dumps({"name": "X", "terms": {"T": {"fetch": "https://example.org/t.pdf"}}}))
    r = cli("watch", "import-ota", str(pdf), "--json", "--store", str(archive.root))
    assert r.code == 0 and json.loads(r.out)[0]["select"] == []


# ---- automatic main content (nothing declared) -------------------------------------------------------
CHROME = """<html><head><title>Privacy</title></head><body>
<header class="site-header"><a href="/">Example</a> <a href="/blog">Blog</a> <a href="/jobs">Jobs</a></header>
<nav aria-label="Site navigation"><h2>Site navigation</h2><ul><li><a href="/a">A</a></li><li><a href="/b">B</a></li>
<li><a href="/c">{nav}</a></li></ul></nav>
<div id="onetrust-banner-sdk" class="otFlat"><h3>We Care About Your Privacy</h3>
<p>{partners} partners can use this purpose.</p><button>Accept all</button></div>
<div class="layout content-with-sidebar">
<div class="toc"><a href="#one">One</a> <a href="#two">Two</a> <a href="#three">Three</a></div>
<article><h1>Privacy Policy</h1><p>We collect what you give us. See <a href="/cookies">{target}</a>.</p>
<h2 id="one">1. Data we collect</h2><p>Your e-mail address.</p>
<{level} id="two">2. Sharing</{level}><p>{sharing}</p></article></div>
<div class="newsletter"><h2>Subscribe to our newsletter</h2><p>Weekly news.</p></div>
<footer><h2>Resources</h2><a href="/terms">Terms</a> <a href="/help">Help</a> <a href="/status">Status</a></footer>
</body></html>"""


def chrome_page(partners: str = "43", nav: str = "C", target: str = "cookie policy", level: str = "h2",
                sharing: str = "We never sell data.") -> bytes:
    return CHROME.format(partners=partners, nav=nav, target=target, level=level, sharing=sharing).encode()


def test_automatic_text_keeps_the_document_and_drops_the_chrome() -> None:
    from archiver.capture.maintext import automatic_text

    got = automatic_text(chrome_page(), base_url="https://example.org/privacy")
    assert got.split("\n\n")[0] == "# Privacy Policy"
    assert "[cookie policy](https://example.org/cookies)" in got and "# 2. Sharing" in got
    for chrome in ("Site navigation", "We Care About Your Privacy", "partners", "newsletter", "Resources", "Blog",
                   "Three"):
        assert chrome not in got, chrome
    # banner, navigation and heading level are not changes of the document; words and link targets are
    same = {automatic_text(chrome_page(**kw)) for kw in ({}, {"partners": "44"}, {"nav": "Careers"},
                                                          {"level": "h3"})}
    assert len(same) == 1
    assert automatic_text(chrome_page(target="cookie notice")) not in same
    assert automatic_text(chrome_page(sharing="We sell data.")) not in same
    # a class name like "content-with-sidebar" on the document's own container never empties it
    assert "Your e-mail address" in got
    assert automatic_text(b"") == "" and automatic_text(b"<p>only</p>") == "only\n"


def test_watch_without_declaration_ignores_banner_and_navigation(archive, cli) -> None:  # type: ignore[no-untyped-def]
    from archiver.demo.server import SampleSite, send

    state = {"page": chrome_page()}
    with SampleSite({"/privacy": lambda h: send(h, 200, state["page"], "text/html; charset=utf-8")}) as site:
        s = ["--store", str(archive.root)]
        url = site.base_url + "/privacy"
        assert cli("watch", "add", url, *s).code == 0
        outcomes, sections = [], []
        for page in (chrome_page(), chrome_page(partners="44"), chrome_page(nav="Careers", partners="12"),
                     chrome_page(sharing="We sell data.", partners="13")):
            state["page"] = page
            run = cli("watch", "run", "--json", *s)
            result = json.loads(run.out.splitlines()[-1])["results"][0]
            outcomes.append(result["outcome"])
            sections.append(result["sections"])
        assert outcomes == ["new", "unchanged", "unchanged", "changed"], outcomes
        assert sections[-1] == ["2. Sharing"]
        rec = json.loads(cli("show", result["record_id"], "--json", *s).out)
        assert rec["capture"]["main_text"]["method"] == "automatic"
        assert rec["capture"]["main_text"]["extractor"].startswith("archiver.maintext-auto/")
        v = json.loads(cli("verify", result["record_id"], "--json", *s).out)
        assert v["ok"], v


def test_derive_gives_old_records_main_text_as_a_signed_addendum(archive, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from archiver.demo.server import SampleSite, send

    state = {"page": chrome_page()}
    with SampleSite({"/privacy": lambda h: send(h, 200, state["page"], "text/html; charset=utf-8")}) as site:
        s = ["--store", str(archive.root)]
        url = site.base_url + "/privacy"
        old = json.loads(cli("capture", url, "--json", *s).out)  # a capture from before main-text
        assert not any(a["name"] == "main-text" for a in old["artifacts"])
        rid = old["record_id"]
        assert cli("derive", *s).code == 2  # nothing named
        r = cli("derive", rid, "--json", *s)
        assert r.code == 0, r.err
        got = json.loads(r.out)[0]
        assert got["outcome"] == "derived" and got["method"] == "automatic"
        assert json.loads(cli("derive", rid, "--json", *s).out)[0]["outcome"] == "present"
        manifest_before = json.loads(cli("show", rid, "--json", *s).out)
        assert not any(a["name"] == "main-text" for a in manifest_before["artifacts"])  # the manifest is untouched
        out = tmp_path / "main.md"
        assert cli("get", rid, "main-text", "-o", str(out), *s).code == 0
        assert out.read_bytes() == archive.blobs.read_bytes(got["sha256"])
        assert "We Care About Your Privacy" not in out.read_text()
        v = json.loads(cli("verify", rid, "--json", *s).out)
        checks = {c["name"]: c["status"] for c in v["checks"]}
        assert v["ok"] and checks["derived.1.addendum"] == "PASS" and checks["derived.1.main-text"] == "PASS"
        assert checks["derived.1.derivation"] == "PASS"

        # the bundle carries it; the other side checks it with the content from the WARC
        wacz = tmp_path / "b.wacz"
        assert cli("export", rid, "-o", str(wacz), *s).code == 0
        pub = str(archive.root / "keys" / "signing.pub.pem")
        bv = json.loads(cli("verify", str(wacz), "--json", "--trust-key", pub).out)
        bchecks = {c["name"]: c["status"] for rec in bv["reports"] for c in rec["checks"]}
        assert bchecks["derived.1.main-text"] == "PASS" and bchecks["derived.1.derivation"] == "PASS", bchecks

        # a watch started later compares document with document: the old record gets its text first
        cli("watch", "add", url, *s)
        state["page"] = chrome_page(partners="99")
        run = json.loads(cli("watch", "run", "--json", *s).out.splitlines()[-1])
        assert run["results"][0]["outcome"] == "unchanged"

        # altering the derived text is caught
        path = archive.blobs.path(got["sha256"])
        path.chmod(0o644)
        path.write_bytes(path.read_bytes().replace(b"e-mail", b"postal"))
        v = json.loads(cli("verify", rid, "--json", *s).out)
        checks = {c["name"]: c["status"] for c in v["checks"]}
        assert not v["ok"] and checks["derived.1.main-text"] == "FAIL"


def test_quotes_are_placed_in_the_document_or_on_the_page_around_it(archive, cli) -> None:  # type: ignore[no-untyped-def]
    from archiver.demo.server import SampleSite, send

    with SampleSite({"/privacy": lambda h: send(h, 200, chrome_page(), "text/html; charset=utf-8")}) as site:
        s = ["--store", str(archive.root)]
        rec = json.loads(cli("capture", site.base_url + "/privacy", "--main-content", "--json", *s).out)
        assert rec["capture"]["main_text"]["method"] == "automatic"
        rid = rec["record_id"]
        doc = cli("cite", rid, "--quote", "We never sell data.", *s)
        assert doc.code == 0, doc.err
        assert "section “2. Sharing”" in doc.out and "(in the document's own text)" in doc.out
        # a link label in the middle of the quote still matches (main-text keeps the target apart)
        assert "in the document's own text" in cli("cite", rid, "--quote", "See cookie policy.", *s).out
        banner = cli("cite", rid, "--quote", "43 partners can use this purpose.", *s)
        assert banner.code == 0 and "(on the page, outside the document's own text)" in banner.out
        # the record page shows the document's sections as text a reader can select, not Markdown
        from archiver.evidence import provenance

        shown = {v.heading: v.text for v in provenance(archive, rid).sections}
        assert shown["Privacy Policy"].startswith("Privacy Policy\n")
        assert "See cookie policy." in shown["Privacy Policy"] and "](" not in shown["Privacy Policy"]
