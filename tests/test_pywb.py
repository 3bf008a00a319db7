"""Integration with a real replay system: our WARC indexed and replayed by pywb on 127.0.0.1.

pywb lives in its own venv (``make test`` builds ``.venv-pywb``; ``ARCHIVER_PYWB_BIN`` points at
its bin directory). It runs with no live-web handler, bound to loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from archiver.api import Archive
from archiver.wayback import wayback_timestamp

PYWB_BIN = Path(os.environ.get("ARCHIVER_PYWB_BIN", str(Path(__file__).resolve().parent.parent / ".venv-pywb/bin")))
pytestmark = pytest.mark.skipif(not (PYWB_BIN / "wayback").exists(),
                                reason=f"pywb not installed at {PYWB_BIN} (make test builds .venv-pywb)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def pywb_with(tmp_path: Path, archive: Archive, site) -> Iterator[tuple[str, Archive, str]]:  # type: ignore[no-untyped-def]
    rid = archive.capture(site.base_url + "/chunked").record_id
    warc = tmp_path / "capture.warc.gz"
    archive.get(rid, "warc", warc)
    root = tmp_path / "pywb"
    root.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run([str(PYWB_BIN / "wb-manager"), "init", "evidence"], cwd=root, env=env, check=True,
                   capture_output=True, timeout=120)
    subprocess.run([str(PYWB_BIN / "wb-manager"), "add", "evidence", str(warc)], cwd=root, env=env, check=True,
                   capture_output=True, timeout=120)
    port = _free_port()
    proc = subprocess.Popen([str(PYWB_BIN / "wayback"), "-b", "127.0.0.1", "-p", str(port)], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):  # bounded: up to 30 s for pywb to start
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield base, archive, rid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_pywb_indexes_and_replays_our_warc(pywb_with: tuple[str, Archive, str], tmp_path: Path) -> None:
    base, archive, rid = pywb_with
    m = archive.manifest(rid)
    url = m.subject.final_url
    q = urllib.parse.urlencode({"url": url, "output": "text", "fl": "urlkey,timestamp,url,mime,status,digest,length"})
    cdx = requests.get(f"{base}/evidence/cdx?{q}", timeout=10).text.strip().splitlines()
    rows = [line.split(" ") for line in cdx]
    responses = [r for r in rows if r[3] == "text/html" and r[4] == "200"]
    assert len(responses) == 1, cdx
    _urlkey, ts, row_url, _mime, _status, digest, _length = responses[0]
    assert row_url == url and ts == wayback_timestamp(m.captured_at)
    # pywb takes the payload digest from our WARC-Payload-Digest header (sha256, per DESIGN) ...
    assert digest == "sha256:" + m.digests.payload_sha256
    # ... and computes SHA-1 base32 itself where a record has none (our text conversion record):
    # the same function we apply to the payload for payload_sha1_b32, so CDX digests compare.
    text = tmp_path / "text.txt"
    archive.get(rid, "text", text)
    conversion = [r for r in rows if r[3] == "text/plain"]
    assert conversion and conversion[0][5] == base64.b32encode(hashlib.sha1(text.read_bytes()).digest()).decode()
    # and our WARC replays: id_ returns the original payload bytes
    replay = requests.get(f"{base}/evidence/{ts}id_/{url}", timeout=10)
    assert replay.status_code == 200
    content = tmp_path / "content"
    archive.get(rid, "content", content)
    assert hashlib.sha256(replay.content).hexdigest() == m.digests.content_sha256 == \
        hashlib.sha256(content.read_bytes()).hexdigest()
    assert json.loads(json.dumps(m.to_dict()))["digests"]["payload_sha1_b32"] == base64.b32encode(
        hashlib.sha1(replay.content).digest()).decode()
