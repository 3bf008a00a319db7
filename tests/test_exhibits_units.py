"""The parts of exhibits that need no TSA: what page is shown when, labels, the signing certificate the
store makes, the load-file writers' escaping."""

from __future__ import annotations

import hashlib
import io
import stat
from pathlib import Path
from typing import Any

import pytest

from archiver import matters
from archiver.api import Archive
from archiver.exhibits import assemble, loadfile, signing
from archiver.exhibits.sets import next_label
from tests.conftest import tiny_png


class _Blobs:
    def __init__(self, data: dict[str, bytes]) -> None:
        self.data = {hashlib.sha256(v).hexdigest(): v for v in data.values()}
        self.names = {k: hashlib.sha256(v).hexdigest() for k, v in data.items()}

    def read_bytes(self, sha: str) -> bytes:
        return self.data[sha]


class _Store:
    def __init__(self, data: dict[str, bytes]) -> None:
        self.blobs = _Blobs(data)


def _shown(data: dict[str, bytes], media: dict[str, str] | None = None) -> tuple[int, str, str]:
    from pypdf import PdfReader

    s: Any = _Store(data)
    pdf, source, note = assemble.captured(s, "TEST-0001", s.blobs.names, media or {})
    return len(PdfReader(io.BytesIO(pdf)).pages), source, note


def test_the_screenshot_is_shown_when_there_is_no_pdf_and_a_tall_one_takes_several_pages() -> None:
    pages, source, note = _shown({"screenshot": tiny_png(400, 300), "text": b"hello"})
    assert (pages, source, note) == (1, "screenshot", "")
    pages, source, _ = _shown({"screenshot": tiny_png(400, 2400), "text": b"hello"})
    assert source == "screenshot" and pages >= 3


def test_an_unreadable_pdf_falls_through_and_says_why() -> None:
    _, source, note = _shown({"pdf": b"%PDF-1.4 nothing here", "screenshot": tiny_png(), "text": b"x"})
    assert source == "screenshot" and "its pdf artifact could not be read" in note
    _, source, note = _shown({"pdf": b"garbage", "screenshot": b"not a png", "text": b"plain words"})
    assert source == "text" and note.startswith("Fallback to text: its pdf artifact could not be read")
    assert "its screenshot could not be read" in note


def test_a_captured_pdf_document_is_itself_the_page_as_seen() -> None:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for _ in range(2):
        c.drawString(72, 700, "a page")
        c.showPage()
    c.save()
    assert _shown({"content": buf.getvalue(), "text": b"x"}, {"content": "application/pdf"})[:2] == (2, "captured-pdf")
    assert _shown({"content": buf.getvalue(), "text": b"x"}, {"content": "text/html"})[1] == "text"


def test_labels_count_on() -> None:
    assert next_label("Exhibit A", set()) == "Exhibit B"
    assert next_label("Exhibit Z", set()) == "Exhibit AA"
    assert next_label("Exhibit 9", set()) == "Exhibit 10"
    assert next_label("Def. Ex. 104", set()) == "Def. Ex. 105"
    assert next_label("Annex", set()) == "Annex (2)"
    assert next_label("Annex", {"Annex (2)"}) == "Annex (3)"


def test_bates_prefix_is_checked() -> None:
    assert assemble.bates("ABC", 17) == "ABC000017" and assemble.bates("", 1234567) == "1234567"
    for bad in ("abc", "A B", "A/B", "X" * 21):
        with pytest.raises(Exception, match="Bates prefix"):
            assemble.check_prefix(bad)


def test_the_store_signing_certificate_hangs_from_the_operator_key_and_is_remade_after_rotation(
        tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    a, _ = Archive.init(tmp_path / "s", passphrase="correct horse", operator="Pat Paralegal")
    asked: list[int] = []

    def pw() -> str:
        asked.append(1)
        return "correct horse"
    m = signing.store_material(a, pw)
    assert len(asked) == 1  # one prompt, whatever is signed
    key = a.root / "keys" / signing.LEAF_KEY
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and b"ENCRYPTED" in key.read_bytes()
    leaf, root = (x509.load_der_x509_certificate(c) for c in m.chain_der)
    leaf.verify_directly_issued_by(root)  # the Ed25519 operator certificate signed the P-384 leaf
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert root.public_key().public_bytes(*raw) == a.keys.signing_public_key().public_bytes(*raw)
    assert leaf.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]
    assert signing.store_material(a, pw).chain_der == m.chain_der  # kept, not made again
    a.keys.generate("correct horse", replace=True, old_passphrase=lambda: "correct horse")
    again = signing.store_material(a, pw)
    new_root = x509.load_der_x509_certificate(again.chain_der[1])
    assert new_root.public_key().public_bytes(*raw) == a.keys.signing_public_key().public_bytes(*raw)
    assert again.chain_der[1] != m.chain_der[1]


def test_dat_values_keep_line_breaks_as_the_newline_character() -> None:
    data = loadfile.dat(["A", "B"], [["one\r\ntwo\nthree", "þquoted"]])
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert text == "þAþ\x14þBþ\r\nþone®two®threeþ\x14þquotedþ\r\n"
    with pytest.raises(ValueError):
        loadfile.opt([("ABC000001", "VOL001", "IMAGES\\a,b.jpg", True, 1)])


def test_a_set_and_its_production_on_a_postgresql_catalog(postgres: Any, site: Any, tmp_path: Path) -> None:
    """The rows, the overlap check under the write lock and the custody entries on the other backend."""
    from archiver.api import Backends
    from archiver.demo.tsa import LocalTSA
    from archiver.errors import UsageError
    from archiver.exhibits import exhibits_of, make_set
    from archiver.exhibits.produce import produce

    with LocalTSA() as tsa:
        a, _ = Archive.init(tmp_path / "s", operator="Pat", backends=Backends(catalog=postgres.database()))
        a.config.set("capture.allow_private", "true")
        a.config.set("tsa.urls", tsa.url)
        a.config.set("tsa.certs", str(tsa.ca_pem))
        rid = a.capture(site.base_url + "/plain").record_id
        matters.create(a, "pg-matter", actor="t")
        matters.add(a, "pg-matter", [rid], actor="t")
        made = make_set(a, [rid], matter="pg-matter", out_dir=tmp_path / "o", actor="t", passphrase=lambda: None,
                        bates_prefix="PG")
        assert made.exhibits[0].bates_first == "PG000001" and made.exhibits[0].source == "text"
        with pytest.raises(UsageError, match="would overlap Exhibit 1"):
            make_set(a, [rid], matter="pg-matter", out_dir=tmp_path / "o2", actor="t", passphrase=lambda: None,
                     bates_prefix="PG", bates_start=1, label="Exhibit 9")
        assert [(e.label, e.first, e.last) for e in exhibits_of(a, "pg-matter")] == [
            ("Exhibit 1", 1, made.exhibits[0].pages)]
        rep = produce(a, "pg-matter", tmp_path / "csv", fmt="csv", actor="t", passphrase=lambda: None)
        assert rep.exhibits == 1 and (tmp_path / "csv" / "index.csv").is_file()
        events = [e.event for e in a.custody.entries()]
        assert events.count("exhibit") == 1 and events.count("production") == 1
        a.catalog.close()  # type: ignore[attr-defined]


def test_bates_numbers_of_another_prefix_that_print_the_same_overlap() -> None:
    """``ABC`` from 1000001 and ``ABC1`` from 1 stamp the same numbers (ABC1000001…): refused as an
    overlap (review of issue 32: only the same prefix was compared); unrelated prefixes never clash."""
    from archiver.exhibits.sets import Recorded, overlap

    earlier = [Recorded("Exhibit 1", "R-1", 4, "ABC", 1_000_001, 1_000_004, "0" * 64, "text", "t")]
    assert overlap(earlier, "ABC1", 1, 5) is earlier[0]
    assert overlap(earlier, "ABC1", 5, 9) is None  # ABC1000005… : after ABC1000004
    assert overlap(earlier, "ABC", 1, 1_000_000) is None
    assert overlap(earlier, "XYZ", 1_000_001, 1_000_004) is None
    assert assemble.bates("ABC", 1_000_001) == assemble.bates("ABC1", 1)


def test_production_pdf_names_stay_apart_when_two_labels_sanitise_alike() -> None:
    """'Exhibit A' and 'Exhibit-A' (two sets of one matter) must not share a PDF in a production
    (review of issue 32: the second replaced the first in csv and bagit productions)."""
    from archiver.exhibits.produce import _pdf_names, _Row
    from archiver.exhibits.sets import Recorded

    def row(label: str, first: int) -> Any:
        ex = Recorded(label, "R", 2, "ABC", first, first + 1, "0" * 64, "text", "t")
        return _Row(ex, assemble.bates("ABC", first), assemble.bates("ABC", first + 1), "u", "", "", "", "", "", "",
                    "", "", "")

    names = _pdf_names([row("Exhibit A", 1), row("Exhibit-A", 3), row("Exhibit/A", 5), row("Exhibit B", 7)])
    assert len(set(names)) == 4 and names[0] == "Exhibit-A.pdf" and names[3] == "Exhibit-B.pdf", names
