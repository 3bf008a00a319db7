"""Issue 19 on the real corpus pages: batch capture against `wget --warc-file`, verify against one
`openssl dgst -sha256` pass, and where a capture's CPU goes, step by step.

Loopback only; asserts nothing; prints a table and writes bench/results-speed.md. Sizes:
BENCH_SPEED_PAGES (200), BENCH_SLOW_PAGES (100; pages that answer after BENCH_SLOW_MS, 300),
BENCH_VERIFY_RECORDS (4) x BENCH_VERIFY_MB (100), BENCH_STEP_PAGES (68), BENCH_REPEAT (3: each of
our figures is the median of that many runs, as is wget's on the fast pages). BENCH_SRC=<checkout> runs
the same figures on another checkout of the code (how "before" was measured).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(os.environ.get("BENCH_SRC", str(ROOT))).resolve()
sys.path.insert(0, str(SRC))
CORPUS = ROOT.parent / "shared" / "corpus"
PAGES = int(os.environ.get("BENCH_SPEED_PAGES", "200"))
SLOW_PAGES = int(os.environ.get("BENCH_SLOW_PAGES", "100"))
SLOW_MS = int(os.environ.get("BENCH_SLOW_MS", "300"))
VERIFY_RECORDS = int(os.environ.get("BENCH_VERIFY_RECORDS", "4"))
VERIFY_MB = int(os.environ.get("BENCH_VERIFY_MB", "100"))
STEP_PAGES = int(os.environ.get("BENCH_STEP_PAGES", "68"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
ARCHIVER = [sys.executable, "-m", "archiver.cli"]


class Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pages: ClassVar[list[bytes]] = []
    big = b""

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if parts[0] == "big":
            body, ctype = Site.big + parts[1].encode(), "application/octet-stream"
        else:
            if parts[0] == "slow":
                time.sleep(SLOW_MS / 1000)
            body, ctype = Site.pages[int(parts[1]) % len(Site.pages)], "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve() -> str:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def _env(store: Path) -> dict[str, str]:
    """(``python -m`` puts its working directory first on sys.path: commands run from SRC.)"""
    return dict(os.environ, ARCHIVER_ALLOW_PRIVATE="1", ARCHIVER_HOME=str(store), PYTHONWARNINGS="ignore",
                PYTHONPATH=str(SRC))


def _timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the command and all its descendants, stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd or SRC, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), r.stdout


def _store(tmp: Path, name: str, tsa: Any = None) -> dict[str, str]:
    env = _env(tmp / name)
    subprocess.run([*ARCHIVER, "init"], env=env, capture_output=True, check=True, cwd=SRC)
    for k, v in (("capture.per_host", "16"),) + ((("tsa.urls", tsa.url), ("tsa.certs", str(tsa.ca_pem)))
                                                 if tsa else ()):
        subprocess.run([*ARCHIVER, "config", "set", k, v], env=env, capture_output=True, check=True, cwd=SRC)
    return env


def batch(tmp: Path, base: str, kind: str, n: int, jobs: int, wget_runs: int = REPEAT) -> dict[str, float]:
    """Median of REPEAT runs each (a fresh store every time; wall time on this VM varies by ±30 %)."""
    from archiver.demo.tsa import LocalTSA

    urls = tmp / f"{kind}.txt"
    urls.write_text("".join(f"{base}/{kind}/{i}\n" for i in range(n)))
    ours, peer, oks = [], [], []
    for run in range(REPEAT):
        with LocalTSA() as tsa:
            env = _store(tmp, f"store-{kind}-{run}", tsa)
            wall, cpu, out = _timed([*ARCHIVER, "capture", "-i", str(urls), "-j", str(jobs), "--json"], env)
        ours.append((wall, cpu))
        oks.append(sum(1 for line in out.splitlines() if line.startswith("{") and json.loads(line).get("record_id")))
        if run < wget_runs:
            wdir = tmp / f"wget-{kind}-{run}"
            wdir.mkdir()
            peer.append(_timed(["wget", "-q", "-O", "/dev/null", f"--warc-file={wdir}/w", "-i", str(urls)], env,
                               wdir)[:2])
    return {"n": n, "ok": min(oks), "jobs": jobs, "wall": statistics.median(w for w, _ in ours),
            "cpu": statistics.median(c for _, c in ours), "wget_wall": statistics.median(w for w, _ in peer),
            "wget_cpu": statistics.median(c for _, c in peer), "runs": REPEAT, "wget_runs": len(peer)}


def verify(tmp: Path, base: str) -> dict[str, float]:
    Site.big = os.urandom(VERIFY_MB << 20)
    env = _store(tmp, "store-verify")
    for i in range(VERIFY_RECORDS):
        subprocess.run([*ARCHIVER, "capture", f"{base}/big/{i}"], env=env, capture_output=True, check=True, cwd=SRC)
    Site.big = b""
    blobs = [str(p) for p in (tmp / "store-verify" / "objects").rglob("*") if p.is_file()]
    size = sum(os.path.getsize(b) for b in blobs)
    subprocess.run(["cat", *blobs], stdout=subprocess.DEVNULL, check=True)  # both start from a warm cache
    runs = [_timed([*ARCHIVER, "verify", "--all"], env) for _ in range(3)]
    peer = [_timed(["openssl", "dgst", "-sha256", *blobs], env) for _ in range(3)]
    return {"bytes": size, "files": len(blobs), "wall": statistics.median(r[0] for r in runs),
            "cpu": statistics.median(r[1] for r in runs), "openssl_wall": statistics.median(r[0] for r in peer)}


def steps(tmp: Path, base: str) -> dict[str, float]:
    """CPU ms per page of each capture step, in-process and one page at a time (thread CPU time).

    Exclusive times: hashing a finished file inside ``store`` (or the wire recording inside ``fetch``)
    counts as ``hash`` only. Hashing done while bytes stream in or out (payload digests during the
    download, WARC block digests while writing) stays in the step that streams them."""
    import importlib

    import archiver.capture as cap
    from archiver.api import Archive

    archive, _ = Archive.init(tmp / "store", operator="Bench")
    archive.config.set("capture.allow_private", "true")
    spent: dict[str, float] = defaultdict(float)
    undo: list[tuple[Any, str, Any]] = []
    active: list[str] = []

    def wrap(owner: Any, name: str, step: str) -> None:
        fn = getattr(owner, name)
        undo.append((owner, name, fn))

        def timed(*a: Any, **kw: Any) -> Any:
            t = time.thread_time()
            active.append(step)
            try:
                return fn(*a, **kw)
            finally:
                active.pop()
                took = time.thread_time() - t
                spent[step] += took
                if active:
                    spent[active[-1]] -= took  # the enclosing step's time excludes this one
        setattr(owner, name, timed)

    for name, step in (("fetch", "fetch"), ("decode_stream", "decode"), ("extract", "extract"),
                       ("write_capture_warc", "warc"), ("sign_manifest", "sign"), ("sign_manifest_file", "sign"),
                       ("_main_text", "main-text")):
        if hasattr(cap, name):
            wrap(cap, name, step)
    for module, name in (("store.blobs", "hash_file"), ("archiver.capture.fetch", "_sha256_file")):
        owner = importlib.import_module(module)
        if hasattr(owner, name):
            wrap(owner, name, "hash")
    for name in ("adopt", "put_bytes"):
        wrap(archive.blobs, name, "store")
    wrap(archive, "commit_record", "store")
    total = 0.0
    for i in range(STEP_PAGES):
        t = time.thread_time()
        archive.capture(f"{base}/page/{i}", stamp=False)
        total += time.thread_time() - t
    for owner, name, fn in reversed(undo):  # the next run must not time each step twice
        setattr(owner, name, fn)
    out = {k: v * 1000 / STEP_PAGES for k, v in spent.items()}
    out["total"] = total * 1000 / STEP_PAGES
    out["other"] = out["total"] - sum(v for k, v in out.items() if k != "total")
    return out


def _bytecode(src: Path) -> None:
    """Compile the measured checkout's modules, as pip does for an installed wheel: with
    PYTHONDONTWRITEBYTECODE set (as on the machines here) every command would compile them again."""
    import compileall

    for package in ("archiver", "store"):
        compileall.compile_dir(src / package, quiet=1)


def main() -> None:
    _bytecode(SRC)
    files = sorted(CORPUS.glob("*/*/*.html"))
    if not files:
        sys.exit("../shared/corpus is not beside the checkout")
    Site.pages = [f.read_bytes() for f in files]
    base = _serve()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fast = batch(tmp, base, "page", PAGES, 8) if shutil.which("wget") else {}
        # wget takes the pages one after the other: ~0.3 s each whatever else runs, so one run of it
        slow = batch(tmp, base, "slow", SLOW_PAGES, 16, wget_runs=1) if shutil.which("wget") else {}
        ver = verify(tmp, base)
        runs = [steps(tmp / f"steps-{i}", base) for i in range(REPEAT)]
        cpu_steps = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    avg_kb = sum(map(len, Site.pages)) / len(Site.pages) / 1024
    lines = [f"# Speed on real documents (issue 19){' — code from ' + str(SRC) if SRC != ROOT else ''}", "",
             f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Pages: the {len(files)} corpus HTML "
             f"snapshots ({avg_kb:.0f} KB on average), served from 127.0.0.1.", "",
             "| figure | ours | peer | ratio | goal |", "|---|---|---|---|---|"]
    if fast:
        lines.append(f"| batch capture, {fast['n']:.0f} pages, -j 8, full provenance + batched RFC 3161 tokens "
                     f"({fast['ok']:.0f} ok; median of {fast['runs']:.0f} runs, wget's of {fast['wget_runs']:.0f}) | "
                     f"{fast['n'] / fast['wall']:.1f} pages/s, "
                     f"{fast['cpu'] * 1000 / fast['n']:.1f} CPU ms/page | wget --warc-file "
                     f"{fast['n'] / fast['wget_wall']:.1f} pages/s, {fast['wget_cpu'] * 1000 / fast['n']:.1f} CPU "
                     f"ms/page | {fast['wget_wall'] / fast['wall']:.2f}× | ≥ 3×, CPU ≤ wget |")
        lines.append(f"| batch capture, {slow['n']:.0f} pages answering after {SLOW_MS} ms, -j 16 "
                     f"({slow['ok']:.0f} ok; median of {slow['runs']:.0f} runs, wget's of {slow['wget_runs']:.0f}) | "
                     f"{slow['n'] / slow['wall']:.1f} pages/s | wget "
                     f"{slow['n'] / slow['wget_wall']:.1f} pages/s | {slow['wget_wall'] / slow['wall']:.1f}× | ≥ 12× |")
    lines.append(f"| verify --all, {VERIFY_RECORDS} records of {VERIFY_MB} MB ({ver['files']:.0f} blobs, "
                 f"{ver['bytes'] / 1e6:.0f} MB; median of 3 runs each) | {ver['wall']:.2f} s | openssl dgst -sha256 "
                 f"{ver['openssl_wall']:.2f} s | {ver['wall'] / ver['openssl_wall']:.2f}× | ≤ 1.5× |")
    order = ["fetch", "decode", "extract", "main-text", "warc", "hash", "store", "sign", "other", "total"]
    lines += ["", f"CPU ms per page by step (in-process, one page at a time, {STEP_PAGES} captures, no TSA; "
              f"median of {REPEAT} runs):", "",
              "| " + " | ".join(order) + " |", "|" + "---|" * len(order),
              "| " + " | ".join(f"{cpu_steps.get(k, 0.0):.1f}" for k in order) + " |"]
    text = "\n".join(lines) + "\n"
    print(text)
    if SRC == ROOT:
        (ROOT / "bench" / "results-speed.md").write_text(text, "utf-8")


if __name__ == "__main__":
    main()
