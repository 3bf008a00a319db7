"""Fast reads (issue 33, point 2): cached record views that can never show a stale verdict, and
artifacts sent as files with HTTP ranges.

The cache is in-process and keyed by everything a view shows that can change (``evidence.view_key``),
read from the catalog on every request; these tests damage a blob by hand and watch the page, the API
and the CLI (a child process, so its verification reaches the server only through the catalog).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archiver.access import create_token
from archiver.api import Archive
from archiver.evidence import VIEWS, view_key
from archiver.web import create_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def served(archive: Archive, site: Any) -> Iterator[dict[str, Any]]:
    manifest = archive.capture(site.base_url + "/policy", actor="tester")
    tokens = {r: create_token(archive, r, r, actor="tester").token for r in ("viewer", "capturer")}
    app = create_app(archive, workers=1)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield {"client": client, "archive": archive, "rid": manifest.record_id, "manifest": manifest,
               "tok": tokens}
    app.state.web.runner.shutdown(wait=True)


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _damage(archive: Archive, sha: str) -> None:
    """What a disk fault or a hand edit does: the blob's bytes change, its name does not."""
    path = archive.blobs.path(sha)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))


def _cli_verify(archive: Archive, rid: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "archiver.cli", "verify", rid, "--store", str(archive.root)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_damaged_blob_is_never_served_verified(served: dict[str, Any]) -> None:
    client, a, rid, tok = served["client"], served["archive"], served["rid"], served["tok"]
    ok = client.post(f"/api/v1/records/{rid}/verify", headers=_h(tok["capturer"]))
    assert ok.status_code == 200 and ok.json()["ok"] is True
    # warm every cached view, and show they are served from the cache
    for path in (f"/records/{rid}", f"/api/v1/records/{rid}/provenance", f"/api/v1/records/{rid}/citation"):
        first = client.get(path, headers=_h(tok["viewer"]))
        hits = VIEWS.hits
        again = client.get(path, headers=_h(tok["viewer"]))
        assert first.status_code == again.status_code == 200 and again.content == first.content
        assert VIEWS.hits > hits, f"{path} was not served from the cache"
    assert "VERIFIED" in client.get(f"/records/{rid}", headers=_h(tok["viewer"])).text
    assert client.get(f"/api/v1/records/{rid}/citation", headers=_h(tok["viewer"])).json()["verified"] is True

    _damage(a, served["manifest"].artifact("content").sha256)

    # the CLI, in a process of its own: FAIL, and the server's next reads show it
    cli = _cli_verify(a, rid)
    assert cli.returncode == 1 and "FAIL" in cli.stdout + cli.stderr, cli.stdout + cli.stderr
    page = client.get(f"/records/{rid}", headers=_h(tok["viewer"])).text
    assert "FAILED" in page and "VERIFIED</span>" not in page
    cite = client.get(f"/api/v1/records/{rid}/citation", headers=_h(tok["viewer"])).json()
    assert cite["verified"] is False

    # the API (the page's "Verify now" button posts here): FAIL, and the page shows that verification
    again = client.post(f"/api/v1/records/{rid}/verify", headers=_h(tok["capturer"]))
    assert again.status_code == 200 and again.json()["ok"] is False
    failed = [c["name"] for c in again.json()["checks"] if c["status"] == "FAIL"]
    assert failed
    key = view_key(a, rid)
    assert key is not None and key.verification is not None and key.verification[1] is False
    page = client.get(f"/records/{rid}", headers=_h(tok["viewer"])).text
    assert f"Last verified {key.verification[0]}" in page and "FAILED" in page
    for name in failed:
        assert name in page


def test_views_follow_what_changes(served: dict[str, Any]) -> None:
    """A download's custody entry, a new addendum (publish) and the keyring each make a new key."""
    client, a, rid, tok = served["client"], served["archive"], served["rid"], served["tok"]
    before = client.get(f"/api/v1/records/{rid}/provenance", headers=_h(tok["viewer"])).json()
    assert client.get(f"/api/v1/records/{rid}", headers=_h(tok["viewer"])).json()["addenda"] == []
    k0 = view_key(a, rid)
    assert client.get(f"/api/v1/records/{rid}/artifacts/content", headers=_h(tok["viewer"])).status_code == 200
    after = client.get(f"/api/v1/records/{rid}/provenance", headers=_h(tok["viewer"])).json()
    assert [c["event"] for c in after["custody"]] == [c["event"] for c in before["custody"]] + ["get"]
    k1 = view_key(a, rid)
    assert k0 is not None and k1 is not None and k1.digest != k0.digest

    assert client.post(f"/api/v1/records/{rid}/publish", headers=_h(tok["capturer"])).status_code == 200
    rec = client.get(f"/api/v1/records/{rid}", headers=_h(tok["viewer"])).json()
    assert len(rec["addenda"]) == 1, rec["addenda"]  # the publication addendum, on a cached view too
    page = client.get(f"/records/{rid}", headers=_h(tok["viewer"])).text
    assert f"/r/{rid}" in page  # the permalink, once public

    trusted = client.get(f"/api/v1/records/{rid}/provenance", headers=_h(tok["viewer"])).json()["signer_trusted"]
    for f in a.keys.keyring_dir.glob("*.pem"):
        f.unlink()
    os.utime(a.keys.keyring_dir, ns=(1, 1))  # a coarse clock must not hide the change either
    assert client.get(f"/api/v1/records/{rid}/provenance",
                      headers=_h(tok["viewer"])).json()["signer_trusted"] is not trusted


def test_view_cache_is_bounded_in_bytes() -> None:
    from archiver.evidence import ViewCache

    cache = ViewCache(max_bytes=1000)
    for i in range(50):
        cache.remember(("k", i), lambda: b"x" * 100)
    assert cache.size <= 1000
    assert cache.get(("k", 49)) is not None and cache.get(("k", 0)) is None
    cache.remember(("big",), lambda: b"y" * 600)  # more than a quarter of the budget: served, not kept
    assert cache.get(("big",)) is None


def test_artifact_ranges_and_custody(served: dict[str, Any]) -> None:
    client, a, rid, tok = served["client"], served["archive"], served["rid"], served["tok"]
    sha = served["manifest"].artifact("warc").sha256
    url = f"/api/v1/records/{rid}/artifacts/warc"

    def gets() -> int:
        return sum(1 for e in a.custody.for_record(rid) if e.event == "get")

    whole = client.get(url, headers=_h(tok["viewer"]))
    assert whole.status_code == 200 and whole.headers["etag"] == f'"{sha}"'
    assert whole.headers["content-disposition"].startswith("attachment;")
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in whole.headers["content-security-policy"]
    assert gets() == 1
    body = whole.content

    part = client.get(url, headers={**_h(tok["viewer"]), "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == body[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(body)}"
    assert "sandbox" in part.headers["content-security-policy"]
    # If-Range: the strong ETag (the blob's SHA-256) still matches, so the range is served ...
    same = client.get(url, headers={**_h(tok["viewer"]), "Range": "bytes=0-3", "If-Range": f'"{sha}"'})
    assert same.status_code == 206 and same.content == body[:4]
    # ... another validator means the client holds other bytes: the whole artifact (and a `get`)
    other = client.get(url, headers={**_h(tok["viewer"]), "Range": "bytes=0-3", "If-Range": '"0000"'})
    assert other.status_code == 200 and other.content == body
    bad = client.get(url, headers={**_h(tok["viewer"]), "Range": f"bytes={len(body) + 5}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(body)}"
    assert gets() == 2  # the whole downloads only: ranges are partial reads


def test_the_cached_record_page_shows_new_working_data_and_provisions_at_once(served: dict[str, Any]) -> None:
    """Notes, tags, holds and provisions are not evidence (not in the record views' key): the rendered
    page is keyed by them too, so the next read shows each one."""
    from archiver import matters
    from archiver.matters.holds import place
    from archiver.matters.notes import add_note

    client, a, rid, tok = served["client"], served["archive"], served["rid"], served["tok"]
    h = _h(tok["viewer"])
    assert "a note only the team sees" not in client.get(f"/records/{rid}", headers=h).text
    matters.create(a, "smith", actor="tester")
    matters.add(a, "smith", [rid], actor="tester")
    add_note(a, rid, "a note only the team sees", matter="smith", actor="tester")
    assert "a note only the team sees" in client.get(f"/records/{rid}", headers=h).text
    place(a, "smith", "preservation letter of 2026-12-01", actor="tester")
    assert "preservation letter of 2026-12-01" in client.get(f"/records/{rid}", headers=h).text
    a.derive([rid], passphrase=lambda: None, actor="tester")
    pid = a.provisions.add(rid, "We use your information to provide and improve the service.",
                           actor="tester").provision_id
    assert pid in client.get(f"/records/{rid}", headers=h).text
