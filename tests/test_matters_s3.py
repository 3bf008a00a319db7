"""Legal holds on an S3 store (a real SeaweedFS, as the other S3 tests): deleting a held record's object
is refused by our own check, naming the hold, and works after `release`; with Object Lock, `hold`
also puts the server's legal hold ON for every object of the matter's records (and `release` puts it
OFF), which SeaweedFS enforces: while ON it refuses to delete the locked version even with the
governance bypass, and after OFF the same request deletes it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from archiver import gc, matters
from archiver.api import Archive
from archiver.errors import HoldError
from archiver.matters import holds as matter_holds
from store.holds import record_blobs
from tests.services import LocalSeaweed

NOPASS = lambda: None  # noqa: E731
HOLD = ("acme-v-doe", "preservation letter 2026-12-01")


@pytest.fixture()
def s3_env(seaweed: LocalSeaweed, monkeypatch: pytest.MonkeyPatch) -> LocalSeaweed:
    for k, v in seaweed.env().items():
        monkeypatch.setenv(k, v)
    return seaweed


def _store(cli, root: Path, sw: LocalSeaweed, bucket: str, *extra: str) -> Archive:  # type: ignore[no-untyped-def]
    r = cli("init", "--store", str(root), "--operator", "Test Operator", "--blobs", f"s3://{bucket}/cases",
            "--s3-endpoint", sw.endpoint, *extra)
    assert r.code == 0, r.err
    a = Archive.open(root)
    a.config.set("capture.allow_private", "true")
    return a


def _key(sha: str) -> str:
    return f"cases/objects/sha256/{sha[:2]}/{sha[2:4]}/{sha}"


def _held_matter(a: Archive, rid: str) -> None:
    matters.create(a, HOLD[0], actor="tester")
    matters.add(a, HOLD[0], [rid], actor="tester")


def test_s3_delete_of_a_held_record_is_refused_naming_the_hold_then_works_after_release(
        cli, s3_env: LocalSeaweed, site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    bucket = f"hold-{uuid.uuid4().hex[:12]}"
    a = _store(cli, tmp_path / "store", s3_env, bucket)
    rid = a.capture(site.base_url + "/plain").record_id
    a.publications.publish([rid], actor="tester", passphrase=NOPASS)
    _held_matter(a, rid)
    s = ["--store", str(a.root)]
    r = cli("hold", HOLD[0], "--reason", HOLD[1], "--json", *s)
    assert r.code == 0, r.err
    change = json.loads(r.out)
    assert change["server_legal_hold"] is False  # no Object Lock on this bucket: our refusal is the guard
    raw = s3_env.client()
    content = a.resolve(rid).content_sha256
    with pytest.raises(HoldError) as exc:
        a.blobs.delete(content)
    assert exc.value.holds == (HOLD,) and all(x in str(exc.value) for x in HOLD)
    assert raw.head_object(Bucket=bucket, Key=_key(content))["ContentLength"] > 0  # still there
    r = cli("unpublish", rid, "--reason", "x", *s)
    assert r.code == 2 and all(x in r.err for x in HOLD), r.err
    r = cli("collection", "remove", "matter-acme-v-doe", rid, *s)
    assert r.code == 2 and all(x in r.err for x in HOLD), r.err
    real = gc.referenced
    monkeypatch.setattr(gc, "referenced", lambda core: set())  # a bug that forgets every reference
    r = cli("store", "gc", "--min-age", "0", *s)
    assert r.code == 2 and all(x in r.err for x in HOLD), r.err
    monkeypatch.setattr(gc, "referenced", real)
    assert a.verify(rid).ok

    assert cli("release", HOLD[0], *s).code == 0
    assert cli("unpublish", rid, "--reason", "x", *s).code == 0
    assert cli("collection", "remove", "matter-acme-v-doe", rid, *s).code == 0
    orphan = a.blobs.put_bytes(b"orphan of a killed capture")
    r = cli("store", "gc", "--min-age", "0", "--json", *s)
    assert r.code == 0 and orphan in json.loads(r.out)["deleted"], r.out
    assert a.blobs.delete(content) is True
    with pytest.raises(ClientError):
        raw.head_object(Bucket=bucket, Key=_key(content))


def test_hold_puts_the_object_lock_legal_hold_on_and_release_takes_it_off(
        cli, s3_env: LocalSeaweed, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bucket = f"lock-{uuid.uuid4().hex[:12]}"
    a = _store(cli, tmp_path / "store", s3_env, bucket, "--object-lock", "governance", "--retain", "1d")
    rid = a.capture(site.base_url + "/plain").record_id
    other = a.capture(site.base_url + "/terms.pdf").record_id
    _held_matter(a, rid)
    with a.catalog.db() as d:
        shas = sorted(record_blobs(d, a.blobs, rid))
        others = sorted(record_blobs(d, a.blobs, other) - set(shas))
    assert len(shas) >= 4
    raw = s3_env.client()

    def status(sha: str) -> str:
        version = raw.list_object_versions(Bucket=bucket, Prefix=_key(sha))["Versions"][-1]["VersionId"]
        got = raw.get_object_legal_hold(Bucket=bucket, Key=_key(sha), VersionId=version)
        return str(got["LegalHold"]["Status"])

    ch = matter_holds.place(a, HOLD[0], HOLD[1], actor="tester")
    assert ch.server_legal_hold and ch.objects == len(shas)
    assert {status(s) for s in shas} == {"ON"}
    assert all(a.blobs.legal_hold(s) for s in shas)  # type: ignore[union-attr]
    assert not any(a.blobs.legal_hold(s) for s in others)  # type: ignore[union-attr]
    with pytest.raises(HoldError, match=HOLD[1]):  # our refusal comes first
        a.blobs.delete(shas[0])
    # SeaweedFS enforces the legal hold: the locked version cannot go, even with the governance bypass
    version = raw.list_object_versions(Bucket=bucket, Prefix=_key(shas[0]))["Versions"][-1]["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        raw.delete_object(Bucket=bucket, Key=_key(shas[0]), VersionId=version, BypassGovernanceRetention=True)
    # a record added while the matter is held is locked at once
    matters.add(a, HOLD[0], [other], actor="tester")
    assert all(a.blobs.legal_hold(s) for s in others)  # type: ignore[union-attr]

    off = matter_holds.release(a, HOLD[0], actor="tester")
    assert off.changed and off.server_legal_hold and off.objects == len(set(shas) | set(others))
    assert {status(s) for s in shas + others} == {"OFF"}
    # with the legal hold off, governance retention is all that is left, and the bypass removes it
    raw.delete_object(Bucket=bucket, Key=_key(shas[0]), VersionId=version, BypassGovernanceRetention=True)


def test_hold_on_object_lock_store_with_a_published_record_holds_every_object(
        cli, s3_env: LocalSeaweed, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A published record's addendum names its signer's key id (``sha256:<hex>``, no blob): the hold must
    skip that name and still hold every object (review of issue 32: the hold stopped with NotFoundError
    after its catalog row was committed, leaving objects without a server legal hold)."""
    bucket = f"pub-{uuid.uuid4().hex[:12]}"
    a = _store(cli, tmp_path / "store", s3_env, bucket, "--object-lock", "governance", "--retain", "1d")
    rid = a.capture(site.base_url + "/plain").record_id
    a.publications.publish([rid], actor="tester", passphrase=NOPASS)
    _held_matter(a, rid)
    ch = matter_holds.place(a, HOLD[0], HOLD[1], actor="tester")
    with a.catalog.db() as d:
        stored = [s for s in record_blobs(d, a.blobs, rid) if a.blobs.exists(s)]
    assert ch.server_legal_hold and ch.objects == len(stored) >= 5
    assert all(a.blobs.legal_hold(s) for s in stored)  # type: ignore[union-attr]
    off = matter_holds.release(a, HOLD[0], actor="tester")
    assert off.objects == len(stored)


def test_a_record_added_to_a_held_matter_by_collection_add_gets_the_server_legal_hold(
        cli, s3_env: LocalSeaweed, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`collection add matter-<name> ID` is `matter add` (one list, one concept): the record is held by
    our guard at once, and its objects must get the Object Lock legal hold too (review of issue 32:
    only `matter add` put it on)."""
    bucket = f"cadd-{uuid.uuid4().hex[:12]}"
    a = _store(cli, tmp_path / "store", s3_env, bucket, "--object-lock", "governance", "--retain", "1d")
    rid = a.capture(site.base_url + "/plain").record_id
    other = a.capture(site.base_url + "/terms.pdf").record_id
    _held_matter(a, rid)
    matter_holds.place(a, HOLD[0], HOLD[1], actor="tester")
    assert cli("collection", "add", "matter-" + HOLD[0], other, "--store", str(a.root)).code == 0
    with a.catalog.db() as d:
        shas = sorted(record_blobs(d, a.blobs, other))
    assert len(shas) >= 4 and all(a.blobs.legal_hold(s) for s in shas)  # type: ignore[union-attr]


def test_an_addendum_made_after_the_hold_gets_the_server_legal_hold_too(
        cli, s3_env: LocalSeaweed, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A held record's later addenda (here a publication, then a derived text) are new objects of the
    record: the server's legal hold follows the commit onto them (review of issue 32, finding 4)."""
    bucket = f"late-{uuid.uuid4().hex[:12]}"
    a = _store(cli, tmp_path / "store", s3_env, bucket, "--object-lock", "governance", "--retain", "1d")
    rid = a.capture(site.base_url + "/plain").record_id
    _held_matter(a, rid)
    matter_holds.place(a, HOLD[0], HOLD[1], actor="tester")
    with a.catalog.db() as d:
        before = set(record_blobs(d, a.blobs, rid))
    a.publications.publish([rid], actor="tester", passphrase=NOPASS)
    with a.catalog.db() as d:
        later = sorted(s for s in set(record_blobs(d, a.blobs, rid)) - before if a.blobs.exists(s))
    assert later, "the publication added an object"
    assert all(a.blobs.legal_hold(s) for s in later)  # type: ignore[union-attr]
