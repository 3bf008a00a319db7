"""Hostile inputs, table-driven: each kind gets its documented exit code and message, and the store's
files are exactly as they were (a snapshot before and after)."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import brotlicffi as brotli
import pytest

from archiver.api import Archive
from archiver.demo.server import SampleSite, send

from .conftest import ROUTES, STATE, https_url, store_snapshot

ROUTES["/brbomb"] = lambda h: send(h, 200, brotli.compress(b"\0" * 30_000_000), "text/html",
                                   {"Content-Encoding": "br"})
ROUTES["/to-private"] = lambda h: send(h, 302, b"", "text/plain", {"Location": "http://10.0.0.1/admin"})
ROUTES["/to-metadata"] = lambda h: send(h, 302, b"", "text/plain",
                                        {"Location": "http://169.254.169.254/latest/meta-data/"})

Setup = Callable[[Archive, Path], list[str]]


def _capture(url: str, *extra: str, config: dict[str, str] | None = None) -> Setup:
    def setup(archive: Archive, tmp: Path) -> list[str]:
        for k, v in (config or {}).items():
            archive.config.set(k, v)
        return ["capture", url, *extra]
    return setup


def _site(path: str, *extra: str, config: dict[str, str] | None = None) -> Setup:
    return _capture("{site}" + path, *extra, config=config)


def _public_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat 127.0.0.1 as public for this test so a redirect to a private address is what trips."""
    import archiver.capture.net as net

    real = net.address_is_public
    monkeypatch.setattr(net, "address_is_public", lambda ip: ip == "127.0.0.1" or real(ip))


def _wrong_passphrase(archive: Archive, tmp: Path) -> list[str]:
    """Needs a passphrase-protected store: the test makes that one itself (see the special case)."""
    return []


def _corrupt_catalog(archive: Archive, tmp: Path) -> list[str]:
    (archive.root / "catalog.sqlite3").write_bytes(b"this is not a database" * 100)
    for extra in ("catalog.sqlite3-wal", "catalog.sqlite3-shm"):
        (archive.root / extra).unlink(missing_ok=True)
    return ["list"]


def _missing_store(archive: Archive, tmp: Path) -> list[str]:
    return ["list", "--store", str(tmp / "nowhere")]


def _truncated_warc(archive: Archive, tmp: Path) -> list[str]:
    m = archive.capture(_SITE[0] + "/plain")
    p = archive.blobs.path(archive.artifact_sha256(m.record_id, "warc"))
    p.chmod(0o644)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return ["verify", m.record_id]


def _not_zip_bundle(archive: Archive, tmp: Path) -> list[str]:
    (tmp / "x.wacz").write_bytes(b"PK\x03\x04 but not really a zip")
    return ["import", str(tmp / "x.wacz")]


def _traversal_bundle(archive: Archive, tmp: Path) -> list[str]:
    with zipfile.ZipFile(tmp / "t.wacz", "w") as zf:
        zf.writestr("../../../tmp/evil", b"x")
        zf.writestr("datapackage.json", b"{}")
    return ["import", str(tmp / "t.wacz")]


def _unknown_record(archive: Archive, tmp: Path) -> list[str]:
    return ["show", "ZZZZ-ZZZZ"]


def _bad_config(archive: Archive, tmp: Path) -> list[str]:
    return ["config", "set", "capture.max_bytes", "lots"]


def _bad_style(archive: Archive, tmp: Path) -> list[str]:
    m = archive.capture(_SITE[0] + "/plain")
    return ["cite", m.record_id, "--style", "harvard"]


def _bad_interval(archive: Archive, tmp: Path) -> list[str]:
    return ["watch", "add", _SITE[0] + "/plain", "--every", "sometimes"]


_SITE: list[str] = []

KINDS: list[tuple[str, Setup, int, str]] = [
    ("no scheme", _capture("example.org/privacy"), 2, "no scheme"),
    ("garbage", _capture("not a url"), 2, "malformed"),
    ("no host", _capture("http://"), 2, "no host"),
    ("broken IPv6 literal", _capture("http://[::1"), 2, "malformed"),
    ("ftp scheme", _capture("ftp://127.0.0.1/f"), 2, "unsupported scheme"),
    ("file scheme", _capture("file:///etc/passwd"), 2, "unsupported scheme"),
    ("javascript scheme", _capture("javascript:alert(1)"), 2, "unsupported scheme"),
    ("data scheme", _capture("data:text/html,hi"), 2, "unsupported scheme"),
    ("loopback IPv4", _capture("http://127.0.0.1:9/", "--store-private-off"), 2, "not a public address"),
    ("loopback IPv6", _capture("http://[::1]:9/", "--store-private-off"), 2, "not a public address"),
    ("link-local IPv6", _capture("http://[fe80::1]:9/", "--store-private-off"), 2, "not a public address"),
    ("DNS name resolving to 127.0.0.1", _capture("http://localhost:9/", "--store-private-off"), 2,
     "not a public address"),
    ("cloud metadata address", _capture("http://169.254.169.254/latest/", "--store-private-off"), 2,
     "not a public address"),
    ("RFC 1918 address", _capture("http://10.0.0.1/", "--store-private-off"), 2, "not a public address"),
    ("unspecified address", _capture("http://0.0.0.0:9/", "--store-private-off"), 2, "not a public address"),
    ("redirect to a private address", _site("/to-private", "--store-private-off", "--public-loopback"), 2,
     "not a public address"),
    ("redirect to the metadata service", _site("/to-metadata", "--store-private-off", "--public-loopback"), 2,
     "not a public address"),
    ("DNS failure", _capture("http://does-not-exist.invalid/"), 3, "cannot resolve"),
    ("connection refused", _capture("http://127.0.0.1:1/"), 3, "cannot connect"),
    ("redirect loop", _site("/loop-a"), 3, "redirect loop"),
    ("too many redirects", _site("/chain0"), 3, "more than 10 redirects"),
    ("redirect to ftp", _site("/to-ftp"), 2, "unsupported scheme"),
    ("HTTP 404", _site("/missing"), 3, "http 404"),
    ("gzip bomb", _site("/bomb", config={"capture.max_decoded_bytes": "1000000"}), 3, "decoded body exceeds"),
    ("brotli bomb", _site("/brbomb", config={"capture.max_decoded_bytes": "1000000"}), 3, "decoded body exceeds"),
    ("corrupt gzip", _site("/badgzip"), 3, "not valid gzip"),
    ("declared oversize", _site("/declared-big", config={"capture.max_bytes": "1000000"}), 3, "size cap"),
    ("actual oversize", _site("/oversize", config={"capture.max_bytes": "1000000"}), 3, "size cap"),
    ("slow drip", _site("/slow", config={"capture.deadline": "1.5", "capture.timeout": "5"}), 3, "deadline"),
    ("untrusted TLS certificate", _capture("{https}/plain"), 3, "tls"),
    ("wrong passphrase", _wrong_passphrase, 2, "wrong passphrase"),
    ("corrupt catalog", _corrupt_catalog, 4, "catalog"),
    ("missing store", _missing_store, 4, "no archiver store"),
    ("truncated WARC", _truncated_warc, 1, "failed"),
    ("not a zip bundle", _not_zip_bundle, 1, "not a readable zip"),
    ("zip path traversal", _traversal_bundle, 1, "path traversal"),
    ("unknown record", _unknown_record, 2, "no record"),
    ("bad setting value", _bad_config, 2, "bad value"),
    ("unknown citation style", _bad_style, 2, "unknown citation style"),
    ("invalid watch interval", _bad_interval, 2, "invalid interval"),
]


def test_there_are_at_least_30_kinds() -> None:
    assert len({k for k, *_ in KINDS}) >= 30


@pytest.mark.parametrize(("kind", "setup", "code", "words"), KINDS, ids=[k for k, *_ in KINDS])
def test_hostile_input(kind: str, setup: Setup, code: int, words: str, tmp_path: Path, site: SampleSite,
                       https_site: SampleSite, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    STATE.update(policy=1, vanishing=1)
    _SITE[:] = [site.base_url]
    monkeypatch.delenv("ARCHIVER_ALLOW_PRIVATE", raising=False)
    if kind == "wrong passphrase":
        archive, _ = Archive.init(tmp_path / "store", passphrase="right horse battery")
        archive.config.set("capture.allow_private", "true")
        monkeypatch.setenv("ARCHIVER_KEY_PASSPHRASE", "wrong")
        args = ["capture", site.base_url + "/plain"]
    else:
        archive, _ = Archive.init(tmp_path / "store")
        archive.config.set("capture.allow_private", "true")
        args = setup(archive, tmp_path)
    if "--store-private-off" in args:
        args.remove("--store-private-off")
        archive.config.set("capture.allow_private", "false")
    if "--public-loopback" in args:
        args.remove("--public-loopback")
        _public_loopback(monkeypatch)
    args = [a.replace("{site}", site.base_url).replace("{https}", https_url(https_site, "")) for a in args]
    if "--store" not in args:
        args += ["--store", str(archive.root)]
    before = store_snapshot(archive.root)
    r = cli(*args)
    assert r.code == code, (kind, r.code, r.out, r.err)
    assert words in (r.err + r.out).lower(), (kind, r.err, r.out)
    assert store_snapshot(archive.root) == before, f"{kind}: the store's files changed"
    shutil.rmtree(tmp_path / "store", ignore_errors=True)
