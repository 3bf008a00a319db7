"""Mixed authenticated load on `archiver serve` with 1 and N HTTP worker processes (issue 33, point 1).

1. The store of bench_web.py (BENCH_WEB_RECORDS = 10,000 real corpus HTML pages under distinct URLs,
   captured with `capture -i -j 8`; built once and kept in bench/out/web-store-<N>).
2. `archiver serve --http-workers W` for W = 1 and W = the number of cores (BENCH_WEB_WORKERS overrides
   the list, e.g. "1,2,4"), and `wrk` (a peer no one here wrote) with 50 connections and a viewer token:
   a Lua script picks, for each request, one of record JSON, provenance JSON, record page, content
   download and WARC download, for one of 2,000 real record IDs drawn at random. A 5 s warm-up, then
   BENCH_WEB_SECONDS (60) measured: requests/s, p50/p95/p99, non-2xx and socket errors.
3. The machine's load (1-minute load average before and after each run, and the CPU time the server
   processes used), since the machine is shared: a figure without it means little.
Loopback only; asserts nothing; writes bench/results-web-mixed.md. Goal (issue 33): >= 500 requests/s,
p95 <= 200 ms, 0 errors with N workers, on a 2-vCPU machine with wrk on the same machine.
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

KINDS = ("/api/v1/records/{id}", "/api/v1/records/{id}/provenance", "/records/{id}",
         "/api/v1/records/{id}/artifacts/content", "/api/v1/records/{id}/artifacts/warc")
LABELS = ("record JSON", "provenance JSON", "record page", "content download", "WARC download")

WRK_SCRIPT = """
local ids = {}
for line in io.lines(os.getenv("WRK_IDS")) do ids[#ids + 1] = line end
local kinds = {%s}
local auth = "Bearer " .. os.getenv("WRK_TOKEN")
math.randomseed(11)
request = function()
  local id = ids[math.random(#ids)]
  local path = kinds[math.random(#kinds)]:gsub("{id}", id)
  return wrk.format("GET", path, {["Authorization"] = auth})
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"seconds\\": %%f, \\"non2xx\\": %%d, \\"socket_errors\\": %%d, "
    .. "\\"p50\\": %%f, \\"p95\\": %%f, \\"p99\\": %%f}\\n", summary.requests, summary.duration / 1e6,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3))
end
"""


def run_wrk(base: str, token: str, ids: Path, seconds: int, conns: int = 50) -> dict[str, float]:
    script = OUT / "wrk-mixed.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(k) for k in KINDS))
    env = {**os.environ, "WRK_IDS": str(ids), "WRK_TOKEN": token}
    proc = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), base],
                          capture_output=True, text=True, env=env, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, float] = json.loads(line[5:])
    result["rps"] = result["requests"] / result["seconds"]
    result["errors"] = result["non2xx"] + result["socket_errors"]
    return result


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total


def measure(store: Path, token: str, ids: Path, workers: int) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen([*ARCHIVER, "serve", "--store", str(store), "--port", str(port), "--http-workers",
                               str(workers), "--replay-port", "0"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        check = requests.get(f"{base}/api/v1/records/{ids.read_text().split()[0]}",
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
        check.raise_for_status()
        run_wrk(base, token, ids, 5)  # warm-up: imports, connections, the OS page cache
        load_before = os.getloadavg()[0]
        cpu_before = _tree_cpu(server.pid)
        result = run_wrk(base, token, ids, SECONDS)
        result["cpu_s"] = _tree_cpu(server.pid) - cpu_before
        result["load_before"] = load_before
        result["load_after"] = os.getloadavg()[0]
        result["workers"] = workers
    finally:
        server.send_signal(2)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(30)
    return result


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (make bench installs it)")
    Site.pages = corpus_pages()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    store = build_store(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    plan = [int(x) for x in os.environ.get("BENCH_WEB_WORKERS", f"1,{cores}").split(",")]
    name = f"bench-mixed-{os.getpid()}"
    made = subprocess.run([*ARCHIVER, "tokens", "create", name, "--role", "viewer", "--json", "--store", str(store)],
                          capture_output=True, text=True, check=True)
    token = json.loads(made.stdout)["token"]
    listed = subprocess.run([*ARCHIVER, "list", "--json", "--limit", str(RECORDS * 2), "--store", str(store)],
                            capture_output=True, text=True, check=True)
    ids = [r["record_id"] for r in json.loads(listed.stdout)]
    random.Random(1).shuffle(ids)
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-mixed-"))
    ids_file = tmp / "ids.txt"
    ids_file.write_text("\n".join(ids[:2000]) + "\n")
    results = []
    try:
        for w in plan:
            r = measure(store, token, ids_file, w)
            results.append(r)
            print(f"{w} HTTP worker(s): {r['rps']:.0f} requests/s, p95 {r['p95']:.0f} ms, {int(r['errors'])} errors "
                  f"(load {r['load_before']:.1f} -> {r['load_after']:.1f})", flush=True)
    finally:
        subprocess.run([*ARCHIVER, "tokens", "revoke", name, "--store", str(store)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        "# Mixed authenticated load, 1 and N HTTP workers (bench/bench_web_mixed.py)", "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        "`archiver serve --http-workers W` and wrk (2 threads, 50 connections) on the same machine, loopback only. "
        "The machine is shared: its 1-minute load average before and after each run is in the table (a load "
        f"above {cores} means other work was queued for the CPUs during the run).", "",
        f"Store: {len(ids)} records of real corpus pages (../shared/corpus HTML under distinct URLs). Each request "
        f"(viewer token, Bearer): one of {', '.join(LABELS)} for one of 2,000 IDs, chosen at random by the Lua "
        "script; content and WARC downloads are whole artifacts, so each also appends a `get` custody entry "
        f"(as `archiver get` does). 5 s warm-up, then {SECONDS} s measured.", "",
        "| HTTP workers | seconds | requests/s | p50 ms | p95 ms | p99 ms | non-2xx | socket errors | server CPU s "
        "| load before | load after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {int(r['workers'])} | {r['seconds']:.0f} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['p99']:.1f} | {int(r['non2xx'])} | {int(r['socket_errors'])} | {r['cpu_s']:.0f} | "
                     f"{r['load_before']:.1f} | {r['load_after']:.1f} |")
    lines += ["", "Goal (issue 33): >= 500 requests/s, p95 <= 200 ms, 0 errors with N workers. Before this issue: "
              "59 requests/s, p95 1.6 s (bench/results-web.md, one process).", ""]
    text = "\n".join(lines)
    (ROOT / "bench" / "results-web-mixed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
