"""Bad input: a clear one-line error, the documented exit code, and nothing half-written."""

from __future__ import annotations

import pytest

from archiver.api import Archive
from tests.conftest import https_url, store_snapshot


@pytest.mark.parametrize(("url", "code", "words"), [
    ("not a url", 2, "malformed"),
    ("example.org/privacy", 2, "no scheme"),
    ("http://", 2, "no host"),
    ("http://[::1", 2, "malformed"),
    ("ftp://127.0.0.1/file", 2, "unsupported scheme"),
    ("file:///etc/passwd", 2, "unsupported scheme"),
    ("javascript:alert(1)", 2, "unsupported scheme"),
    ("data:text/html,hi", 2, "unsupported scheme"),
    ("http://does-not-exist.invalid/", 3, "cannot resolve"),
    ("http://127.0.0.1:1/", 3, "cannot connect"),
])
def test_bad_urls(archive: Archive, cli, url: str, code: int, words: str) -> None:
    before = store_snapshot(archive.root)
    r = cli("capture", url, "--store", str(archive.root))
    assert r.code == code, r.err
    assert words in r.err.lower()
    assert store_snapshot(archive.root) == before
    assert archive.catalog.count() == 0


@pytest.mark.parametrize(("path", "setup", "code", "words"), [
    ("/loop-a", {}, 3, "redirect loop"),
    ("/chain0", {}, 3, "more than 10 redirects"),
    ("/to-ftp", {}, 2, "unsupported scheme"),
    ("/missing", {}, 3, "http 404"),
    ("/bomb", {"capture.max_decoded_bytes": "1000000"}, 3, "decoded body exceeds"),
    ("/badgzip", {}, 3, "not valid gzip"),
    ("/declared-big", {"capture.max_bytes": "1000000"}, 3, "size cap"),
    ("/oversize", {"capture.max_bytes": "1000000"}, 3, "size cap"),
    ("/slow", {"capture.deadline": "1.5", "capture.timeout": "5"}, 3, "deadline"),
])
def test_bad_responses(archive: Archive, cli, site, path: str, setup: dict[str, str], code: int,
                       words: str) -> None:
    for k, v in setup.items():
        archive.config.set(k, v)
    before = store_snapshot(archive.root)
    r = cli("capture", site.base_url + path, "--store", str(archive.root))
    assert r.code == code, r.err
    assert words in r.err.lower(), r.err
    assert store_snapshot(archive.root) == before, "temp files or blobs were left behind"
    assert archive.catalog.count() == 0


def test_non_2xx_kept_with_allow_status(archive: Archive, cli, site) -> None:
    r = cli("capture", site.base_url + "/missing", "--allow-status", "--json", "--store", str(archive.root))
    assert r.code == 0, r.err
    assert '"status": 404' in r.out and '"allow_status": true' in r.out


def test_private_targets_refused_by_default(tmp_path, cli, site, monkeypatch) -> None:
    monkeypatch.delenv("ARCHIVER_ALLOW_PRIVATE", raising=False)
    a, _ = Archive.init(tmp_path / "s")
    before = store_snapshot(a.root)
    r = cli("capture", site.base_url + "/plain", "--store", str(a.root))
    assert r.code == 2 and "not a public address" in r.err
    assert store_snapshot(a.root) == before
    for target in ("http://localhost:9/", "http://169.254.169.254/latest/", "http://10.0.0.1/", "http://[::1]:9/"):
        r = cli("capture", target, "--store", str(a.root))
        assert r.code == 2 and "not a public address" in r.err, (target, r.err)
    # each of the three ways to allow it works
    assert cli("capture", site.base_url + "/plain", "--allow-private", "--store", str(a.root)).code == 0
    monkeypatch.setenv("ARCHIVER_ALLOW_PRIVATE", "1")
    assert cli("capture", site.base_url + "/plain", "--store", str(a.root)).code == 0
    monkeypatch.delenv("ARCHIVER_ALLOW_PRIVATE")
    a.config.set("capture.allow_private", "true")
    assert cli("capture", site.base_url + "/plain", "--store", str(a.root)).code == 0


def test_tls_failure_without_trust(archive: Archive, cli, https_site) -> None:
    before = store_snapshot(archive.root)
    r = cli("capture", https_url(https_site, "/plain"), "--store", str(archive.root))
    assert r.code == 3 and "tls failure" in r.err.lower()
    assert store_snapshot(archive.root) == before


def test_missing_and_corrupt_store(tmp_path, cli) -> None:
    r = cli("list", "--store", str(tmp_path / "nowhere"))
    assert r.code == 4 and "no archiver store" in r.err
    a, _ = Archive.init(tmp_path / "s")
    (a.root / "catalog.sqlite3").write_bytes(b"this is not sqlite" * 100)
    r = cli("list", "--store", str(a.root))
    assert r.code == 4, r.err


def test_unknown_record_and_artifact(archive: Archive, cli, site, tmp_path) -> None:
    assert cli("show", "ZZZZ-ZZZZ", "--store", str(archive.root)).code == 2
    assert cli("show", "nonsense", "--store", str(archive.root)).code == 2
    m = archive.capture(site.base_url + "/plain")
    r = cli("get", m.record_id, "screenshot", "-o", str(tmp_path / "x"), "--store", str(archive.root))
    assert r.code == 2 and "no artifact" in r.err
    assert not (tmp_path / "x").exists()


def test_bad_config(archive: Archive, cli) -> None:
    assert cli("config", "set", "capture.nope", "1", "--store", str(archive.root)).code == 2
    assert cli("config", "set", "capture.max_bytes", "lots", "--store", str(archive.root)).code == 2
    assert cli("config", "set", "capture.allow_private", "maybe", "--store", str(archive.root)).code == 2
