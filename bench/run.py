"""`make bench`: the five figures of issue 10, each measured beside a peer in the same run, plus the
reliability counts. Prints a table and writes bench/results.md. Asserts nothing.

Loopback only. Sizes can be lowered for a quick look: BENCH_PAGES (1000), BENCH_VERIFY_MB (1024),
BENCH_BIG_MB (1024), BENCH_FLIPS (1000), BENCH_CRASHES (50).
"""

from __future__ import annotations

import gzip
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
PAGES = int(os.environ.get("BENCH_PAGES", "1000"))
VERIFY_MB = int(os.environ.get("BENCH_VERIFY_MB", "1024"))
BIG_MB = int(os.environ.get("BENCH_BIG_MB", "1024"))
FLIPS = int(os.environ.get("BENCH_FLIPS", "1000"))
CRASHES = int(os.environ.get("BENCH_CRASHES", "50"))
ARCHIVER = [sys.executable, "-m", "archiver.cli"]


# ---- a site of PAGES pages, 20–200 KB, some chunked, some gzip --------------------------------------
def _page(i: int) -> bytes:
    rng = random.Random(i)
    words = ["privacy", "data", "policy", "user", "service", "consent", "process", "share", "retain", "law"]
    size = rng.randrange(20_000, 200_000)
    out = [f"<html><head><title>Page {i}</title></head><body><h1>Policy {i}</h1>".encode()]
    n = 0
    while n < size:
        para = (" ".join(rng.choice(words) for _ in range(60)) + f" {rng.random()}").encode()
        out.append(b"<p>" + para + b"</p>\n")
        n += len(para) + 8
    out.append(b"</body></html>")
    return b"".join(out)


class Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pages: ClassVar[dict[int, bytes]] = {}
    big_mb = 0

    def do_GET(self) -> None:
        if self.path.startswith("/big"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(self.big_mb << 20))
            self.end_headers()
            block = os.urandom(1 << 20)
            for _ in range(self.big_mb):
                self.wfile.write(block)
            return
        i = int(self.path.strip("/").split("?")[0] or 0) % max(1, len(self.pages))
        body = self.pages[i]
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if i % 3 == 1:
            body = gzip.compress(body, mtime=0)
            self.send_header("Content-Encoding", "gzip")
        if i % 3 == 2:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for k in range(0, len(body), 16384):
                part = body[k:k + 16384]
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def _serve() -> tuple[ThreadingHTTPServer, str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def _env(store: Path) -> dict[str, str]:
    return dict(os.environ, ARCHIVER_ALLOW_PRIVATE="1", ARCHIVER_HOME=str(store), PYTHONWARNINGS="ignore")


def _run(cmd: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]


def _init_store(store: Path, tsa_url: str | None = None, tsa_ca: Path | None = None) -> dict[str, str]:
    env = _env(store)
    _run([*ARCHIVER, "init"], env)
    _run([*ARCHIVER, "config", "set", "capture.per_host", "8"], env)
    if tsa_url and tsa_ca:
        _run([*ARCHIVER, "config", "set", "tsa.urls", tsa_url], env)
        _run([*ARCHIVER, "config", "set", "tsa.certs", str(tsa_ca)], env)
    return env


# ---- B1 -----------------------------------------------------------------------------------------------
def b1_batch(tmp: Path, base: str) -> dict[str, object]:
    from archiver.demo.tsa import LocalTSA

    urls = tmp / "urls.txt"
    urls.write_text("".join(f"{base}/{i}\n" for i in range(PAGES)))
    with LocalTSA() as tsa:
        env = _init_store(tmp / "b1", tsa.url, tsa.ca_pem)
        t = time.perf_counter()
        r = _run([*ARCHIVER, "capture", "-i", str(urls), "-j", "8", "--json"], env)
        ours = time.perf_counter() - t
        requests_seen = tsa.requests
    import json

    ok = sum(1 for line in r.stdout.splitlines() if line.startswith("{") and json.loads(line).get("record_id")
             and json.loads(line).get("ok"))
    wget_s = None
    if shutil.which("wget"):
        t = time.perf_counter()
        _run(["wget", "-q", "-O", "/dev/null", f"--warc-file={tmp}/wget-b1", "-i", str(urls)], _env(tmp / "w"),
             cwd=tmp)
        wget_s = time.perf_counter() - t
    return {"ours_s": ours, "ok": ok, "tsa_requests": requests_seen, "wget_s": wget_s,
            "ours_pps": PAGES / ours, "wget_pps": PAGES / wget_s if wget_s else None}


# ---- B2 -----------------------------------------------------------------------------------------------
def b2_verify(tmp: Path, base: str) -> dict[str, object]:
    env = _init_store(tmp / "b2")
    per = 256
    n = max(1, VERIFY_MB // per)
    Site.big_mb = per
    for key in ("capture.max_bytes", "capture.max_decoded_bytes"):
        _run([*ARCHIVER, "config", "set", key, str((per + 16) << 20)], env)
    for i in range(n):
        _run([*ARCHIVER, "capture", f"{base}/big{i}"], env)
    import json

    from archiver.api import Archive

    warcs = []
    store = Path(env["ARCHIVER_HOME"])
    a = Archive.open(store)
    for s in a.list():
        warcs.append(str(a.blobs.path(a.artifact_sha256(s.record_id, "warc"))))
    total = sum(os.path.getsize(w) for w in warcs)
    t = time.perf_counter()
    r = _run([*ARCHIVER, "verify", "--all", "--json"], env)
    ours = time.perf_counter() - t
    verified = sum(1 for rep in json.loads(r.stdout or "[]") if rep.get("ok"))
    t = time.perf_counter()
    _run(["sha256sum", *warcs], env)
    peer = time.perf_counter() - t
    return {"bytes": total, "records": len(warcs), "verified": verified, "ours_s": ours, "sha256sum_s": peer,
            "ours_mbps": total / ours / 1e6, "peer_mbps": total / peer / 1e6}


# ---- B3 -----------------------------------------------------------------------------------------------
def b3_overhead(tmp: Path, base: str) -> dict[str, object]:
    import requests

    from archiver.api import Archive

    archive, _ = Archive.init(tmp / "b3")
    archive.config.set("capture.allow_private", "true")
    url = f"{base}/0"
    plain, ours = [], []
    for _ in range(5):  # warm up both paths
        requests.get(url, timeout=10).content  # noqa: B018
        archive.capture(url)
    for _ in range(40):
        t = time.perf_counter()
        requests.get(url, timeout=10).content  # noqa: B018
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        archive.capture(url)
        ours.append(time.perf_counter() - t)
    return {"capture_ms": statistics.median(ours) * 1000, "get_ms": statistics.median(plain) * 1000,
            "overhead_ms": (statistics.median(ours) - statistics.median(plain)) * 1000,
            "page_bytes": len(Site.pages[0])}


# ---- B4 -----------------------------------------------------------------------------------------------
def b4_startup() -> dict[str, object]:
    """hyperfine when installed (`make bench` installs it), else median of 10 timed runs."""
    import json

    exe = shutil.which("archiver") or str(Path(sys.executable).parent / "archiver")
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", "20", "--export-json", out.name,
                            f"{exe} --help", f"{sys.executable} -c pass"], capture_output=True, check=False)
            res = json.loads(Path(out.name).read_text())["results"]
        return {"help_s": res[0]["median"], "python_s": res[1]["median"], "tool": "hyperfine"}
    times = []
    for _ in range(12):
        t = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=False)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(12):
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=False)
    return {"help_s": statistics.median(times[2:]), "python_s": (time.perf_counter() - t) / 12, "tool": "timer"}


# ---- B5 -----------------------------------------------------------------------------------------------
def _peak(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Peak RSS (MB) and wall seconds from GNU time (`/usr/bin/time -f '%M %e'`)."""
    out = _run(["/usr/bin/time", "-f", "%M %e %x", *cmd], env)
    rss_kb, secs, code = out.stderr.strip().splitlines()[-1].split()
    return int(rss_kb) / 1024, float(secs), int(code)


def b5_memory(tmp: Path, base: str) -> dict[str, object]:
    env = _init_store(tmp / "b5")
    Site.big_mb = BIG_MB
    for key in ("capture.max_bytes", "capture.max_decoded_bytes"):
        _run([*ARCHIVER, "config", "set", key, str((BIG_MB + 16) << 20)], env)
    _run([*ARCHIVER, "config", "set", "capture.deadline", "3600"], env)
    rss, secs, code = _peak([*ARCHIVER, "capture", f"{base}/big-b5"], env)
    res: dict[str, object] = {"ours_mb": rss, "ours_s": secs, "exit": code}
    if shutil.which("wget"):
        wrss, wsecs, _ = _peak(["wget", "-q", "-O", "/dev/null", f"--warc-file={tmp}/wget-b5", f"{base}/big-w"], env)
        res.update(wget_mb=wrss, wget_s=wsecs)
    return res


# ---- reliability ------------------------------------------------------------------------------------------
def reliability() -> dict[str, object]:
    env = dict(os.environ, ARCHIVER_FUZZ_FLIPS=str(FLIPS), ARCHIVER_CRASH_TRIALS=str(CRASHES))
    out = {}
    for name, target in (("fuzz", "tests/test_fuzz.py"), ("crash", "tests/test_processes.py"),
                         ("hostile", "tests/test_hostile.py"), ("properties", "tests/test_properties.py")):
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target], cwd=ROOT,
                           env=env, capture_output=True, text=True, check=False)
        lines = r.stdout.strip().splitlines() or ["?"]
        # a failure names its test here: the full output is not kept, and a rare one must be traceable
        failed = [ln.split(" - ")[0].removeprefix("FAILED ") for ln in lines if ln.startswith("FAILED ")]
        which = f"; failed: {', '.join(failed)}" if failed else ""
        out[name] = f"{lines[-1]} ({time.perf_counter() - t:.0f} s){which}"
    return out


def main() -> None:
    Site.pages = {i: _page(i) for i in range(PAGES)}
    httpd, base = _serve()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="archiver-bench-") as tmpname:
        tmp = Path(tmpname)
        for key, fn in (("B1", lambda: b1_batch(tmp, base)), ("B2", lambda: b2_verify(tmp, base)),
                        ("B3", lambda: b3_overhead(tmp, base)), ("B4", b4_startup),
                        ("B5", lambda: b5_memory(tmp, base))):
            print(f"running {key} …", flush=True)
            results[key] = fn()  # type: ignore[no-untyped-call]
            print(f"  {results[key]}", flush=True)
    httpd.shutdown()
    print("running reliability tests …", flush=True)
    rel = reliability()
    report = render(results, rel) + _issue19()
    print(report)
    (ROOT / "bench" / "results.md").write_text(report, "utf-8")


def _issue19() -> str:
    """Issue 19's figures (`make bench` runs bench_speed.py and bench_startup.py first), with the
    same figures measured on the code before the change (results-speed-before.md)."""
    parts = []
    for name, title in (("results-speed.md", "Speed on real documents (issue 19), this code"),
                        ("results-speed-before.md", "The same figures on the code before issue 19's changes"),
                        ("results-startup.md", "Everyday commands (issue 19, goal 3)")):
        f = ROOT / "bench" / name
        if f.is_file():
            body = f.read_text("utf-8").split("\n", 1)[1].strip()  # without the file's own title
            parts.append(f"\n## {title}\n\n{body}\n")
    return "".join(parts)


def _fmt(v: object, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)  # type: ignore[arg-type]


def render(r: dict[str, dict[str, object]], rel: dict[str, object]) -> str:
    b1, b2, b3, b4, b5 = r["B1"], r["B2"], r["B3"], r["B4"], r["B5"]
    ratio1 = (b1["ours_pps"] / b1["wget_pps"]) if b1.get("wget_pps") else None  # type: ignore[operator]
    ratio2 = b2["ours_mbps"] / b2["peer_mbps"]  # type: ignore[operator]
    rows = [
        ("B1 batch capture", f"{PAGES} pages 20–200 KB (⅓ gzip, ⅓ chunked), -j 8, WARC+sha256+Ed25519+batched "
                             f"RFC 3161 tokens ({b1['tsa_requests']} TSA requests), {b1['ok']} ok",
         f"{_fmt(b1['ours_pps'], '.1f')} pages/s vs wget --warc-file {_fmt(b1['wget_pps'], '.1f')} pages/s",
         f"{_fmt(ratio1)}×", "≥ 3×", ratio1 is not None and ratio1 >= 3),
        ("B2 verify", f"verify --all over {b2['bytes'] / 1e9:.2f} GB of WARCs in {b2['records']} records "
                      f"({b2['verified']} verified)",
         f"{_fmt(b2['ours_mbps'], '.0f')} MB/s vs sha256sum {_fmt(b2['peer_mbps'], '.0f')} MB/s",
         f"{_fmt(ratio2)}×", "≥ 0.8×", ratio2 >= 0.8),
        ("B3 per-capture overhead", f"median of 40, {b3['page_bytes']:,}-byte page, in-process API, no TSA",
         f"capture {_fmt(b3['capture_ms'], '.1f')} ms − requests.get {_fmt(b3['get_ms'], '.1f')} ms",
         f"{_fmt(b3['overhead_ms'], '.1f')} ms", "≤ 30 ms", float(b3["overhead_ms"]) <= 30),  # type: ignore[arg-type]
        ("B4 start-up", f"archiver --help, median ({b4['tool']})",
         f"{_fmt(b4['help_s'], '.3f')} s (bare python -c pass: {_fmt(b4['python_s'], '.3f')} s)",
         f"{_fmt(b4['help_s'], '.3f')} s", "≤ 0.25 s", float(b4["help_s"]) <= 0.25),  # type: ignore[arg-type]
        ("B5 memory", f"capture of a {BIG_MB} MB streamed body",
         f"peak RSS {_fmt(b5['ours_mb'], '.1f')} MB in {_fmt(b5['ours_s'], '.1f')} s vs wget "
         f"{_fmt(b5.get('wget_mb'), '.1f')} MB in {_fmt(b5.get('wget_s'), '.1f')} s",
         f"{_fmt(b5['ours_mb'], '.0f')} MB (exit {b5['exit']})", "≤ 150 MB",
         float(b5["ours_mb"]) <= 150 and b5["exit"] == 0),  # type: ignore[arg-type]
    ]
    lines = ["# Benchmark results", "",
             f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
             f"run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Loopback only; peers measured in the "
             "same run.", "",
             "| figure | what | measured | result | target | met |", "|---|---|---|---|---|---|"]
    for name, what, measured, result, target, met in rows:
        lines.append(f"| {name} | {what} | {measured} | {result} | {target} | {'yes' if met else 'NO'} |")
    lines += ["", "## Reliability", "", "| suite | result |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rel.items()]
    lines += ["", f"Fuzz: {FLIPS} store flips + {max(FLIPS // 2, 20)} bundle-member flips + 20 raw-zip flips; "
              f"crash: {CRASHES} kill -9 trials; concurrency 4×100 in test_processes.py.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
