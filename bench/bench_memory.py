"""Peak RSS of `archiver capture` on a large streamed body, next to `wget --warc-file` on the same URL.

Prints figures; asserts nothing. Size: BENCH_MB (default 500). Loopback only, one request each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MB = int(os.environ.get("BENCH_MB", "500"))
BLOCK = os.urandom(1 << 20)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(MB << 20))
        self.end_headers()
        for _ in range(MB):
            self.wfile.write(BLOCK)

    def log_message(self, *args: object) -> None:
        return


def peak_rss_mb(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run cmd in a child that reports its own peak RSS via getrusage(RUSAGE_CHILDREN)."""
    probe = ("import resource,subprocess,sys,time;t=time.time();"
             "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL).returncode;"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024, time.time()-t, r)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env, check=True)
    rss, secs, code = out.stdout.split()
    return float(rss), float(secs), int(code)


def main() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/big.bin"
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, ARCHIVER_ALLOW_PRIVATE="1", ARCHIVER_HOME=str(Path(tmp) / "store"))
        archiver = [sys.executable, "-m", "archiver.cli"]
        subprocess.run([*archiver, "init"], env=env, check=True, capture_output=True)
        subprocess.run([*archiver, "config", "set", "capture.max_bytes", str((MB + 10) << 20)], env=env, check=True,
                       capture_output=True)
        rss, secs, code = peak_rss_mb([*archiver, "capture", url], env)
        print(f"archiver capture {MB} MB body: peak RSS {rss:.1f} MB, {secs:.1f} s, exit {code}")
        if shutil.which("wget"):
            wrss, wsecs, wcode = peak_rss_mb(["wget", "-q", "-O", "/dev/null", f"--warc-file={tmp}/wget", url], env)
            print(f"wget --warc-file    {MB} MB body: peak RSS {wrss:.1f} MB, {wsecs:.1f} s, exit {wcode}")
            print(f"ratio archiver/wget: RSS {rss / wrss:.1f}x, time {secs / wsecs:.2f}x")
    httpd.shutdown()



if __name__ == "__main__":
    main()
