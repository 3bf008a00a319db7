"""A bundle's whole work is capped (issue 28, defect 9): ``verify.max_bundle_bytes`` counts every byte
verification inflates from a bundle, ZIP members as they are read and WARC records as they declare
themselves, each read counted, so neither many members nor many records naming one WARC can make a
small file cost minutes; a bundle whose members declare more than the cap is refused before anything
is inflated. ``verify.max_bundle_members`` caps the member count. Each refusal is one ``bundle.zip``
FAIL naming the setting."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.bundle import verify_bundle
from archiver.demo.server import SampleSite

from .hostile import copied_records, fillers
from .recipient import Setup, case_env, recipient_setup, run


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, site: SampleSite) -> Setup:
    return recipient_setup(tmp_path_factory.mktemp("work"), site)


def _store(setup: Setup, tmp: Path, **settings: int) -> Path:
    import shutil

    store = tmp / "store"
    shutil.copytree(setup.template, store)
    a = Archive.open(store)
    for key, value in settings.items():
        a.config.set(key.replace("__", "."), str(value))
    return store


def _refusal(out: str) -> str:
    return next((ln for ln in out.splitlines() if "bundle.zip" in ln and "FAIL" in ln), "")


def test_the_issues_500_members_are_refused_before_anything_is_inflated(setup: Setup, tmp_path: Path) -> None:
    """The issue's scenario: 500 members of 64 MiB (a ~33 MB file) listed in a datapackage.json. Before
    the ratio check it hashed 32 GiB for ~55 s; now the declared total is refused on sight."""
    bad = tmp_path / "bomb.wacz"
    fillers(setup.origin, bad, 500, 64 << 20)
    assert bad.stat().st_size < 40 << 20
    r = run(["verify", str(bad), "--trust-key", setup.key_id, "--store", str(_store(setup, tmp_path))],
            case_env(tmp_path))
    assert r.code == 1 and r.seconds < 5 and r.rss < 256 << 20, (r.seconds, r.rss)
    line = _refusal(r.out)
    assert "verify.max_bundle_bytes" in line and "refused before inflating" in line, r.out[-2000:]


def test_under_the_ratio_the_declared_total_is_refused_before_hashing(setup: Setup, tmp_path: Path) -> None:
    """500 members of 2 MiB behind 24 MB of random padding: under the 50x ratio, so the ZIP layer lets it
    through and (before) verification hashed the whole GiB; with the cap at 512 MiB it is refused first."""
    bad = tmp_path / "under.wacz"
    fillers(setup.origin, bad, 500, 2 << 20, 24 << 20)
    store = _store(setup, tmp_path, verify__max_bundle_bytes=512 << 20)
    r = run(["verify", str(bad), "--trust-key", setup.key_id, "--store", str(store)], case_env(tmp_path))
    assert r.code == 1 and r.seconds < 3, (r.seconds, r.out[-1000:])
    assert "verify.max_bundle_bytes" in _refusal(r.out), r.out[-2000:]


def test_records_naming_one_warc_are_charged_as_they_stream(setup: Setup, tmp_path: Path) -> None:
    """Five records whose manifests all name one WARC of 3 GiB of conversion records (~3 MB on disk):
    each record's checks read the whole WARC again, 15 GiB in all (~15 s; every single read is under
    the WARC caps and the declared total is 3 GiB). With the cap at 2 GiB the first record's read is
    stopped at its second conversion record, before the other four records read anything."""
    bad = tmp_path / "many.wacz"
    copied_records(4, 3, 1 << 30)(setup.origin, bad)
    with zipfile.ZipFile(bad) as zf:
        assert sum(i.file_size for i in zf.infolist()) < 8 << 20  # the ZIP declares ~3 MB: no ZIP check fires
    store = _store(setup, tmp_path, verify__max_bundle_bytes=2 << 30)
    r = run(["verify", str(bad), "--trust-key", setup.key_id, "--store", str(store)], case_env(tmp_path))
    assert r.code == 1 and r.rss < 512 << 20, (r.code, r.rss)
    assert r.seconds < 30, r.seconds  # ~2 GiB inflated and hashed, not 15
    line = _refusal(r.out)
    assert "refused" in line and "verify.max_bundle_bytes" in line and "each read counted" in line, r.out[-2000:]
    i = run(["import", str(bad), "--trust-key", setup.key_id, "--store", str(store)], case_env(tmp_path))
    assert i.code == 1 and "verify.max_bundle_bytes" in i.err and i.seconds < 30, (i.seconds, i.err)


def test_the_budget_counts_every_read_and_reads_stay_whole(setup: Setup) -> None:
    """Unit: reading the same member twice costs twice; a read of n bytes returns n bytes (as zipfile's
    does) while it is charged 1 MiB at a time; once spent, every read fails."""
    from archiver.bundle import Bundle, BundleLimits
    from archiver.bundle.read import BundleWorkExceeded

    with zipfile.ZipFile(setup.origin.good) as zf:
        warc = next(i for i in zf.infolist() if i.filename.endswith(".warc.gz"))
    b = Bundle(setup.origin.good, limits=BundleLimits(max_bytes=2 * warc.file_size + 10))
    try:
        assert len(b.read(warc.filename, limit=64 << 20)) == warc.file_size
        assert b.inflated == warc.file_size
        with b.open(warc.filename) as fh:
            assert len(fh.read(warc.file_size - 1)) == warc.file_size - 1
        with pytest.raises(BundleWorkExceeded, match=r"verify\.max_bundle_bytes"):
            b.read(warc.filename, limit=64 << 20)
        with pytest.raises(BundleWorkExceeded):
            b.read("datapackage.json")
    finally:
        b.close()


def test_too_many_members_are_refused_before_any_is_read(setup: Setup, tmp_path: Path) -> None:
    bad = tmp_path / "many.wacz"
    with zipfile.ZipFile(setup.origin.good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        for n in range(120):
            dst.writestr(f"x/{n:03d}", b"")
    trust = Archive.open(_store(setup, tmp_path, verify__max_bundle_members=100)).bundles.trust([])
    started = time.monotonic()
    (report,) = verify_bundle(bad, trust)
    assert time.monotonic() - started < 2
    (check,) = report.checks
    assert check.name == "bundle.zip" and check.status.value == "FAIL"
    assert "verify.max_bundle_members (100)" in check.detail, check.detail
    json.dumps(report.to_dict())
