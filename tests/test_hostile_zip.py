"""Hostile bundles at the ZIP layer (issue 28, defects 1–3): each is made here from a genuine bundle the
code exported, so that zipfile alone would have verified the genuine bytes while another reader (Go's
archive/zip, unzip, a streaming reader, ReplayWeb.page) shows something else. For each: `archiver verify`
exits 1 with one line naming the problem, `archiver import` refuses it and leaves the store as it was,
and the web's bundle upload answers with a report that is not verified. The duplicate-member and
prepended-ZIP bundles are also read with Info-ZIP's unzip/zipinfo, to show its reading and our verdict
agree."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.bundle import export
from archiver.demo.server import SampleSite

from .conftest import store_snapshot
from .hostile import DP
from .hostile import ZIP_CASES as CASES
from .hostile import zip_members as _members


@pytest.fixture()
def genuine(stamped: Archive, site: SampleSite, tmp_path: Path) -> Path:
    rid = stamped.capture(site.base_url + "/chunked").record_id
    good = tmp_path / "good.wacz"
    export(stamped, [rid], good, passphrase=lambda: None, actor="tester")
    return good


def test_the_genuine_bundle_reads_one_way_only(genuine: Path, stamped: Archive, cli) -> None:  # type: ignore[no-untyped-def]
    """The control: the exporter's output has no ambiguity and verifies (else every case below proves nothing)."""
    from archiver.bundle.zipcheck import check_zip

    with open(genuine, "rb") as fh:
        assert check_zip(fh).problems == ()
    assert cli("verify", str(genuine), "--store", str(stamped.root)).code == 0


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_zip_is_refused_everywhere(case: str, genuine: Path, stamped: Archive, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    build, words = CASES[case]
    bad = tmp_path / "bad.wacz"
    build(genuine, bad)
    s = ["--store", str(stamped.root)]

    r = cli("verify", str(bad), "--json", *s)
    assert r.code == 1, r.out
    report = json.loads(r.out)
    assert report["verdict"] == "tampered"
    (zip_check,) = [c for c in report["reports"][0]["checks"] if c["name"] == "bundle.zip"]
    assert zip_check["status"] == "FAIL" and zip_check["category"] == "integrity"
    assert words in zip_check["detail"] and "\n" not in zip_check["detail"], zip_check["detail"]
    r = cli("verify", str(bad), *s)
    assert r.code == 1 and "Traceback" not in r.out + r.err
    assert [ln for ln in r.out.splitlines() if "bundle.zip" in ln and "FAIL" in ln], r.out

    snap = store_snapshot(stamped.root)
    r = cli("import", str(bad), *s)
    assert r.code == 1 and "Traceback" not in r.out + r.err and "nothing imported" in r.err, r.err
    assert store_snapshot(stamped.root) == snap

    from tests.services import web_verify_bundle

    resp = web_verify_bundle(stamped, bad)
    assert resp.status_code == 200, resp.text
    web = resp.json()
    assert web["ok"] is False and web["verdict"] == "tampered"
    assert words in web["reports"][0]["checks"][0]["detail"]


def test_zip64_as_the_exporter_writes_it_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Members over 2 GiB are written with ZIP64 extras and end records: the strict reading must accept
    them (lowered limits make zipfile write every ZIP64 structure for a small file)."""
    from archiver.bundle.zipcheck import check_zip

    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 8)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    z = tmp_path / "z64.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for n in range(3):
            info = zipfile.ZipInfo(f"m{n}.bin", date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr = 3, (stat.S_IFREG | 0o644) << 16
            with zf.open(info, "w", force_zip64=True) as dst:
                dst.write(bytes(range(256)) * (n + 1))
    raw = z.read_bytes()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw  # the ZIP64 end record and its locator
    with open(z, "rb") as fh:
        assert check_zip(fh).problems == ()
    (tmp_path / "p.zip").write_bytes(b"junk" + raw)
    with open(tmp_path / "p.zip", "rb") as fh:
        assert any("bytes before the archive" in p for p in check_zip(fh).problems)


# ---- a second, independent reader -------------------------------------------------------------------
def _unzip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, errors="replace")


@pytest.mark.skipif(shutil.which("unzip") is None or shutil.which("zipinfo") is None,
                    reason="Info-ZIP unzip/zipinfo not installed (Debian package `unzip`; `make test` installs it)")
@pytest.mark.parametrize("case", ["forged datapackage.json first, genuine last", "forged WARC first, genuine last",
                                  "forged ZIP prepended"])
def test_unzip_sees_what_we_refuse(case: str, genuine: Path, stamped: Archive, tmp_path: Path) -> None:
    """Our verdict and Info-ZIP's reading of the same file agree: we refuse the zip as ambiguous, and
    unzip either warns or shows bytes other than those zipfile alone would have verified."""
    from archiver.bundle import default_trust, verify_bundle

    bad = tmp_path / "bad.wacz"
    build, words = CASES[case]
    build(genuine, bad)
    ours = verify_bundle(bad, default_trust(stamped, [], None))[0].checks[0]
    assert (ours.name, ours.status.value) == ("bundle.zip", "FAIL") and words in ours.detail, ours
    genuine_members = dict((i.filename, d) for i, d in _members(genuine))
    if case.startswith("forged ZIP"):
        t = _unzip("unzip", "-t", str(bad))
        assert t.returncode != 0 and "extra bytes at beginning" in t.stdout + t.stderr, t.stdout + t.stderr
        return
    name = DP if "datapackage" in case else next(n for n in genuine_members if n.endswith(".warc.gz"))
    listing = _unzip("zipinfo", "-1", str(bad)).stdout.splitlines()
    assert listing.count(name) == 2  # a standard reader lists two members of that name
    shown = subprocess.run(["unzip", "-p", str(bad), name], capture_output=True, timeout=60).stdout
    assert shown != genuine_members[name]  # ... and does not show (only) what zipfile would have verified


def test_streamed_zip_with_data_descriptors_passes() -> None:
    """A ZIP written to a pipe (sizes and CRC after the data, in descriptors; one of them ZIP64) is
    unambiguous and must pass: other WACZ tools stream their output."""
    import io

    from archiver.bundle.zipcheck import check_zip

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w") as zf:
        zf.writestr("a.txt", b"hello " * 100)
        with zf.open("b.bin", "w", force_zip64=True) as dst:
            dst.write(bytes(range(256)) * 40)
    with zipfile.ZipFile(io.BytesIO(bytes(pipe.buf))) as zf:
        assert all(i.flag_bits & 0x08 for i in zf.infolist())  # descriptors were written
    assert check_zip(io.BytesIO(bytes(pipe.buf))).problems == ()


def test_the_strict_reading_never_reads_member_data(tmp_path: Path) -> None:
    """Bounded: the end records, the directory and each local header, not the 8 MB of members."""
    import io

    from archiver.bundle.zipcheck import check_zip

    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for n in range(4):
            zf.writestr(f"m{n}.bin", bytes(2 << 20))
    raw = z.read_bytes()

    class Counting(io.BytesIO):
        read_bytes = 0

        def read(self, n: int | None = -1) -> bytes:
            out = super().read(n)
            Counting.read_bytes += len(out)
            return out

    assert check_zip(Counting(raw)).problems == ()
    assert Counting.read_bytes < 70_000 + 4 * 100, Counting.read_bytes  # the 64 KiB end-record window, headers
