"""The public record page under load (issue 29): `archiver serve` over a store of BENCH_WEB_RECORDS (10,000)
published real-page records, read anonymously by `wrk` (a peer no one here wrote) with 50 connections.

1. The store of bench_web.py (corpus HTML pages under distinct URLs, captured with `capture -i -j 8`),
   copied, and every record published with one `archiver publish` (timed: the cost of publishing).
2. wrk, 50 connections, BENCH_WEB_SECONDS (60) each: `/r/<ID>` (HTML), `/r/<ID>.json`, both mixed;
   then the same with `If-None-Match` carrying each page's real ETag (what a CDN or browser revalidating
   sends): the 304 rate. 2,000 IDs drawn at random, so the page cache is warmed by the load itself.
Loopback only; asserts nothing; writes bench/results-public.md. Goal of the issue: >= 1,000 requests/s
with p95 <= 100 ms.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_web import ARCHIVER, OUT, RECORDS, ROOT, SECONDS, Site, build_store, corpus_pages, free_port

WRK_SCRIPT = """
local lines = {}
for line in io.lines(os.getenv("WRK_PATHS")) do lines[#lines + 1] = line end
math.randomseed(7)
request = function()
  local entry = lines[math.random(#lines)]
  local path, etag = entry:match("([^\\t]+)\\t?(.*)")
  local headers = {}
  if etag ~= nil and etag ~= "" then headers["If-None-Match"] = etag end
  return wrk.format("GET", path, headers)
end
local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"non2xx\\": %d, \\"socket_errors\\": %d, "
    .. "\\"p50\\": %f, \\"p95\\": %f, \\"p99\\": %f}\\n", summary.requests, summary.duration / 1e6,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3))
end
"""


def run_wrk(base: str, paths: Path, seconds: int, conns: int = 50) -> dict[str, float]:
    script = OUT / "wrk-public.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "WRK_PATHS": str(paths)}
    proc = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), base],
                          capture_output=True, text=True, env=env, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, float] = json.loads(line[5:])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (make bench installs it)")
    Site.pages = corpus_pages()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    source = build_store(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()
    store = OUT / f"public-store-{RECORDS}"
    listed = subprocess.run([*ARCHIVER, "list", "--all", "--json", "--store", str(source)],
                            capture_output=True, text=True, check=True)
    ids = [r["record_id"] for r in json.loads(listed.stdout)]
    publish_s = None
    if not (store / "archiver-store.json").is_file():
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(source, store)
        started = time.monotonic()
        subprocess.run([*ARCHIVER, "publish", *ids, "--store", str(store)], check=True, stdout=subprocess.DEVNULL)
        publish_s = time.monotonic() - started
        print(f"published {len(ids)} records in {publish_s:.0f} s", flush=True)
    random.Random(1).shuffle(ids)
    sample = ids[:2000]
    tmp = Path(tempfile.mkdtemp(prefix="bench-public-"))
    port = free_port()
    server = subprocess.Popen([*ARCHIVER, "serve", "--store", str(store), "--port", str(port), "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, dict[str, float]] = {}
    try:
        for _ in range(300):
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        plain = {"page": [f"/r/{i}" for i in sample], "json": [f"/r/{i}.json" for i in sample]}
        plain["mixed"] = plain["page"] + plain["json"]
        # the first reading of each page renders it (then it is kept, also across restarts): timed apart,
        # one at a time, so the runs below measure the steady state a CDN-fronted archive sees
        warm: list[float] = []
        with requests.Session() as s:
            for p in plain["mixed"]:
                t0 = time.perf_counter()
                s.get(base + p, timeout=60).raise_for_status()
                warm.append(time.perf_counter() - t0)
        warm.sort()
        first = {"n": len(warm), "p50": warm[len(warm) // 2] * 1e3, "p95": warm[int(len(warm) * .95)] * 1e3}
        for name, paths in plain.items():
            f = tmp / f"{name}.txt"
            f.write_text("\n".join(paths) + "\n")
            results[name] = run_wrk(base, f, SECONDS)
        with requests.Session() as s:
            tagged = [f"{p}\t{s.get(base + p, timeout=30).headers['etag']}" for p in plain["mixed"][::4]]
        f = tmp / "conditional.txt"
        f.write_text("\n".join(tagged) + "\n")
        results["conditional"] = run_wrk(base, f, SECONDS)
        status_304 = requests.get(base + tagged[0].split("\t")[0],
                                  headers={"If-None-Match": tagged[0].split("\t")[1]}, timeout=30).status_code
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        "# Public record pages under load (bench/bench_public.py)", "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; `archiver serve` "
        "(one uvicorn process) and wrk on the same machine, loopback only, 50 connections, anonymous.", "",
        f"Store: {len(ids)} public records of real corpus pages; 2,000 of them read at random. The first reading of "
        f"each page and JSON renders it ({first['n']} readings one at a time before the runs: p50 "
        f"{first['p50']:.0f} ms, p95 {first['p95']:.0f} ms); it is then kept (memory, and <store>/public/pages/ "
        "across restarts)."
        + (f" Publishing all {len(ids)} with one `archiver publish` took {publish_s:.0f} s." if publish_s else ""), "",
        "| load | seconds | requests/s | p50 ms | p95 ms | p99 ms | non-2xx | socket errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in (("page", "/r/<ID> (HTML)"), ("json", "/r/<ID>.json"), ("mixed", "both, mixed"),
                        ("conditional", f"If-None-Match with the real ETag (answer: {status_304})")):
        r = results[name]
        lines.append(f"| {label} | {r['seconds']:.0f} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['p99']:.1f} | {int(r['non2xx'])} | {int(r['socket_errors'])} |")
    lines += ["", "wrk counts 304 as non-2xx: in the conditional row every non-2xx is a 304 unless the socket "
              "errors say otherwise.", "", "Goal (issue 29): >= 1,000 requests/s with p95 <= 100 ms.", ""]
    text = "\n".join(lines)
    (ROOT / "bench" / "results-public.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
