"""Verdicts you can stake a case on (issue 27, item 2): the three false TAMPERED/FAIL verdicts a new
user met, each replayed with the exact CLI steps, and the rules the verdict follows (computed from
check categories, never from text; context never fails)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archiver.api import Archive

TSA_FREE = {"capture.allow_private": "true"}


def _store(tmp_path: Path, name: str, operator: str) -> tuple[Archive, list[str]]:
    a, _ = Archive.init(tmp_path / name, operator=operator)
    for k, v in TSA_FREE.items():
        a.config.set(k, v)
    return a, ["--store", str(a.root)]


def _checks(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["name"]: c for c in report["checks"]}


def _signer(cli, s: list[str]) -> str:  # type: ignore[no-untyped-def]
    """The store's signing key id, as `archiver keys list` shows it."""
    return str(next(k["key_id"] for k in json.loads(cli("keys", "list", "--json", *s).out) if k["signing"]))


def _two_versions(cli, site, s: list[str]) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Capture one URL twice: the second record chains to the first (``previous``)."""
    url = site.base_url + "/plain"
    first = json.loads(cli("capture", url, "--json", *s).out)["record_id"]
    second = json.loads(cli("capture", url, "--json", *s).out)["record_id"]
    return first, second


# ---- defect 2: importing one record of a chain ------------------------------------------------------------
def test_one_record_of_a_chain_imported_alone_verifies_and_says_the_chain_is_partial(tmp_path, site, cli) -> None:  # type: ignore[no-untyped-def]
    _a, sa = _store(tmp_path, "A", "Alice")
    first, second = _two_versions(cli, site, sa)
    assert json.loads(cli("show", second, "--json", *sa).out)["previous"]["record_id"] == first
    signer = _signer(cli, sa)
    bundle = tmp_path / "second.wacz"
    assert cli("export", second, "-o", str(bundle), *sa).code == 0
    _b, sb = _store(tmp_path, "B", "Bob")
    r = cli("import", str(bundle), "--trust-key", signer, *sb)
    assert r.code == 0, r.err
    r = cli("verify", second, "--json", *sb)
    assert r.code == 0, r.out
    v = json.loads(r.out)
    assert v["verdict"] == "verified" and v["ok"] is True
    prev = _checks(v)["previous"]
    assert prev["status"] == "SKIPPED" and prev["category"] == "context"
    assert f"chain partial: predecessor {first} is not in this store" in prev["detail"]
    assert cli("verify", "--all", *sb).code == 0
    # the bundle alone says the same: the predecessor is not in it, which leaves the record complete
    r = cli("verify", str(bundle), "--trust-key", signer, "--json")
    assert r.code == 0, r.out
    rep = json.loads(r.out)
    assert rep["verdict"] == "verified"
    prev = _checks(rep["reports"][1])["previous"]
    assert prev["status"] == "SKIPPED" and prev["category"] == "context"
    assert f"chain partial: predecessor {first} is not in the bundle" in prev["detail"]


def test_a_present_predecessor_with_another_manifest_is_still_tampering(tmp_path, site, cli) -> None:  # type: ignore[no-untyped-def]
    a, sa = _store(tmp_path, "A", "Alice")
    first, second = _two_versions(cli, site, sa)
    other = "ab" * 32
    with a.catalog.db() as d:  # the catalog now says the predecessor is another manifest
        d.run("UPDATE records SET manifest_sha256 = ? WHERE record_id = ?", (other, first))
    v = json.loads(cli("verify", second, "--json", *sa).out)
    prev = _checks(v)["previous"]
    assert prev["status"] == "FAIL" and prev["category"] == "integrity"
    assert v["verdict"] == "tampered"


# ---- defect 3: re-exporting an imported record --------------------------------------------------------------
def test_an_imported_record_exported_again_keeps_its_custody_and_verifies(tmp_path, site, cli) -> None:  # type: ignore[no-untyped-def]
    _a, sa = _store(tmp_path, "A", "Alice")
    _first, second = _two_versions(cli, site, sa)
    signer = _signer(cli, sa)
    one = tmp_path / "one.wacz"
    assert cli("export", second, "-o", str(one), *sa).code == 0
    _b, sb = _store(tmp_path, "B", "Bob")
    assert cli("import", str(one), "--trust-key", signer, *sb).code == 0
    two = tmp_path / "two.wacz"
    r = cli("export", second, "-o", str(two), *sb)
    assert r.code == 0, r.err
    bob = _signer(cli, sb)
    # in B, and on a machine with no store that pins Alice's key (the record's) and Bob's (the package's)
    for args in (sb, ["--trust-key", signer, "--trust-key", bob]):
        r = cli("verify", str(two), "--json", *args)
        assert r.code == 0, r.out
        rep = json.loads(r.out)
        assert rep["verdict"] == "verified"
        custody = _checks(rep["reports"][1])["custody.record"]
        assert custody["status"] == "PASS" and "captured" in custody["detail"] and "Alice" in custody["detail"]
    # pinning Alice's key alone: the record holds and is hers, but Bob signed the package and its custody
    rep = json.loads(cli("verify", str(two), "--trust-key", signer, "--json").out)
    assert rep["verdict"] == "intact-untrusted" and rep["reports"][1]["verdict"] == "verified"
    # and once more through a third store: the custody nests, and still verifies
    _c, sc = _store(tmp_path, "C", "Carol")
    assert cli("import", str(two), "--trust-key", signer, "--trust-key", bob, *sc).code == 0
    assert cli("verify", second, *sc).code == 0
    three = tmp_path / "three.wacz"
    assert cli("export", second, "-o", str(three), *sc).code == 0
    r = cli("verify", str(three), "--json", *sc)
    assert r.code == 0 and json.loads(r.out)["verdict"] == "verified", r.out
    custody = _checks(json.loads(r.out)["reports"][1])["custody.record"]
    assert "Alice" in custody["detail"] and "2 import(s)" in custody["detail"]


def test_damaged_carried_custody_is_caught(tmp_path, site, cli) -> None:  # type: ignore[no-untyped-def]
    """The source custody an import keeps is checked, not merely carried."""
    _a, sa = _store(tmp_path, "A", "Alice")
    _first, second = _two_versions(cli, site, sa)
    bundle = tmp_path / "one.wacz"
    assert cli("export", second, "-o", str(bundle), *sa).code == 0
    b, sb = _store(tmp_path, "B", "Bob")
    assert cli("import", str(bundle), "--trust-key", _signer(cli, sa), *sb).code == 0
    (entry,) = [e for e in b.custody.for_record(second) if e.event == "import"]
    carried = b.blobs.path(entry.detail["source_custody_sha256"])
    carried.chmod(0o644)
    carried.write_bytes(b"")  # the kept source custody is damaged in B
    v = json.loads(cli("verify", second, "--json", *sb).out)
    custody = _checks(v)["custody.record"]
    assert custody["status"] == "FAIL" and custody["category"] == "integrity" and v["verdict"] == "tampered"


# ---- defect 1: key rotation ---------------------------------------------------------------------------------
def test_after_key_rotation_a_bundle_carries_every_key_and_the_rotation(tmp_path, site, cli) -> None:  # type: ignore[no-untyped-def]
    a, sa = _store(tmp_path, "A", "Alice")
    rid = json.loads(cli("capture", site.base_url + "/plain", "--json", *sa).out)["record_id"]
    old_key = _signer(cli, sa)
    r = cli("keys", "generate", "--replace", *sa)
    assert r.code == 0, r.err
    new_key = r.out.split()[3]
    assert new_key.startswith("sha256:") and new_key != old_key
    r = cli("derive", rid, "--json", *sa)
    assert r.code == 0 and json.loads(r.out)[0]["outcome"] == "derived", r.out + r.err
    assert cli("verify", rid, *sa).code == 0
    bundle = tmp_path / "rotated.wacz"
    assert cli("export", rid, "-o", str(bundle), *sa).code == 0
    r = cli("verify", str(bundle), "--json", *sa)  # in the store that made it
    assert r.code == 0, r.out
    assert json.loads(r.out)["verdict"] == "verified"
    # the store keeps every key it signed with, and the rotation is filed with a custody entry
    assert a.catalog.signer_key_blob(old_key) is not None and a.catalog.signer_key_blob(new_key) is not None
    assert {old_key, new_key} <= set(a.keys.trusted())
    (rotate,) = [e for e in a.custody.entries() if e.event == "key-rotate"]
    assert rotate.detail["old_key_id"] == old_key and rotate.detail["new_key_id"] == new_key
    import zipfile

    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
    for kid in (old_key, new_key):
        assert f"provenance/signer.{kid.removeprefix('sha256:')}.pub.pem" in names
    assert f"provenance/key-rotation.{new_key.removeprefix('sha256:')}.json" in names
    # elsewhere, pinning only the key people knew before the rotation
    r = cli("verify", str(bundle), "--trust-key", old_key, "--json")
    assert r.code == 0, r.out
    rep = json.loads(r.out)
    assert rep["verdict"] == "verified"
    checks = _checks(rep["reports"][1])
    assert checks["derived.1.addendum"]["status"] == "PASS" and new_key in checks["derived.1.addendum"]["detail"]
    assert "vouched for by" in checks["signer.trusted"]["detail"]
    # nobody trusted: intact, not tampered; a key is never trusted because the bundle carries it
    r = cli("verify", str(bundle), "--json")
    rep = json.loads(r.out)
    assert r.code == 1 and rep["verdict"] == "intact-untrusted", r.out
    # pinning the new key alone does not vouch for the old one (trust passes forward only)
    rep = json.loads(cli("verify", str(bundle), "--trust-key", new_key, "--json").out)
    assert rep["verdict"] == "intact-untrusted"
    # a store that imports it, pinning the old key, verifies the record with the new key's addendum
    b, sb = _store(tmp_path, "B", "Bob")
    assert cli("import", str(bundle), "--trust-key", old_key, *sb).code == 0, "import"
    assert cli("verify", rid, *sb).code == 0
    assert [e.event for e in b.custody.entries()].count("key-rotate") == 1


def test_a_rotation_statement_changed_after_signing_vouches_for_nothing(tmp_path, site, cli) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    a, sa = _store(tmp_path, "A", "Alice")
    rid = json.loads(cli("capture", site.base_url + "/plain", "--json", *sa).out)["record_id"]
    old_key = _signer(cli, sa)
    assert cli("keys", "generate", "--replace", *sa).code == 0
    assert cli("derive", rid, *sa).code == 0
    bundle = tmp_path / "rotated.wacz"
    assert cli("export", rid, "-o", str(bundle), *sa).code == 0
    with zipfile.ZipFile(bundle) as zf:
        (name,) = [n for n in zf.namelist() if n.startswith("provenance/key-rotation.")]
    from archiver.provenance.keys import read_rotation

    rot = read_rotation(a.blobs.read_bytes(a.catalog.signer_key_blob("rotation-to:" + rot_id(name)) or ""))
    assert rot.old_key_id == old_key
    doc = json.loads(a.blobs.read_bytes(a.catalog.signer_key_blob("rotation-to:" + rot_id(name)) or ""))
    doc["rotated_at"] = "1999-01-01T00:00:00Z"  # any change breaks both signatures
    with pytest.raises(Exception, match="not signed by"):
        read_rotation(json.dumps(doc).encode())


def rot_id(member: str) -> str:
    return "sha256:" + member.removeprefix("provenance/key-rotation.").removesuffix(".json")


# ---- the verdict rule ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("failed", "verdict"), [
    ((), "verified"),
    (("trust",), "intact-untrusted"),
    (("completeness", "trust"), "incomplete"),
    (("integrity", "completeness", "trust"), "tampered"),
])
def test_the_verdict_follows_categories_not_words(failed, verdict) -> None:  # type: ignore[no-untyped-def]
    from archiver.records import Category, Check, Status, Verdict

    checks = [Check(f"c{i}", Status.FAIL, Category(cat), "not trusted") for i, cat in enumerate(failed)]
    checks.append(Check("previous", Status.SKIPPED, Category.CONTEXT, "chain partial"))
    assert Verdict.of(checks) is Verdict(verdict)
    with pytest.raises(ValueError, match="cannot FAIL"):
        Check("previous", Status.FAIL, Category.CONTEXT)
