"""The web's bundle verification is bounded and cancellable (issue 28, defect 7): a real `archiver serve
--public-verify` process on 127.0.0.1, each test with its own store and settings.

- SIGTERM while an anonymous upload is being verified: the server exits within 5 s (before, it waited
  for the verification: ~30 s of inflating and hashing for the bundle here), the verification process
  is gone and no upload is left in the store's tmp;
- one more concurrent upload than ``web.verify_workers``: exactly one 503 with Retry-After; the others
  end at ``web.verify_seconds`` with a 422 naming that setting;
- a bundle that needs more memory than ``web.verify_memory``: a 422 naming that setting, while the
  server itself stays small; a 63 MiB JSON bomb leaves the server under 1 GB (before, it parsed
  8 million objects in the server process).
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from archiver.demo.server import SampleSite

from .hostile import _datapackage, _huge_json, copied_records
from .recipient import ARCHIVER, Sampler, Setup, case_env, children, recipient_setup, serve_process, served_store


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, site: SampleSite) -> Setup:
    return recipient_setup(tmp_path_factory.mktemp("bounded"), site)


@pytest.fixture(scope="module")
def slow(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Within every cap, and slow: the WARC holds 3 conversion records of 1 GiB (~3 MB on disk) and 4
    more records name it, so verifying reads 15 GiB (under verify.max_bundle_bytes, 16 GiB)."""
    bad = tmp_path_factory.mktemp("slow") / "slow.wacz"
    copied_records(4, 3, 1 << 30)(setup.origin, bad)
    return bad


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    token: str
    store: Path
    sampler: Sampler

    def uploads_left(self) -> list[Path]:
        return sorted((self.store / "tmp").glob("upload-*"))


@pytest.fixture()
def server(setup: Setup, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    store, token = served_store(setup, tmp_path / "served")
    for key, value in getattr(request, "param", {}).items():
        subprocess.run([*ARCHIVER, "config", "set", key, str(value), "--store", str(store)], check=True,
                       capture_output=True, timeout=60)
    proc, base = serve_process(store, case_env(tmp_path / "run"), "--public-verify")
    sampler = Sampler(proc.pid)
    sampler.start()
    try:
        yield Server(proc, base, token, store, sampler)
    finally:
        sampler.stopped.set()
        sampler.join(timeout=5)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def anonymous_upload(s: Server, bundle: Path) -> requests.Response:
    """The public verification page, as a stranger uses it (no token, no session)."""
    with bundle.open("rb") as fh:
        return requests.post(s.base + "/verify", files={"file": (bundle.name, fh, "application/zip")}, timeout=180)


def api_upload(s: Server, bundle: Path) -> requests.Response:
    with bundle.open("rb") as fh:
        return requests.post(s.base + "/api/v1/verify-bundle", headers={"Authorization": f"Bearer {s.token}"},
                             files={"file": (bundle.name, fh, "application/zip")}, timeout=180)


def test_sigterm_during_a_verification_stops_the_server_promptly(server: Server, slow: Path) -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pending = pool.submit(anonymous_upload, server, slow)
    deadline = time.monotonic() + 3  # (a server that verifies in its own process starts no child)
    while time.monotonic() < deadline and not server.sampler.seen:  # the verification has started
        time.sleep(0.05)
    time.sleep(1.0)  # well into the 15 GiB (~15 s of work)
    running = set(server.sampler.seen)
    server.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        server.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    took = time.monotonic() - started
    try:
        answer = pending.result(timeout=60)
        shown = f"{answer.status_code} {answer.text[:200]}"
    except requests.RequestException as exc:
        shown = f"no answer: {type(exc).__name__}"
    pool.shutdown()
    assert took < 5.0, f"the server took {took:.1f} s to stop after SIGTERM (the upload: {shown})"
    assert running, "no verification process was started"
    assert server.uploads_left() == [], "the upload was left in the store's tmp"
    assert not [pid for pid in running if Path(f"/proc/{pid}").exists() and
                "zombie" not in Path(f"/proc/{pid}/status").read_text()], "a verification process outlived the server"


@pytest.mark.parametrize("server", [{"web.verify_workers": 2, "web.verify_seconds": 4}], indirect=True)
def test_one_more_upload_than_slots_is_refused_with_503(server: Server, slow: Path) -> None:
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: api_upload(server, slow), range(3)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [422, 422, 503], [(a.status_code, a.text[:300]) for a in answers]
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers.get("Retry-After", "").isdigit() and "web.verify_workers" in busy.json()["detail"]
    for a in answers:
        if a.status_code == 422:
            assert a.headers["content-type"].startswith("application/problem+json")
            assert "web.verify_seconds" in a.json()["detail"], a.text
    assert server.proc.poll() is None and server.uploads_left() == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and children(server.proc.pid):
        time.sleep(0.1)
    assert not children(server.proc.pid), "a verification process outlived its time cap"


@pytest.mark.parametrize("server", [{"web.verify_memory": 160 << 20}], indirect=True)
def test_a_verification_over_its_memory_cap_is_refused(server: Server, setup: Setup, tmp_path: Path) -> None:
    """A datapackage holding one 60 MB string (two JSON values, far under the count a member may hold)
    needs well over 160 MB to read and parse: over a 160 MB cap the upload is refused naming the setting;
    the genuine bundle still verifies under it."""
    hungry = tmp_path / "hungry.wacz"
    _datapackage(b'{"resources": ["' + b"a" * (60 << 20) + b'"]}', True)(setup.origin, hungry)
    r = api_upload(server, hungry)
    assert r.status_code == 422 and "web.verify_memory" in r.json()["detail"], r.text[:500]
    page = anonymous_upload(server, hungry)
    assert page.status_code == 422 and "web.verify_memory" in page.text
    ok = api_upload(server, setup.origin.good)
    assert ok.status_code == 200 and ok.json()["verdict"] == "verified", ok.text[:500]
    assert server.sampler.server < 200 << 20, server.sampler.server
    assert server.uploads_left() == []


def test_a_json_bomb_leaves_the_server_small(server: Server, setup: Setup, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.wacz"
    _datapackage(_huge_json(), True)(setup.origin, bomb)
    assert bomb.stat().st_size < 1 << 20
    r = anonymous_upload(server, bomb)
    assert r.status_code in (200, 422), r.text[:500]
    time.sleep(0.2)
    assert server.sampler.server < 1 << 30 and server.sampler.child < 1 << 30, (server.sampler.server,
                                                                               server.sampler.child)
    assert server.sampler.server < 200 << 20, server.sampler.server  # the parsing never happens in the server
    assert server.proc.poll() is None and server.uploads_left() == []


@pytest.mark.parametrize("server", [{"web.max_upload_bytes": 100_000}], indirect=True)
def test_an_upload_over_the_size_cap_is_413_and_not_kept(server: Server, slow: Path) -> None:
    r = api_upload(server, slow)
    assert r.status_code == 413 and "web.max_upload_bytes" in r.json()["detail"], r.text[:300]
    assert server.uploads_left() == [] and not children(server.proc.pid)
    json.dumps(r.json())
