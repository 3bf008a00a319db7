"""Everyday commands on a small store: median wall time of show, list, cite, verify ID, get and --help.

hyperfine (a peer no one here wrote) times each command over repeated runs beside a bare
`python -c pass`. Goal: ≤ 0.25 s for the commands, ≤ 0.15 s for --help. Loopback only; asserts
nothing; writes bench/results-startup.md.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
ARCHIVER = str(Path(sys.executable).parent / "archiver")


class Page(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    if shutil.which("hyperfine") is None:
        sys.exit("hyperfine is not installed (make bench installs it)")
    pages = sorted(CORPUS.rglob("*.html"))
    Page.body = pages[0].read_bytes() if pages else b"<html><title>t</title><body><p>policy</p></body></html>"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        store = Path(tmp) / "store"
        env = {**os.environ, "ARCHIVER_HOME": str(store)}
        subprocess.run([ARCHIVER, "init"], env=env, check=True, capture_output=True)
        subprocess.run([ARCHIVER, "config", "set", "capture.allow_private", "true"], env=env, check=True,
                       capture_output=True)
        out = subprocess.run([ARCHIVER, "capture", f"http://127.0.0.1:{httpd.server_address[1]}/policy", "--json"],
                             env=env, check=True, capture_output=True, text=True).stdout
        rid = json.loads(out)["record_id"]
        commands = {"--help": f"{ARCHIVER} --help", "list": f"{ARCHIVER} list", "show": f"{ARCHIVER} show {rid}",
                    "cite": f"{ARCHIVER} cite {rid}", "verify ID": f"{ARCHIVER} verify {rid}",
                    "get": f"{ARCHIVER} get {rid} content -o {tmp}/out.bin",
                    "python -c pass": f"{sys.executable} -c pass"}
        report = Path(tmp) / "hf.json"
        subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", "15", "--export-json", str(report),
                        *commands.values()], env=env, check=True, capture_output=True)
        results = json.loads(report.read_text())["results"]
    httpd.shutdown()
    lines = ["# Everyday commands (bench/bench_startup.py)", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             "a one-record store (a corpus page), hyperfine -N, 3 warm-ups, 15 runs.", "",
             "| command | median s | min s | max s | goal |", "|---|---|---|---|---|"]
    for (name, _), r in zip(commands.items(), results, strict=True):
        goal = {"--help": "≤ 0.15", "python -c pass": "(peer floor)"}.get(name, "≤ 0.25")
        lines.append(f"| `archiver {name}` | {r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f} | {goal} |"
                     if name != "python -c pass" else
                     f"| `{name}` | {r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f} | {goal} |")
    text = "\n".join(lines) + "\n"
    (ROOT / "bench" / "results-startup.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
