"""Two `archiver serve` processes on different ports, as two machines would run them: each its own store
directory (its own signing key, no file shared), one PostgreSQL catalog and one SeaweedFS S3 bucket.
They behave as one site: a login link printed by one works on the other, a session made on one is
used on the other (CSRF included), and a capture submitted to one is seen done on the other."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.services import LocalPostgres, LocalSeaweed, free_port

ARCHIVER = [sys.executable, "-m", "archiver.cli"]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARCHIVER, *args], capture_output=True, text=True, timeout=180, env=env)


def _serve(env: dict[str, str], root: Path, port: int, log: Path) -> subprocess.Popen[str]:
    fh = log.open("w")
    proc = subprocess.Popen([*ARCHIVER, "serve", "--store", str(root), "--port", str(port), "--http-workers", "1",
                             "--replay-port", "0"], stdout=fh, stderr=subprocess.STDOUT, text=True, env=env)
    fh.close()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return proc
        except requests.RequestException:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text()}") from None
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not answer in 90 s: {log.read_text()}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def test_two_servers_over_one_postgresql_catalog_and_s3_bucket_are_one_site(
        postgres: LocalPostgres, seaweed: LocalSeaweed, site: Any, tmp_path: Path) -> None:
    # every server of the site is given the same local half of the session key (never in the catalog)
    env = {**os.environ, **seaweed.env(), "ARCHIVER_WEB_SECRET": "fleet-" + uuid.uuid4().hex * 2}
    bucket, url = "evidence-" + uuid.uuid4().hex[:12], postgres.database()
    roots = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for root in roots:  # the same --blobs and --catalog on two machines
        r = _run(env, "init", "--store", str(root), "--operator", "Web Fleet", "--blobs", f"s3://{bucket}/site",
                 "--s3-endpoint", seaweed.endpoint, "--catalog", url)
        assert r.returncode == 0, r.stderr
    assert _run(env, "config", "set", "capture.allow_private", "true", "--store", str(roots[0])).returncode == 0
    ports = [free_port(), free_port()]
    servers = []
    try:
        # machine a starts first on an archive with no token: it makes the admin token and prints a link
        servers.append(_serve(env, roots[0], ports[0], tmp_path / "a.log"))
        servers.append(_serve(env, roots[1], ports[1], tmp_path / "b.log"))
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        printed = (tmp_path / "a.log").read_text()
        m = re.search(r"/login\?once=(\S+)", printed)
        assert m, printed
        # the link a printed, opened on b: logged in on b
        r = _use_login_link(b, m.group(1))
        assert r.status_code == 303, r.text[:500]
        cookie_b = r.cookies["archiver_session"]
        again = _use_login_link(a, m.group(1))
        assert again.status_code == 401  # used once, site-wide
        # b's session works on a
        page = requests.get(f"{a}/capture", cookies={"archiver_session": cookie_b}, timeout=30)
        assert page.status_code == 200 and "Log in" not in page.text, page.text[:500]
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        # a login made on a (the form), used on b
        token = next(line.strip() for line in printed.splitlines() if line.strip().startswith("arch_"))
        s = requests.Session()
        form = s.get(f"{a}/login", timeout=30)
        nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert nonce, form.text[:500]
        r = s.post(f"{a}/login", data={"token": token, "csrf_token": nonce.group(1), "next": "/"},
                   allow_redirects=False, timeout=30)
        assert r.status_code == 303, r.text[:500]
        cookie_a = r.cookies["archiver_session"]
        assert requests.get(f"{b}/api/v1/records", cookies={"archiver_session": cookie_a},
                            timeout=30).status_code == 200
        # a capture submitted to a with b's session (and its CSRF token), seen done on b
        target = f"{site.base_url}/plain?two-servers=1"
        r = requests.post(f"{a}/api/v1/captures", json={"url": target}, timeout=30,
                          cookies={"archiver_session": cookie_b}, headers={"X-CSRF-Token": csrf.group(1)})
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        w = _run(env, "worker", "--until-empty", "-q", "--store", str(roots[0]))  # the queue's worker, as now
        assert w.returncode == 0, w.stderr
        deadline = time.monotonic() + 60
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            seen = requests.get(f"{b}/api/v1/captures/{job}", cookies={"archiver_session": cookie_a}, timeout=30).json()
            if seen["status"] in ("done", "failed"):
                break
            time.sleep(0.3)
        assert seen["status"] == "done" and seen["record_id"], seen
        rec = requests.get(f"{b}/api/v1/records/{seen['record_id']}", cookies={"archiver_session": cookie_a},
                           timeout=30)
        assert rec.status_code == 200 and target in rec.text, rec.text[:500]
    finally:
        for p in servers:
            _stop(p)
    v = _run(env, "verify", "--all", "--store", str(roots[0]))
    assert v.returncode == 0, v.stdout[-2000:] + v.stderr[-2000:]


def _use_login_link(base: str, code: str) -> requests.Response:
    """The printed link in a browser: GET shows a one-button form (takes nothing), the button POSTs."""
    s = requests.Session()
    form = s.get(f"{base}/login", params={"once": code}, timeout=30)
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert form.status_code == 200 and nonce, form.text[:500]
    return s.post(f"{base}/login", data={"once": code, "csrf_token": nonce.group(1), "next": "/"},
                  allow_redirects=False, timeout=30)
