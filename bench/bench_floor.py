"""What the fixed parts of one capture cost on this machine: a floor under issue 19's goal 1.

Goal 1 asks a batch of 200 corpus pages to run at 3x wget's pages/s with no more CPU per page than
wget, on 2 cores. This script does, for each page and with none of our code, only what a capture
with full provenance cannot skip, each step by the cheapest means at hand:

- fetch: one GET on a new connection with ``http.client``, the body streamed to a temp file while
  its SHA-256 and SHA-1 are taken (the payload digests a WARC and the Wayback check need);
- warc: request and response written as two gzip members by ISA-L at level 2 (as ours), with the
  SHA-256 block digests taken on the way;
- text: lexbor (selectolax) parse and text of <body>, Unicode NFC: cheaper than any extraction that
  keeps block structure;
- store: WARC, content, text and a 3 KB manifest as blobs under ``objects/sha256/ab/cd/`` (DESIGN.md),
  each written to a temp file, fsynced, renamed, with the directory entries fsynced (and new fan-out
  directories made durable), Ed25519 over the manifest, one custody line appended and fsynced, one
  SQLite transaction (WAL, synchronous=FULL) inserting the record and its four artifacts.

The server runs in another process, so its CPU is not counted; the loop's CPU is process time of
this one process (no start-up, no batch, no timestamp). wget runs over the same URLs in the same run.
Prints a table and writes bench/results-floor.md. BENCH_FLOOR_PAGES (200), BENCH_REPEAT (3).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import multiprocessing
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import CORPUS, Site, _serve

PAGES = int(os.environ.get("BENCH_FLOOR_PAGES", "200"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
ROOT = Path(__file__).resolve().parent.parent


def _server(pages: list[bytes], conn: multiprocessing.connection.Connection) -> None:
    Site.pages = pages
    conn.send(_serve())
    conn.recv()  # runs until the parent says stop


def _durable_dir(path: Path) -> None:
    if path.is_dir():
        return
    _durable_dir(path.parent)
    path.mkdir(exist_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _adopt(objects: Path, tmp: Path, digest: str) -> None:
    final = objects / digest[:2] / digest[2:4] / digest
    _durable_dir(final.parent)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o444)
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def _put(objects: Path, tmpdir: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    fd, name = tempfile.mkstemp(dir=tmpdir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    _adopt(objects, Path(name), digest)
    return digest


def _head(status: int, reason: str, headers: Any) -> bytes:
    return (f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


class _Hashing:
    def __init__(self, out: Any) -> None:
        self.out, self.hash = out, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return int(self.out.write(data))

    def flush(self) -> None:
        self.out.flush()


class _Concat(io.RawIOBase):
    """The response block: its head, then the body file."""

    def __init__(self, head: bytes, body: Any) -> None:
        self.parts = [io.BytesIO(head)] + ([body] if body is not None else [])

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while self.parts:
            n = self.parts[0].readinto(buf)
            if n:
                return int(n)
            self.parts.pop(0)
        return 0


def run(base: str, store: Path, libraries: bool) -> dict[str, float]:
    """CPU ms per page of each step, over PAGES pages (one after the other). ``libraries``: fetch with
    requests, write the WARC with warcio, take the text with lxml (the design card's and ours)."""
    import lxml.etree
    import lxml.html
    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from isal import isal_zlib
    from isal.igzip import IGzipFile
    from selectolax.lexbor import LexborHTMLParser
    from warcio.recordloader import ArcWarcRecord
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    objects, tmpdir = store / "objects" / "sha256", store / "tmp"
    objects.mkdir(parents=True)
    tmpdir.mkdir()
    key = Ed25519PrivateKey.generate()
    db = sqlite3.connect(store / "catalog.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE records (id TEXT PRIMARY KEY, url TEXT, captured TEXT, manifest TEXT)")
    db.execute("CREATE TABLE artifacts (record TEXT, name TEXT, sha256 TEXT, size INTEGER)")
    custody = os.open(store / "custody.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    host, port = base.removeprefix("http://").split(":")
    spent: dict[str, float] = defaultdict(float)
    clock = time.process_time
    for i in range(PAGES):
        t0 = clock()
        sha256, sha1 = hashlib.sha256(), hashlib.sha1()
        fd, body_name = tempfile.mkstemp(dir=tmpdir)
        with os.fdopen(fd, "wb") as fh:
            if libraries:  # a new session a page: a capture never reuses another's connection
                with requests.Session() as session, session.get(f"{base}/page/{i}", stream=True,
                                                                headers={"User-Agent": "floor"}) as resp:
                    block = hashlib.sha256(_head(resp.status_code, resp.reason, resp.raw.headers.items()))
                    for chunk in resp.raw.stream(65536, decode_content=False):
                        sha256.update(chunk)
                        sha1.update(chunk)
                        block.update(chunk)
                        fh.write(chunk)
                    head = _head(resp.status_code, resp.reason, resp.raw.headers.items())
            else:
                conn = http.client.HTTPConnection(host, int(port))
                conn.request("GET", f"/page/{i}", headers={"User-Agent": "floor"})
                resp = conn.getresponse()
                head = _head(resp.status, resp.reason, resp.getheaders())
                block = hashlib.sha256(head)
                while chunk := resp.read(65536):
                    sha256.update(chunk)
                    sha1.update(chunk)
                    block.update(chunk)
                    fh.write(chunk)
                conn.close()
        size = os.path.getsize(body_name)
        t1 = clock()
        fd, warc_name = tempfile.mkstemp(dir=tmpdir)
        request = b"GET /page/%d HTTP/1.1\r\nUser-Agent: floor\r\n\r\n" % i
        with os.fdopen(fd, "wb") as raw, open(body_name, "rb") as body:
            out = _Hashing(raw)
            # digests taken while the bytes arrived (block, payload), as ours; warcio then takes none
            records = ((request, "request", "sha256:" + hashlib.sha256(request).hexdigest(), None),
                       (head, "response", "sha256:" + block.hexdigest(), "sha256:" + sha256.hexdigest()))
            for first, kind, block_digest, payload_digest in records:
                if libraries:  # warcio's writer inside an ISA-L gzip member per record (as ours)
                    length = len(first) + (size if kind == "response" else 0)
                    ctype = f"application/http; msgtype={kind}"
                    headers = StatusAndHeaders("", [
                        ("WARC-Type", kind), ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid4()}>"),
                        ("WARC-Date", "2026-11-29T00:00:00Z"), ("WARC-Target-URI", f"{base}/page/{i}"),
                        ("WARC-Block-Digest", block_digest), ("WARC-Payload-Digest", payload_digest or block_digest),
                        ("Content-Type", ctype), ("Content-Length", str(length))], protocol="WARC/1.1")
                    record = ArcWarcRecord("warc", kind, headers,
                                           _Concat(first, body if kind == "response" else None), None, ctype, length)
                    record.payload_length = length
                    with IGzipFile(filename="", mode="wb", fileobj=out, compresslevel=2, mtime=0) as member:
                        WARCWriter(member, gzip=False, warc_version="WARC/1.1").write_record(record)
                else:
                    z = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
                    member = z.compress(b"WARC/1.1\r\nWARC-Type: %s\r\nWARC-Block-Digest: %s\r\n\r\n"
                                        % (kind.encode(), block_digest.encode()) + first)
                    if kind == "response":
                        while chunk := body.read(65536):
                            member += z.compress(chunk)
                    out.write(member + z.flush())
        warc_sha = out.hash
        t2 = clock()
        data = Path(body_name).read_bytes()
        if libraries:
            body_el = lxml.html.document_fromstring(data, parser=lxml.etree.HTMLParser(encoding="utf-8")).find("body")
            raw_text = lxml.etree.tostring(body_el, method="text", encoding=str)
        else:
            raw_text = LexborHTMLParser(data).body.text(separator="\n")
        text = unicodedata.normalize("NFC", raw_text).encode()
        t3 = clock()
        content = sha256.hexdigest()
        _adopt(objects, Path(warc_name), warc_sha.hexdigest())
        _adopt(objects, Path(body_name), content)
        text_sha = _put(objects, tmpdir, text)
        manifest = (b'{"record":"%d","content":"%s","text":"%s","pad":"' % (i, content.encode(), text_sha.encode())
                    + b"x" * 3000 + b'"}')
        signature = key.sign(manifest)
        manifest_sha = _put(objects, tmpdir, manifest + signature.hex().encode())
        os.write(custody, f"{i} {manifest_sha}\n".encode())
        os.fsync(custody)
        with db:
            db.execute("BEGIN")
            db.execute("INSERT INTO records VALUES (?, ?, ?, ?)", (str(i), f"/page/{i}", "now", manifest_sha))
            db.executemany("INSERT INTO artifacts VALUES (?, ?, ?, ?)",
                           [(str(i), n, d, 0) for n, d in (("warc", content), ("content", content),
                                                             ("text", text_sha), ("manifest", manifest_sha))])
        t4 = clock()
        for step, took in (("fetch", t1 - t0), ("warc", t2 - t1), ("text", t3 - t2), ("store", t4 - t3)):
            spent[step] += took
    os.close(custody)
    db.close()
    out = {k: v * 1000 / PAGES for k, v in spent.items()}
    out["total"] = sum(out.values())
    return out


def _wget(base: str, tmp: Path) -> tuple[float, float]:
    """Wall and CPU ms per page."""
    urls = tmp / "urls.txt"
    urls.write_text("".join(f"{base}/page/{i}\n" for i in range(PAGES)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(["wget", "-q", "-O", "/dev/null", f"--warc-file={tmp}/w", "-i", str(urls)], cwd=tmp, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall * 1000 / PAGES, ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000 / PAGES


def main() -> None:
    files = sorted(CORPUS.glob("*/*/*.html"))
    if not files:
        sys.exit("../shared/corpus is not beside the checkout")
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_server, args=([f.read_bytes() for f in files], child), daemon=True)
    server.start()
    base = parent.recv()
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    wget = []
    with tempfile.TemporaryDirectory() as d:
        for n in range(REPEAT):  # interleaved: this VM's speed drifts within minutes
            for libraries in (False, True):
                runs[libraries].append(run(base, Path(d) / f"store-{n}-{libraries}", libraries))
            if shutil.which("wget"):
                (Path(d) / f"wget-{n}").mkdir()
                wget.append(_wget(base, Path(d) / f"wget-{n}"))
    parent.send("stop")
    order = ["fetch", "warc", "text", "store", "total"]
    cpus = os.cpu_count() or 1
    wget_wall = statistics.median(w for w, _ in wget) if wget else float("nan")
    wget_cpu = statistics.median(c for _, c in wget) if wget else float("nan")
    # 3x wget's pages/s on ``cpus`` cores leaves cpus * wget's wall per page / 3 core-ms per page
    budget = min(cpus * wget_wall / 3, wget_cpu)
    lines = ["# The floor of one capture (issue 19, goal 1)", "",
             f"Machine: {platform.platform()}, Python {platform.python_version()}, {cpus} CPUs; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. {PAGES} fetches of the {len(files)} corpus HTML "
             f"pages in turn, served by another process on 127.0.0.1; median of {REPEAT} runs each, interleaved. What "
             "each step is: bench/bench_floor.py's docstring.", "",
             "| loop | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
    floors = {}
    for libraries, label in ((False, "bare: http.client, ISA-L members, lexbor flat text"),
                             (True, "requests, warcio in ISA-L members, lxml flat text")):
        floors[libraries] = {k: statistics.median(r[k] for r in runs[libraries]) for k in order}
        lines.append(f"| {label} | " + " | ".join(f"{floors[libraries][k]:.1f}" for k in order) + " |")
    lines += ["", f"wget --warc-file over the same URLs: {wget_cpu:.1f} CPU ms and {wget_wall:.1f} wall ms per page. "
              f"Goal 1's budget, what a whole batch may spend per page: at 3x wget's pages/s on {cpus} cores, "
              f"{cpus} x wget's wall per page / 3, and no more than wget's CPU per page: **{budget:.1f} CPU ms**. "
              f"The loop with the libraries leaves **{budget - floors[True]['total']:.1f} ms** of it (the bare loop "
              f"{budget - floors[False]['total']:.1f} ms) for everything listed below, if the batch kept both cores "
              "busy from its first instant to its last.", "",
              "CPU ms per page. Neither loop includes start-up, the batch, its timestamp, the manifest's "
              "contents, the exchange's metadata (server IP, TLS), text that keeps block structure, or the "
              "WARC's warcinfo, metadata and text records."]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results-floor.md").write_text(text, "utf-8")


if __name__ == "__main__":
    main()
