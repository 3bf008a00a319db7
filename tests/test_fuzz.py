"""Tamper fuzzing: seeded single-byte flips anywhere in a record's evidence must make verify fail.

Targets in the store: WARC, content, text, manifest (signature included), timestamp token, TSA
chain, addenda and the custody log; and every member of an exported bundle. ``ARCHIVER_FUZZ_FLIPS``
raises the count (``make bench`` runs 1,000+); the default keeps ``make test`` quick.
"""

from __future__ import annotations

import os
import random
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.bundle import default_trust, export, verify_bundle
from archiver.demo.server import SampleSite
from archiver.options import CaptureOptions

FLIPS = int(os.environ.get("ARCHIVER_FUZZ_FLIPS", "120"))


def flip_file(path: Path, rng: random.Random) -> int:
    data = bytearray(path.read_bytes())
    off = rng.randrange(len(data))
    data[off] ^= 1 << rng.randrange(8)
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return off


@pytest.fixture()
def evidence(stamped: Archive, site: SampleSite, ia) -> tuple[Archive, str]:  # type: ignore[no-untyped-def]
    from archiver.wayback import wayback_timestamp

    for k, v in (("wayback.base_url", ia.base_url), ("wayback.availability_url", ia.availability_url)):
        stamped.config.set(k, v)
    m = stamped.capture(site.base_url + "/gzip-chunked", CaptureOptions(entity="Example Inc.", document="Policy"))
    ia.add(m.subject.final_url, wayback_timestamp(m.captured_at), b"other bytes")
    stamped.wayback(m.record_id)
    assert stamped.verify(m.record_id, log=False).ok
    return stamped, m.record_id


def _targets(archive: Archive, rid: str) -> dict[str, Path]:
    t = {name: archive.blobs.path(archive.artifact_sha256(rid, name))
         for name in ("warc", "content", "text", "manifest", "timestamp", "tsa-chain", "addendum.1", "addendum.2")}
    t["custody"] = archive.root / "custody.log"
    return t


def test_every_flip_in_the_store_fails_verify(evidence: tuple[Archive, str], tmp_path: Path) -> None:
    archive, rid = evidence
    pristine = tmp_path / "pristine"
    shutil.copytree(archive.root, pristine)
    rng = random.Random(20261123)
    names = sorted(_targets(archive, rid))
    caught: Counter[str] = Counter()
    for i in range(FLIPS):
        name = names[i % len(names)]
        work = tmp_path / "work"
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(pristine, work)
        copy = Archive.open(work)
        target = _targets(copy, rid)[name]
        off = flip_file(target, rng)
        report = copy.verify(rid, log=False)
        assert not report.ok, f"flip {i} at byte {off} of {name} went unnoticed"
        caught[name] += 1
    assert sum(caught.values()) == FLIPS and set(caught) == set(names)


def test_every_flip_in_a_bundle_fails_verify(evidence: tuple[Archive, str], tmp_path: Path) -> None:
    archive, rid = evidence
    bundle = tmp_path / "e.wacz"
    export(archive, [rid], bundle, passphrase=lambda: None, actor="tester")
    trust = default_trust(archive, [], None)
    assert all(r.ok for r in verify_bundle(bundle, trust))
    with zipfile.ZipFile(bundle) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    rng = random.Random(7)
    names = sorted(members)
    n = max(len(names), FLIPS // 2)
    for i in range(n):
        name = names[i % len(names)]
        data = bytearray(members[name])
        off = rng.randrange(len(data))
        data[off] ^= 1 << rng.randrange(8)
        bad = tmp_path / "bad.wacz"
        with zipfile.ZipFile(bad, "w") as zout:
            for m, content in members.items():
                zout.writestr(m, bytes(data) if m == name else content)
        reports = verify_bundle(bad, trust)
        assert not all(r.ok for r in reports), f"flip {i} at byte {off} of {name} went unnoticed"
    # and a flip of the zip container itself (central directory, local headers, CRCs)
    raw = bundle.read_bytes()
    for _ in range(20):
        data = bytearray(raw)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        bad = tmp_path / "raw.wacz"
        bad.write_bytes(bytes(data))
        reports = verify_bundle(bad, trust)
        ok = all(r.ok for r in reports)
        if ok:  # a flip in zip bytes nobody reads (e.g. a timestamp field) leaves every member intact
            with zipfile.ZipFile(bad) as zf:
                assert {i.filename: zf.read(i) for i in zf.infolist()} == members
