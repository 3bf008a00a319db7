"""`archiver demo --serve`: the walk-through, then the demo store served, one click from logged in."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import requests

from tests.services import free_port


def test_demo_serve_prints_a_link_that_logs_in() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "archiver.cli", "demo", "--serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        link = None
        seen: list[str] = []
        deadline = time.monotonic() + 240
        assert proc.stdout is not None
        while time.monotonic() < deadline and link is None:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"(http://\S+/login\?once=\S+)", line)
            link = m.group(1) if m else None
        assert link, "".join(seen[-40:])
        assert any("Demo finished: every step behaved as expected." in x for x in seen), "".join(seen[-40:])
        link = link.replace("localhost", "127.0.0.1")
        for _ in range(200):  # the link is printed just before the server starts listening
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        session = requests.Session()
        form = session.get(link, timeout=30)  # a one-button form: opening the link takes nothing
        nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        code = re.search(r'name="once" value="([^"]+)"', form.text)
        assert form.status_code == 200 and nonce and code, form.text[:500]
        r = session.post(f"http://127.0.0.1:{port}/login", data={"once": code.group(1), "csrf_token": nonce.group(1),
                                                                 "next": "/"}, timeout=30)
        assert r.status_code == 200 and "Records" in r.text and r.url.rstrip("/").endswith(str(port))
        assert "Example Inc." in r.text  # the demo's records, listed without pasting any token
        again = requests.Session()
        form = again.get(link, timeout=30)
        nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert nonce
        r = again.post(f"http://127.0.0.1:{port}/login", data={"once": code.group(1), "csrf_token": nonce.group(1),
                                                               "next": "/"}, timeout=30)
        assert r.status_code == 401  # the link works once
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
