"""Productions (issue 32, point 4), read back by tools and parsers we did not share code with: the
Library of Congress ``bagit.py --validate``, Python's csv module, and a Concordance DAT / Opticon OPT
parser written here from the format description (not from ``archiver/exhibits/loadfile.py``)."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver import matters
from archiver.api import Archive
from archiver.demo.server import SampleSite
from tests.test_exhibits import MATTER, archiver_cmd, exhibit_world, pytestmark  # noqa: F401

BAGIT = str(Path(sys.executable).parent / "bagit.py")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, site: SampleSite) -> Iterator[dict[str, Any]]:
    with exhibit_world(tmp_path_factory.mktemp("produce"), site) as w:
        yield w


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- a Concordance / Opticon reader, from the format description -----------------------------------
# DAT: UTF-8 (a BOM first), records end with CR LF; a field is wrapped in þ (U+00FE) and fields are
# separated by U+0014 (shown as ¶); ® (U+00AE) stands for a line break inside a value; line 1 names the
# fields. OPT: one page per CR LF line, seven comma-separated fields: key, volume, image path,
# document break (Y), folder break, box break, page count (on the document's first page).
def read_dat(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "no UTF-8 byte-order mark"
    text = data[3:].decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text[:-2].split("\r\n")
    table = []
    for line in lines:
        cells = line.split("\x14")
        for c in cells:
            assert len(c) >= 2 and c[0] == "þ" and c[-1] == "þ", f"unquoted DAT value {c!r}"
        table.append([c[1:-1].replace("®", "\n") for c in cells])
    header, rows = table[0], table[1:]
    assert all(len(r) == len(header) for r in rows)
    return [dict(zip(header, r, strict=True)) for r in rows]


def read_opt(data: bytes) -> list[tuple[str, str, str, bool, int | None]]:
    text = data.decode("ascii")
    assert text.endswith("\r\n")
    pages = []
    for line in text[:-2].split("\r\n"):
        key, volume, path, doc_break, folder, box, count = line.split(",")
        assert doc_break in ("Y", "") and folder == "" and box == ""
        pages.append((key, volume, path, doc_break == "Y", int(count) if count else None))
    return pages


def test_loadfile_reads_back_and_every_native_matches_its_sha256(world: dict[str, Any], tmp_path: Path) -> None:
    a: Archive = world["archive"]
    out = tmp_path / "prod"
    r = archiver_cmd("produce", MATTER, str(out), "--format", "loadfile", "--json", store=a.root)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    import jsonschema

    jsonschema.validate(report, json.loads((Path(__file__).resolve().parent.parent
                                            / "docs/schemas/production.json").read_text()))
    assert report["exhibits"] == 3 and report["format"] == "loadfile"
    rows = read_dat((out / "DATA" / f"{MATTER}.dat").read_bytes())
    pages = read_opt((out / "DATA" / f"{MATTER}.opt").read_bytes())
    made = world["set"]["exhibits"]
    assert [row["BEGBATES"] for row in rows] == [e["bates_first"] for e in made]
    assert [row["ENDBATES"] for row in rows] == [e["bates_last"] for e in made]
    for row, e in zip(rows, made, strict=True):
        native = out / row["NATIVEPATH"].replace("\\", "/")
        assert sha256(native) == row["SHA256"] == a.artifact_sha256(e["record_id"], "content")
        assert row["RECORDID"] == e["record_id"] and row["EXHIBIT"] == e["label"]
        m = a.manifest(e["record_id"])
        assert (row["URL"], row["ENTITY"], row["DOCUMENT"], row["CAPTURED"]) == (m.subject.url, m.subject.entity,
                                                                                 m.subject.document, m.captured_at)
        assert row["CUSTODIAN"] == "Pat Paralegal" and row["TRUSTEDTIME"].startswith("20")
        assert row["MANIFESTSHA256"] == a.resolve(e["record_id"]).manifest_sha256
        text = out / row["TEXTPATH"].replace("\\", "/")
        blobs = a.catalog.record_blobs(e["record_id"])
        assert sha256(text) == (blobs.get("main-text") or blobs["text"])
        assert sha256(out / row["PDFPATH"].replace("\\", "/")) == e["pdf_sha256"]
    # the OPT: one line per page, in Bates order, a document break at each BEGBATES with its page count
    total = sum(e["pages"] for e in made)
    assert [p[0] for p in pages] == [f"ABC{n:06d}" for n in range(1, total + 1)]
    breaks = [(p[0], p[4]) for p in pages if p[3]]
    assert breaks == [(e["bates_first"], e["pages"]) for e in made]
    for key, volume, path, _, _ in pages:
        img = out / path.replace("\\", "/")
        assert volume == "VOL001" and img.name == f"{key}.jpg" and img.read_bytes()[:3] == b"\xff\xd8\xff"
    # the production is a custody entry; the store's evidence is unchanged
    log = [json.loads(x) for x in (a.root / "custody.log").read_text().splitlines()]
    assert any(e["event"] == "production" and e["detail"]["format"] == "loadfile" for e in log)
    assert all(a.verify(e["record_id"], log=False).ok for e in made)


def test_bag_validates_with_the_library_of_congress_tool_and_one_byte_breaks_it(world: dict[str, Any],
                                                                                 tmp_path: Path) -> None:
    a: Archive = world["archive"]
    out = tmp_path / "bag"
    r = archiver_cmd("produce", MATTER, str(out), "--format", "bagit", store=a.root)
    assert r.returncode == 0, r.stderr
    ok = subprocess.run([sys.executable, BAGIT, "--validate", str(out)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "is valid" in ok.stderr
    tags = (out / "tagmanifest-sha256.txt").read_text()
    assert all(f"  {n}\n" in tags for n in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt"))
    info = (out / "bag-info.txt").read_text()
    assert f"External-Identifier: {MATTER}" in info and "Payload-Oxum: " in info
    payload = sorted(p.relative_to(out / "data").as_posix() for p in (out / "data").rglob("*") if p.is_file())
    assert payload == sorted([f"bundles/{rid}.wacz" for rid in world["ids"]]
                             + ["exhibits/Exhibit-A.pdf", "exhibits/Exhibit-B.pdf", "exhibits/Exhibit-C.pdf"])
    # a bundle in the bag verifies on its own, offline
    v = archiver_cmd("verify", str(out / "data" / "bundles" / f"{world['ids'][0]}.wacz"), store=a.root)
    assert v.returncode == 0, v.stdout + v.stderr
    target = out / "data" / "exhibits" / "Exhibit-B.pdf"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    bad = subprocess.run([sys.executable, BAGIT, "--validate", str(out)], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "exhibits/Exhibit-B.pdf" in bad.stderr and "is invalid" in bad.stderr


def test_csv_index(world: dict[str, Any], tmp_path: Path) -> None:
    a: Archive = world["archive"]
    out = tmp_path / "csv"
    r = archiver_cmd("produce", MATTER, str(out), "--format", "csv", store=a.root)
    assert r.returncode == 0, r.stderr
    with (out / "index.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    made = world["set"]["exhibits"]
    assert [(x["exhibit"], x["bates_first"], x["bates_last"], x["record_id"]) for x in rows] == [
        (e["label"], e["bates_first"], e["bates_last"], e["record_id"]) for e in made]
    for x in rows:
        assert sha256(out / x["pdf_file"]) == x["pdf_sha256"]
        assert x["content_sha256"] == a.artifact_sha256(x["record_id"], "content")


@pytest.mark.parametrize("fmt", ["loadfile", "bagit", "csv"])
def test_an_out_that_exists_is_refused(world: dict[str, Any], tmp_path: Path, fmt: str) -> None:
    a: Archive = world["archive"]
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = archiver_cmd("produce", MATTER, str(out), "--format", fmt, store=a.root)
    assert r.returncode == 2 and "exists" in r.stderr, r.stdout + r.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # no temporary directory left beside it


def test_a_matter_without_exhibits_or_an_unknown_format_is_refused(world: dict[str, Any], tmp_path: Path) -> None:
    a: Archive = world["archive"]
    matters.create(a, "empty-matter", actor="tester")
    r = archiver_cmd("produce", "empty-matter", str(tmp_path / "p"), store=a.root)
    assert r.returncode == 2 and "has no exhibits" in r.stderr
    r = archiver_cmd("produce", MATTER, str(tmp_path / "p"), "--format", "zip", store=a.root)
    assert r.returncode == 2 and "unknown production format" in r.stderr
    assert not (tmp_path / "p").exists()
