"""The web app under load: `archiver serve` on a store of BENCH_WEB_RECORDS (10,000) real-page records.

1. Builds the store once (cached in bench/out/web-store): the corpus HTML pages of ../shared/corpus
   served from 127.0.0.1 under BENCH_WEB_RECORDS distinct URLs, captured with `archiver capture -i -j 8`.
2. `wrk` (the HTTP benchmarking tool, a peer no one here wrote) with 50 connections for BENCH_WEB_SECONDS
   (60) reads record JSON, provenance JSON, record pages and artifact downloads with a viewer token:
   requests/s, p50/p95/p99 latency, non-2xx and socket errors.
3. The same for the HTML pages alone (records list, record page, verify lookup): the server time of a
   page, the figure the web-app issue bounds at 50 ms p95.
4. 20 capture jobs submitted at once: how many end done, failed, or lost.
Loopback only; asserts nothing; writes bench/results-web.md.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import requests

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
RECORDS = int(os.environ.get("BENCH_WEB_RECORDS", "10000"))
SECONDS = int(os.environ.get("BENCH_WEB_SECONDS", "60"))
ARCHIVER = [sys.executable, "-m", "archiver.cli"]
OUT = ROOT / "bench" / "out"


def corpus_pages() -> list[bytes]:
    pages = [p.read_bytes() for p in sorted(CORPUS.rglob("*.html"))]
    if not pages:
        sys.exit(f"no corpus pages under {CORPUS}")
    return pages


class Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pages: ClassVar[list[bytes]] = []

    def do_GET(self) -> None:
        m = re.search(r"(\d+)", self.path)
        body = self.pages[int(m.group(1)) % len(self.pages)] if m else b"<html></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_store(site: str) -> Path:
    store = OUT / f"web-store-{RECORDS}"
    if (store / "archiver-store.json").is_file():
        return store
    shutil.rmtree(store, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run([*ARCHIVER, "init", "--store", str(store)], check=True, capture_output=True)
    subprocess.run([*ARCHIVER, "config", "set", "capture.allow_private", "true", "--store", str(store)], check=True,
                   capture_output=True)
    subprocess.run([*ARCHIVER, "config", "set", "capture.per_host", "8", "--store", str(store)], check=True,
                   capture_output=True)
    urls = OUT / "web-urls.txt"
    urls.write_text("".join(f"{site}/policy/{i}\tEntity {i % 97}\tPrivacy Policy\n" for i in range(RECORDS)))
    started = time.monotonic()
    subprocess.run([*ARCHIVER, "capture", "-i", str(urls), "-j", "8", "--json", "--store", str(store)],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"built a store of {RECORDS} records in {time.monotonic() - started:.0f} s", flush=True)
    return store


WRK_SCRIPT = """
local ids = {}
for line in io.lines(os.getenv("WRK_IDS")) do ids[#ids + 1] = line end
local kinds = {%s}
math.randomseed(7)
request = function()
  local id = ids[math.random(#ids)]
  local path = kinds[math.random(#kinds)]:gsub("{id}", id)
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")})
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"seconds\\": %%f, \\"non2xx\\": %%d, \\"socket_errors\\": %%d, "
    .. "\\"p50\\": %%f, \\"p95\\": %%f, \\"p99\\": %%f}\\n", summary.requests, summary.duration / 1e6,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3))
end
"""


def run_wrk(base: str, token: str, ids: Path, kinds: list[str], seconds: int, conns: int) -> dict[str, float]:
    script = OUT / "wrk.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(k) for k in kinds))
    env = {**os.environ, "WRK_IDS": str(ids), "WRK_TOKEN": token}
    proc = subprocess.run(["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
                           "-s", str(script), base], capture_output=True, text=True, env=env, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, float] = json.loads(line[5:])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def capture_burst(base: str, token: str, site: str, n: int = 20) -> dict[str, int]:
    h = {"Authorization": f"Bearer {token}"}

    def one(i: int) -> str:
        r = requests.post(f"{base}/api/v1/captures", json={"url": f"{site}/burst/{i}"}, headers=h, timeout=30)
        r.raise_for_status()
        return str(r.json()["job"])

    with ThreadPoolExecutor(n) as pool:
        jobs = list(pool.map(one, range(n)))
    deadline = time.monotonic() + 300
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {j: requests.get(f"{base}/api/v1/captures/{j}", headers=h, timeout=30).json()["status"] for j in jobs}
        if all(s in ("done", "failed") for s in states.values()):
            break
        time.sleep(0.5)
    values = list(states.values())
    return {"submitted": n, "done": values.count("done"), "failed": values.count("failed"),
            "lost": n - values.count("done") - values.count("failed")}


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (make bench installs it)")
    Site.pages = corpus_pages()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{httpd.server_address[1]}"
    store = build_store(site)
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    made = subprocess.run([*ARCHIVER, "tokens", "create", f"bench-{os.getpid()}", "--role", "capturer", "--json",
                           "--store", str(store)], capture_output=True, text=True, check=True)
    token = json.loads(made.stdout)["token"]
    ids_file = tmp / "ids.txt"
    listed = subprocess.run([*ARCHIVER, "list", "--all", "--json", "--store", str(store)],
                            capture_output=True, text=True, check=True)
    ids = [r["record_id"] for r in json.loads(listed.stdout)]
    random.Random(1).shuffle(ids)
    ids_file.write_text("\n".join(ids[:2000]) + "\n")
    port = free_port()
    server = subprocess.Popen([*ARCHIVER, "serve", "--store", str(store), "--port", str(port), "--workers", "4"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        mixed = run_wrk(base, token, ids_file, ["/api/v1/records/{id}", "/api/v1/records/{id}/provenance",
                                                "/records/{id}", "/api/v1/records/{id}/artifacts/content",
                                                "/api/v1/records/{id}/artifacts/warc"], SECONDS, 50)
        pages = run_wrk(base, token, ids_file, ["/", "/records/{id}", "/?q=Entity+5", "/verify?sha256=" + "0" * 64],
                        max(10, SECONDS // 3), 1)
        burst = capture_burst(base, token, site)
    finally:
        server.terminate()
        server.wait(timeout=60)
        httpd.shutdown()
        subprocess.run([*ARCHIVER, "tokens", "revoke", f"bench-{os.getpid()}", "--store", str(store)],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Web app under load (bench/bench_web.py)", "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}; "
        "server and load generator on the same machine, loopback only.", "",
        f"Store: {len(ids)} records of real corpus pages (../shared/corpus HTML under distinct URLs).", "",
        "| load | clients | seconds | requests/s | p50 ms | p95 ms | p99 ms | non-2xx | socket errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r, c in (("record JSON, provenance, record page, content + WARC downloads", mixed, 50),
                       ("HTML pages one at a time, i.e. server time (list, search, record page, verify)", pages, 1)):
        lines.append(f"| {name} | {c} | {r['seconds']:.0f} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['p99']:.1f} | {int(r['non2xx'])} | {int(r['socket_errors'])} |")
    lines += ["", f"20 capture jobs submitted at once: {burst['done']} done, {burst['failed']} failed, "
              f"{burst['lost']} lost.", ""]
    text = "\n".join(lines)
    (ROOT / "bench" / "results-web.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
