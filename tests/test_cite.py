"""Citations: golden files for every style, CSL-JSON schema validation, quote pinning, certificates."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from archiver.api import Archive
from archiver.cite import STYLES, citation_data, clean_title, render
from archiver.cite.quote import find_quote
from archiver.cite.styles import CitationData, bibtex_key, csl_item
from archiver.demo.server import SampleSite
from archiver.errors import QuoteNotFoundError
from archiver.options import CaptureOptions

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "citations"
SCHEMA = json.loads((DATA / "csl-data.json").read_text("utf-8"))

HARD_TITLE = 'Privacy & "Data_Use" Policy {v2} at 100% — café, naïve, 東京 ~ ^ $ # \\'
VARIANTS = {
    "dated-wayback": CitationData(
        record_id="7KQ2-M9XD", entity="Example & Sons {Labs}", document="Privacy Policy", title=HARD_TITLE,
        site="Example & Sons {Labs}", url="https://example.org/privacy?a=1&b=2",
        final_url="https://www.example.org/legal/privacy_policy", captured=dt.datetime(2026, 11, 23, 13, 11, 19,
                                                                                       tzinfo=dt.UTC),
        content_sha256="ab" * 32, key_id="sha256:" + "cd" * 32, document_date=dt.date(2026, 5, 5),
        archive_url="https://web.archive.org/web/20261123131500/https://www.example.org/legal/privacy_policy",
        archive_name="Wayback Machine", archive_date=dt.date(2026, 11, 23),
        wayback_url="https://web.archive.org/web/20261123131500/https://www.example.org/legal/privacy_policy",
        wayback_timestamp="20261123131500", wayback_verdict="identical", tsa_name="Example TSA",
        gen_time="2026-11-23T13:11:20.000Z", verified=True, verify_detail="18 checks"),
    "undated-nowayback": CitationData(
        record_id="9PZT-4HQE", entity="Example Inc.", document="Terms of Service", title="Terms of Service",
        site="Example Inc.", url="https://example.com/terms", final_url="https://example.com/terms",
        captured=dt.datetime(2026, 9, 2, 8, 0, 0, tzinfo=dt.UTC), content_sha256="01" * 32,
        key_id="sha256:" + "ef" * 32),
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_golden(style: str, variant: str) -> None:
    out = render(VARIANTS[variant], style)
    ext = {"csl-json": "json", "bibtex": "bib", "ris": "ris", "markdown": "md"}.get(style, "txt")
    path = GOLDEN / f"{variant}.{style}.{ext}"
    if os.environ.get("ARCHIVER_REGEN_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out, "utf-8")
    assert out == path.read_text("utf-8"), f"{path.name} differs (regenerate with ARCHIVER_REGEN_GOLDEN=1)"
    assert "None" not in out


def test_style_rules() -> None:
    dated, undated = VARIANTS["dated-wayback"], VARIANTS["undated-nowayback"]
    assert render(dated, "bluebook").endswith(f"(May 5, 2026), {dated.final_url} [{dated.archive_url}].\n")
    assert render(undated, "bluebook") == ("Terms of Service, Example Inc., https://example.com/terms "
                                           "(last visited Sept. 2, 2026).\n")
    assert "Retrieved November 23, 2026, from https://web.archive.org/" in render(dated, "apa")
    assert "(n.d.)" in render(undated, "apa")
    assert "archived November 23, 2026, at the Wayback Machine, https://web.archive.org/" in render(dated,
                                                                                                   "chicago-note")
    assert "Accessed 2 Sept. 2026." in render(undated, "mla")
    bib = render(dated, "bibtex")
    assert 'Privacy \\& "Data\\_Use" Policy \\{v2\\} at 100\\%' in bib
    unescaped = bib.replace(r"\{", "").replace(r"\}", "")
    depth = 0
    for ch in unescaped:  # braces balance once the escaped ones are set aside
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert re.fullmatch(r"[a-z0-9_A-Z]+", bibtex_key(dated)) and bibtex_key(dated) != bibtex_key(undated)
    md = render(dated, "markdown")
    assert r"\{v2\}" in md and r"Data\_Use" in md
    assert "archive" not in csl_item(undated)  # no archive link is ever invented


def test_csl_json_validates_against_the_csl_schema(archive: Archive, site: SampleSite) -> None:
    for c in VARIANTS.values():
        jsonschema.validate(json.loads(render(c, "csl-json")), SCHEMA)
    m = archive.capture(site.base_url + "/plain", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    items = json.loads(render(citation_data(archive, m.record_id), "csl-json"))
    jsonschema.validate(items, SCHEMA)
    bad = [{**items[0], "sha256": "not a CSL field"}]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_quote_pinning_on_the_demo_policy(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    m = archive.capture(site.base_url + "/plain", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    s = ["--store", str(archive.root)]
    sentence = "Even if you opt-out, we will use Inputs and Outputs for model improvement when"
    r = cli("cite", m.record_id, "--quote", sentence, "--json", *s)
    assert r.code == 0, r.err
    q = json.loads(r.out)["quote"]
    text = (archive.root.parent / "t.txt")
    archive.get(m.record_id, "text", text)
    body = text.read_text("utf-8")
    assert body[q["start"]:q["end"]] == q["excerpt"]
    assert q["section"] == "2. How we use information"
    assert q["fragment"] == ("#:~:text=Even%20if%20you%20opt%2Dout%2C%20we,"
                              "Outputs%20for%20model%20improvement%20when")
    # whitespace and quote shapes may differ; words may not
    r = cli("cite", m.record_id, "--quote", "Even  if you\nopt-out,   we will use Inputs", *s)
    assert r.code == 0 and "Excerpt:" in r.out
    altered = "Even if you opt-out, we will never use Inputs and Outputs for model improvement"
    r = cli("cite", m.record_id, "--quote", altered, *s)
    assert r.code == 1
    assert "does not occur" in r.err and "Even if you opt-out, we will use Inputs" in r.err


def test_quote_matching_ignores_whitespace_and_quote_marks() -> None:
    text = "Terms\n\nWe “may” share\ndata with  partners’ affiliates.\n"
    m = find_quote(text, 'We "may" share data with partners\' affiliates')
    assert m.excerpt == "We “may” share\ndata with  partners’ affiliates" and m.section == "Terms"
    with pytest.raises(QuoteNotFoundError):
        find_quote(text, "We may share data")


def test_fallbacks_never_print_none(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    m = archive.capture(site.base_url + "/terms.pdf")  # no --entity, no --document
    for style in STYLES:
        r = cli("cite", m.record_id, "--style", style, "--store", str(archive.root))
        assert r.code == 0 and "None" not in r.out and "null" not in r.out, (style, r.out)
    data = citation_data(archive, m.record_id)
    assert data.entity == "127.0.0.1" and data.document and data.title
    assert clean_title("Privacy Policy — Example Inc.", "Example Inc.") == "Privacy Policy"


def test_bad_input(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    assert cli("cite", "ZZZZ-ZZZZ", *s).code == 2
    m = archive.capture(site.base_url + "/plain")
    r = cli("cite", m.record_id, "--style", "harvard", *s)
    assert r.code == 2 and "unknown citation style" in r.err
    # a record that fails verification: citation marked, certificate refused
    blob = archive.blobs.path(archive.artifact_sha256(m.record_id, "content"))
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes() + b"x")
    r = cli("cite", m.record_id, *s)
    assert r.code == 0 and "WARNING" in r.err and "Verification:" in r.out and "FAILED" in r.out
    r = cli("certificate", m.record_id, "--declarant", "Jane Roe", *s)
    assert r.code == 1 and "cannot be certified" in r.err


def test_certificate_for_two_records(archive: Archive, site: SampleSite, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = archive.capture(site.base_url + "/plain", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    b = archive.capture(site.base_url + "/terms.pdf", CaptureOptions(entity="Example Inc.", document="Terms"))
    s = ["--store", str(archive.root)]
    r = cli("certificate", a.record_id, b.record_id, "--declarant", "Jane Roe", "--title", "Paralegal", "--org",
            "Roe LLP", *s)
    assert r.code == 0
    md = r.out
    for heading in ("1. Declarant", "2. The process", "3. Exhibits", "4. Digital identification",
                    "5. Trusted timestamps", "6. Chain of custody", "7. Independent corroboration", "8. Declaration"):
        assert f"## {heading}" in md
    assert "28 U.S.C. § 1746" in md and "Signature: ____" in md
    assert a.digests.content_sha256 in md and b.digests.content_sha256 in md
    html_out = tmp_path / "cert.html"
    assert cli("certificate", a.record_id, b.record_id, "--declarant", "Jane Roe", "-f", "html", "-o",
               str(html_out), *s).code == 0
    assert "<table>" in html_out.read_text("utf-8")
    pdf = tmp_path / "cert.pdf"
    r = cli("certificate", a.record_id, b.record_id, "--declarant", "Jane Roe", "-f", "pdf", "-o", str(pdf), *s)
    assert r.code == 0 and pdf.read_bytes().startswith(b"%PDF")
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(str(pdf)).pages)
    assert "Certificate of Authenticity" in text and a.record_id in text and b.record_id in text
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                       check=True, timeout=60)
        png = next(tmp_path.glob("page*.png"))
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
