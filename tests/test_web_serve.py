"""A real `archiver serve` process on 127.0.0.1: first start, API over HTTP, kill -9 with jobs running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.services import free_port

ARCHIVER = [sys.executable, "-m", "archiver.cli"]


def start(store: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*ARCHIVER, "serve", "--store", str(store), "--port", str(port), "--workers", "2",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}") from None
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not answer /healthz in 30 s")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> str:
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    subprocess.run([*ARCHIVER, "init", "--store", str(root)], check=True, capture_output=True)
    subprocess.run([*ARCHIVER, "config", "set", "capture.allow_private", "true", "--store", str(root)], check=True,
                   capture_output=True)
    return root


def test_first_start_makes_an_admin_token_and_a_login_link(store: Path) -> None:
    port = free_port()
    proc = start(store, port)
    try:
        time.sleep(0.3)
    finally:
        out = stop(proc)
    assert "made admin token 'admin'" in out and "/login?once=" in out, out
    token = next(line.strip() for line in out.splitlines() if line.strip().startswith("arch_"))
    listed = subprocess.run([*ARCHIVER, "tokens", "list", "--json", "--store", str(store)], capture_output=True,
                            text=True, check=True)
    assert [t["name"] for t in json.loads(listed.stdout)] == ["admin"] and token not in listed.stdout


def test_non_loopback_host_is_refused_without_a_token(store: Path) -> None:
    r = subprocess.run([*ARCHIVER, "serve", "--store", str(store), "--host", "0.0.0.0", "--port", str(free_port())],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "archiver tokens create" in r.stderr, r.stderr


def _api(port: int, token: str, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"},
                            timeout=30, **kw)


def test_kill_9_with_jobs_running_leaves_no_job_running(store: Path, site) -> None:  # type: ignore[no-untyped-def]
    made = subprocess.run([*ARCHIVER, "tokens", "create", "ops", "--role", "capturer", "--json", "--store", str(store)],
                          capture_output=True, text=True, check=True)
    token = json.loads(made.stdout)["token"]
    port = free_port()
    proc = start(store, port)
    assert _api(port, token, "GET", "/api/v1/records").status_code == 200
    jobs = []
    for i in range(8):
        r = _api(port, token, "POST", "/api/v1/captures", json={"url": f"{site.base_url}/slowish?n={i}"})
        assert r.status_code == 202, r.text
        jobs.append(r.json()["job"])
    deadline = time.monotonic() + 20
    running = 0
    while time.monotonic() < deadline and running == 0:
        states = [_api(port, token, "GET", f"/api/v1/captures/{j}").json()["status"] for j in jobs]
        running = states.count("running")
    assert running > 0, states
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)

    proc = start(store, port)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            states = [_api(port, token, "GET", f"/api/v1/captures/{j}").json() for j in jobs]
            if all(s["status"] in ("done", "failed") for s in states):
                break
            time.sleep(0.2)
        assert all(s["status"] == "done" for s in states), states
        rids = [s["record_id"] for s in states]
        assert len(set(rids)) == len(jobs)  # one record per job: none lost, none made twice
        listed = _api(port, token, "GET", "/api/v1/records", params={"limit": 100}).json()["items"]
        assert len(listed) == len(jobs)
    finally:
        stop(proc)
    v = subprocess.run([*ARCHIVER, "verify", "--all", "--store", str(store)], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout[-2000:]
