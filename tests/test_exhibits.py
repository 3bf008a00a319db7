"""Exhibit sets (issue 32, point 3), checked with tools we did not write: poppler's ``pdfsig`` and
``pdftotext``, and pyHanko's validator.

One store for the module: three records of one matter — a browser capture (its print PDF is the page
as seen), a captured PDF document, and a plain capture with no screenshot or PDF (the text fallback) —
timestamped by the local RFC 3161 TSA, which also gives the exhibits their document timestamps. The
matter is set up through the exhibits package's seam (today a collection of the matter's name).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver import matters
from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.demo.tsa import LocalTSA
from archiver.options import BrowserOptions, CaptureOptions

CHROMIUM = os.environ.get("ARCHIVER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils is not installed "
                                 "(make deb-deps)")]
MATTER = "smith-v-jones"


def archiver_cmd(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "archiver.cli", *args, "--store", str(store)], capture_output=True,
                          text=True, timeout=600, check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})


@contextlib.contextmanager
def exhibit_world(tmp: Path, site: SampleSite) -> Iterator[dict[str, Any]]:
    """A store with the three records in matter MATTER, and their exhibit set made by the real command."""
    with LocalTSA() as tsa:
        a, _ = Archive.init(tmp / "store", operator="Pat Paralegal")
        a.config.set("capture.allow_private", "true")
        a.config.set("operator.organization", "Example LLP")
        a.config.set("tsa.urls", tsa.url)
        a.config.set("tsa.certs", str(tsa.ca_pem))
        a.config.set("tsa.retries", "0")
        browser = CaptureOptions(entity="Example Inc.", document="Rendered Policy",
                                 browser=BrowserOptions(timeout=20)) if CHROMIUM else CaptureOptions()
        first = a.capture(site.base_url + "/js-page", browser)
        second = a.capture(site.base_url + "/terms.pdf", CaptureOptions(entity="Example Inc.", document="Terms"))
        third = a.capture(site.base_url + "/plain", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
        ids = [first.record_id, second.record_id, third.record_id]
        matters.create(a, MATTER, title="Smith v. Jones", actor="tester")
        matters.add(a, MATTER, ids, actor="tester")
        out = tmp / "exhibits"
        r = archiver_cmd("exhibit", *ids, "--matter", MATTER, "--label", "Exhibit A", "--bates-prefix", "ABC",
                         "--bates-start", "1", "-o", str(out), "--json", store=a.root)
        assert r.returncode == 0, r.stderr
        yield {"archive": a, "tsa": tsa, "ids": ids, "out": out, "set": json.loads(r.stdout), "tmp": tmp,
               "browser": bool(CHROMIUM)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, site: SampleSite) -> Iterator[dict[str, Any]]:
    with exhibit_world(tmp_path_factory.mktemp("exhibits"), site) as w:
        yield w


def pdftotext(path: Path, first: int | None = None, last: int | None = None) -> str:
    args = ["pdftotext", "-layout"] + (["-f", str(first)] if first else []) + (["-l", str(last)] if last else [])
    return subprocess.run([*args, str(path), "-"], capture_output=True, text=True, check=True, timeout=60).stdout


def pdfsig(path: Path) -> str:
    r = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return r.stdout + r.stderr


def test_each_exhibit_is_signed_and_timestamped_per_pdfsig_and_pyhanko(world: dict[str, Any]) -> None:
    from archiver.exhibits.signing import check_pdf

    a: Archive = world["archive"]
    root = (a.root / "keys" / "operator.crt").read_bytes()
    tsa_ca = Path(world["tsa"].ca_pem).read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = lambda pem: x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)  # noqa: E731
    assert len(world["set"]["exhibits"]) == 3
    for e in world["set"]["exhibits"]:
        out = pdfsig(Path(e["file"]))
        sigs = re.split(r"\nSignature #\d+:\n", out)[1:]
        assert len(sigs) == 2, out
        assert "Signature Type: ETSI.CAdES.detached" in sigs[0] and "Signature Validation: Signature is Valid." \
            in sigs[0], out
        # the document timestamp: signed by the TSA, covering the whole file (poppler 22 lists it, cannot check it)
        assert "Archiver local test TSA" in sigs[1] and "Total document signed" in sigs[1], out
        raw = Path(e["file"]).read_bytes()
        assert b"/Type /DocTimeStamp" in raw and b"/SubFilter /ETSI.RFC3161" in raw  # what poppler 22 calls "unknown"
        check = check_pdf(raw, trust_roots_der=[der(root)], tsa_roots_der=[der(tsa_ca)])
        assert check.signature_intact and check.signature_valid and check.signature_trusted, check
        assert check.signature_timestamp and check.doc_timestamp_valid and check.covers_whole_file, check
        assert "Pat Paralegal" in check.signer


def test_bates_numbers_run_in_order_across_the_set_and_are_recorded(world: dict[str, Any]) -> None:
    import jsonschema

    from archiver.exhibits import exhibits_of

    schema = json.loads((Path(__file__).resolve().parent.parent / "docs/schemas/exhibit-set.json").read_text())
    jsonschema.validate(world["set"], schema)  # the --json output is the published model

    found: list[str] = []
    for e in world["set"]["exhibits"]:
        pages = pdftotext(Path(e["file"])).split("\f")[:-1]
        assert len(pages) == e["pages"]
        for page in pages:  # exactly one Bates number on every page, in its footer
            numbers = re.findall(r"ABC\d{6}", page)
            assert len(numbers) == 1, page[-300:]
            found.append(numbers[0])
        assert (found[-e["pages"]], found[-1]) == (e["bates_first"], e["bates_last"])
    total = sum(e["pages"] for e in world["set"]["exhibits"])
    assert found == [f"ABC{n:06d}" for n in range(1, total + 1)]
    rec = exhibits_of(world["archive"], MATTER)
    assert [(r.label, r.first, r.last) for r in rec] == [
        (e["label"], int(e["bates_first"][3:]), int(e["bates_last"][3:])) for e in world["set"]["exhibits"]]
    assert [r.label for r in rec] == ["Exhibit A", "Exhibit B", "Exhibit C"]


def test_cover_sheet_hashes_are_those_archiver_show_reports(world: dict[str, Any]) -> None:
    a: Archive = world["archive"]
    for e in world["set"]["exhibits"]:
        text = pdftotext(Path(e["file"]))
        cover = text[:text.index("How to verify")]
        shown = json.loads(archiver_cmd("show", e["record_id"], "--json", store=a.root).stdout)
        hashes = [art["sha256"] for art in shown["artifacts"]]
        assert len(hashes) >= 3
        for h in hashes:
            assert h in cover, (e["label"], h)
        assert a.resolve(e["record_id"]).manifest_sha256 in cover
        key_id = shown["signature"]["key_id"].removeprefix("sha256:")  # "Signed by" on the cover
        assert set(re.findall(r"\b[0-9a-f]{64}\b", cover)) == {*hashes, a.resolve(e["record_id"]).manifest_sha256,
                                                                 key_id}
        assert MATTER in cover and e["label"] in cover and "genTime" in cover
        assert "Certificate of Authenticity" in text  # the certificate follows the captured page


def test_the_page_as_seen_and_the_text_fallback_says_so(world: dict[str, Any]) -> None:
    by = {e["label"]: e for e in world["set"]["exhibits"]}
    if world["browser"]:
        assert by["Exhibit A"]["source"] == "pdf" and by["Exhibit A"]["note"] == ""
        assert "This clause was built by JavaScript." in pdftotext(Path(by["Exhibit A"]["file"]))
    assert by["Exhibit B"]["source"] == "captured-pdf"
    c = by["Exhibit C"]
    assert c["source"] == "text" and c["note"].startswith("Fallback to text: this record has no screenshot or PDF")
    assert "Fallback to text" in pdftotext(Path(c["file"]))
    # and the CLI says so in its human output too
    a: Archive = world["archive"]
    r = archiver_cmd("exhibit", c["record_id"], "--matter", MATTER, "--label", "Exhibit T", "-o",
                     str(world["tmp"] / "fallback"), store=a.root)
    assert r.returncode == 0, r.stderr
    assert "Fallback to text" in r.stdout and "this record has no screenshot or PDF" in r.stdout


def test_one_changed_byte_makes_pdfsig_report_the_signature_invalid(world: dict[str, Any], tmp_path: Path) -> None:
    src = Path(world["set"]["exhibits"][0]["file"])
    data = bytearray(src.read_bytes())
    at = data.index(b"/Producer")  # inside the first, signed revision: a byte of its metadata, the PDF still parses
    at = data.index(b"archiver", at)
    data[at] = ord("A")
    bad = tmp_path / "changed.pdf"
    bad.write_bytes(bytes(data))
    out = pdfsig(bad)
    first = re.split(r"\nSignature #\d+:\n", out)[1]
    assert "Signature is Valid" not in first and "Digest Mismatch" in first, out
    assert "Signature is Valid." in pdfsig(src)  # the original still is


def test_bates_numbers_overlapping_an_earlier_exhibit_are_refused(world: dict[str, Any]) -> None:
    a: Archive = world["archive"]
    before = (a.root / "custody.log").read_text()
    out = world["tmp"] / "overlap"
    inside_a = world["set"]["exhibits"][0]["bates_last"]  # the last page of Exhibit A
    r = archiver_cmd("exhibit", world["ids"][0], "--matter", MATTER, "--label", "Exhibit Z", "--bates-prefix", "ABC",
                     "--bates-start", str(int(inside_a[3:])), "-o", str(out), store=a.root)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "would overlap Exhibit A" in r.stderr and f"Bates numbers {inside_a}–" in r.stderr
    assert not out.exists() or not any(out.iterdir())
    assert (a.root / "custody.log").read_text().count('"exhibit"') == before.count('"exhibit"')
    # another prefix, or the next free number, is fine
    nxt = max(int(e["bates_last"][3:]) for e in world["set"]["exhibits"]) + 1
    r = archiver_cmd("exhibit", world["ids"][0], "--matter", MATTER, "--label", "Exhibit Z", "--bates-prefix", "ABC",
                     "-o", str(out), "--json", store=a.root)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["exhibits"][0]["bates_first"] == f"ABC{nxt:06d}"


def test_refusals_name_the_problem(world: dict[str, Any], site: SampleSite) -> None:
    a: Archive = world["archive"]
    out = world["tmp"] / "refusals"
    stray = a.capture(site.base_url + "/policy").record_id  # captured, but not in the matter
    r = archiver_cmd("exhibit", stray, "--matter", MATTER, "-o", str(out), store=a.root)
    assert r.returncode == 2 and f"record(s) {stray} are not in matter" in r.stderr
    r = archiver_cmd("exhibit", world["ids"][0], "--matter", "no-such-matter", "-o", str(out), store=a.root)
    assert r.returncode == 2 and "no matter named 'no-such-matter'" in r.stderr
    r = archiver_cmd("exhibit", world["ids"][0], "--matter", MATTER, "--label", "Exhibit A", "-o", str(out),
                     store=a.root)
    assert r.returncode == 2 and "labelled 'Exhibit A' already" in r.stderr
    out.mkdir()
    (out / "Exhibit-Q.pdf").write_bytes(b"mine")
    r = archiver_cmd("exhibit", world["ids"][0], "--matter", MATTER, "--label", "Exhibit Q", "-o", str(out),
                     store=a.root)
    assert r.returncode == 2 and "exists" in r.stderr and (out / "Exhibit-Q.pdf").read_bytes() == b"mine"


def test_custody_names_every_exhibit_and_the_originals_are_untouched(world: dict[str, Any]) -> None:
    a: Archive = world["archive"]
    entries = [json.loads(line) for line in (a.root / "custody.log").read_text().splitlines()]
    made = [e for e in entries if e["event"] == "exhibit"]
    labels = {e["detail"]["label"] for e in made}
    assert {"Exhibit A", "Exhibit B", "Exhibit C"} <= labels
    for e in world["set"]["exhibits"]:
        assert a.verify(e["record_id"], log=False).ok  # every artifact still hashes to its manifest
        assert any(m["detail"]["pdf_sha256"] == e["pdf_sha256"] for m in made)
        assert a.blobs.read_bytes(e["pdf_sha256"]) == Path(e["file"]).read_bytes()


def test_a_provided_certificate_signs_instead(world: dict[str, Any], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from archiver.demo.tsa import make_tsa_certs  # noqa: F401  (the TSA's CA helper is not for signers)

    a: Archive = world["archive"]
    key = ec.generate_private_key(ec.SECP256R1())
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Outside Counsel Signing")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    r = archiver_cmd("exhibit", world["ids"][1], "--matter", MATTER, "--label", "Exhibit P", "-o",
                     str(tmp_path / "out"), "--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "k.pem"),
                     store=a.root)
    assert r.returncode == 0, r.stderr
    out = pdfsig(tmp_path / "out" / "Exhibit-P.pdf")
    assert "Outside Counsel Signing" in out and "Signature is Valid." in out
