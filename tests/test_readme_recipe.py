"""The README's "Verify without this tool" recipes, run exactly as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.options import CaptureOptions

README = Path(__file__).resolve().parent.parent / "README.md"


def _block(marker: str) -> str:
    text = README.read_text("utf-8")
    m = re.search(rf"<!-- recipe:{marker} -->\s*```\w+\n(.*?)```", text, re.S)
    assert m, f"recipe {marker} missing from README"
    return m.group(1)


@pytest.fixture()
def exported(archive: Archive, site, tmp_path: Path, cli) -> Path:
    opts = CaptureOptions(entity="Example Inc.", document="Privacy Policy")
    rid = archive.capture(site.base_url + "/br", opts).record_id
    work = tmp_path / "work"
    work.mkdir()
    assert cli("get", rid, "manifest", "-o", str(work / "manifest.json"), "--store", str(archive.root)).code == 0
    assert cli("keys", "export-public", "-o", str(work / "signer.pub.pem"), "--store", str(archive.root)).code == 0
    return work


def _env() -> dict[str, str]:
    # the recipe says python3; make it the interpreter that has rfc8785 and cryptography
    import os

    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_recipe_verifies_and_detects_tampering(exported: Path) -> None:
    script = _block("signature")
    proc = subprocess.run(["bash", "-c", script], cwd=exported, capture_output=True, text=True, env=_env(),
                          check=False)
    assert proc.returncode == 0 and "Signature Verified Successfully" in proc.stdout, proc.stdout + proc.stderr
    manifest = exported / "manifest.json"
    manifest.write_text(manifest.read_text("utf-8").replace('"Example Inc."', '"Other Inc."'), "utf-8")
    proc = subprocess.run(["bash", "-c", script], cwd=exported, capture_output=True, text=True, env=_env(),
                          check=False)
    assert proc.returncode != 0


def test_python_recipe_verifies(exported: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _block("python")], cwd=exported, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0 and "signature OK" in proc.stdout, proc.stderr


def test_key_id_recipe(exported: Path, archive: Archive) -> None:
    proc = subprocess.run("openssl pkey -pubin -in signer.pub.pem -outform DER | tail -c 32 | sha256sum",
                          shell=True, cwd=exported, capture_output=True, text=True, check=False)
    key_id = archive.keys.list()[0].key_id
    assert proc.stdout.split()[0] == key_id.split(":", 1)[1]


def _fetch_timestamp_files(archive: Archive, rid: str, work: Path) -> None:
    work.mkdir()
    archive.get(rid, "manifest", work / "manifest.json")
    archive.get(rid, "timestamp", work / "manifest.tsr")
    archive.get(rid, "tsa-chain", work / "tsa-chain.pem")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_timestamp_recipe(stamped: Archive, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rid = stamped.capture(site.base_url + "/plain").record_id
    work = tmp_path / "ts"
    _fetch_timestamp_files(stamped, rid, work)
    proc = subprocess.run(["bash", "-c", _block("timestamp")], cwd=work, capture_output=True, text=True,
                          env=_env(), check=False)
    assert proc.returncode == 0 and "Verification: OK" in proc.stdout, proc.stdout + proc.stderr
    (work / "manifest.json").write_bytes((work / "manifest.json").read_bytes().replace(b"200", b"201", 1))
    proc = subprocess.run(["bash", "-c", _block("timestamp")], cwd=work, capture_output=True, text=True,
                          env=_env(), check=False)
    assert proc.returncode != 0 and "Verification: FAILED" in proc.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_batch_timestamp_recipe(stamped: Archive, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = stamped.capture_batch([(f"{site.base_url}/plain?{i}", None, None) for i in range(7)], jobs=3)
    rid = results[5].record_id
    assert rid
    work = tmp_path / "batch"
    _fetch_timestamp_files(stamped, rid, work)
    script = _block("batch").replace("7KQ2-M9XD", rid)
    env = {**_env(), "ARCHIVER_HOME": str(stamped.root)}
    proc = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0 and "Verification: OK" in proc.stdout, proc.stdout + proc.stderr
    # another batch member's manifest does not lead to the root with this record's proof
    stamped.get(results[2].record_id or "", "manifest", work / "manifest.json")
    proc = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode != 0 and "not in this batch" in proc.stderr
