"""The HTTP API through the ASGI test client: roles, jobs, artifacts, verification, errors, safety."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from archiver.access import create_token, revoke_token
from archiver.api import Archive
from archiver.models import schemas
from archiver.web import create_app
from tests.conftest import HOSTILE, HTML

ROLES = ("viewer", "capturer", "admin")


def _tokens(archive: Archive) -> dict[str, str]:
    """A token of each role, plus a revoked and an expired admin token."""
    tokens = {r: create_token(archive, r, r, actor="tester").token for r in ROLES}
    tokens["revoked"] = create_token(archive, "revoked", "admin", actor="tester").token
    revoke_token(archive, "revoked", actor="tester")
    tokens["expired"] = create_token(archive, "expired", "admin", expires="1d", actor="tester").token
    with sqlite3.connect(archive.root / "catalog.sqlite3") as db:
        db.execute("UPDATE tokens SET expires_at='2001-01-01T00:00:00Z' WHERE name='expired'")
    return tokens


@pytest.fixture()
def web(archive: Archive) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = _tokens(archive)
    app = create_app(archive, workers=2)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, tokens
    app.state.web.runner.shutdown(wait=True)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_job(client: TestClient, token: str, url: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(url, headers=auth(token)).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {url} did not finish in {timeout} s")


def capture(client: TestClient, token: str, url: str, **extra: Any) -> dict[str, Any]:
    r = client.post("/api/v1/captures", json={"url": url, **extra}, headers=auth(token))
    assert r.status_code == 202, r.text
    return wait_job(client, token, r.json()["status_url"])


def test_capture_job_download_verify_cite_lookup(web, site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client, tok = web
    job = capture(client, tok["capturer"], site.base_url + "/chunked", entity="Example Inc.",
                  document="Privacy Policy")
    assert job["status"] == "done" and job["record_id"], job
    jsonschema.Draft202012Validator(schemas()["capture-job"]).validate(job)
    rid = job["record_id"]
    rec = client.get(f"/api/v1/records/{rid}", headers=auth(tok["viewer"]))
    assert rec.status_code == 200
    jsonschema.Draft202012Validator(schemas()["record"]).validate(rec.json())

    # artifact: byte-exact, Repr-Digest, attachment, nosniff, sandboxed
    r = client.get(f"/api/v1/records/{rid}/artifacts/content", headers=auth(tok["viewer"]))
    assert r.status_code == 200 and r.content == HTML
    digest = base64.b64encode(hashlib.sha256(HTML).digest()).decode()
    assert r.headers["repr-digest"] == f"sha-256=:{digest}:"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff" and "sandbox" in r.headers["content-security-policy"]
    assert int(r.headers["content-length"]) == len(HTML)
    part = client.get(f"/api/v1/records/{rid}/artifacts/warc", headers={**auth(tok["viewer"]), "Range": "bytes=0-9"})
    whole = client.get(f"/api/v1/records/{rid}/artifacts/warc", headers=auth(tok["viewer"])).content
    assert part.status_code == 206 and part.content == whole[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(whole)}"
    tail = client.get(f"/api/v1/records/{rid}/artifacts/warc", headers={**auth(tok["viewer"]), "Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == whole[-5:]
    bad = client.get(f"/api/v1/records/{rid}/artifacts/warc",
                     headers={**auth(tok["viewer"]), "Range": f"bytes={len(whole) + 5}-"})
    assert bad.status_code == 416

    v = client.post(f"/api/v1/records/{rid}/verify", headers=auth(tok["capturer"]))
    assert v.status_code == 200 and v.json()["ok"] is True and v.json()["verified"] is True
    jsonschema.Draft202012Validator(schemas()["verification"]).validate(v.json())

    c = client.get(f"/api/v1/records/{rid}/citation", params={"style": "bluebook"}, headers=auth(tok["viewer"]))
    assert (c.status_code == 200 and rid in c.json()["citation"]) or "Example" in c.json()["citation"]
    jsonschema.Draft202012Validator(schemas()["citation"]).validate(c.json())
    missing = client.get(f"/api/v1/records/{rid}/citation", params={"quote": "we will never sell anything"},
                         headers=auth(tok["viewer"]))
    assert missing.status_code == 422 and missing.headers["content-type"].startswith("application/problem+json")

    sha = hashlib.sha256(HTML).hexdigest()
    hits = client.get("/api/v1/lookup", params={"sha256": sha}, headers=auth(tok["viewer"])).json()
    assert [(h["record_id"], h["artifact"]) for h in hits] == [(rid, "content")]

    same = client.post("/api/v1/verify-file", files={"file": ("policy.html", HTML, "text/html")},
                       headers=auth(tok["viewer"]))
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["sha256"] == sha and body["size"] == len(HTML)
    assert [(m["record_id"], m["verified"]) for m in body["matches"]] == [(rid, True)]
    other = client.post("/api/v1/verify-file", files={"file": ("policy.html", HTML[:-1] + b"!", "text/html")},
                        headers=auth(tok["viewer"]))
    assert other.status_code == 200 and other.json()["matches"] == []

    # the custody log names the token that asked
    archive: Archive = client.app.state.web.archive  # type: ignore[attr-defined]
    entries = archive.custody.for_record(rid)
    assert ("capture", "capturer") in [(e.event, e.actor) for e in entries]
    assert ("verify", "capturer") in [(e.event, e.actor) for e in entries]
    assert ("get", "viewer") in [(e.event, e.actor) for e in entries]  # the whole downloads, not the ranges


def test_hostile_page_comes_back_as_json_strings(web, site) -> None:  # type: ignore[no-untyped-def]
    client, tok = web
    job = capture(client, tok["capturer"], site.base_url + "/hostile", entity="<b>Evil</b> Corp <script>x()</script>")
    assert job["status"] == "done", job
    rid = job["record_id"]
    rec = client.get(f"/api/v1/records/{rid}", headers=auth(tok["viewer"]))
    assert rec.headers["content-type"] == "application/json"
    data = rec.json()
    assert data["subject"]["entity"] == "<b>Evil</b> Corp <script>x()</script>"
    assert "<script>" in (data["subject"]["title"] or "")
    r = client.get(f"/api/v1/records/{rid}/artifacts/content", headers=auth(tok["viewer"]))
    assert r.content == HOSTILE
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("sandbox")


def test_problem_details_follow_the_cli_causes(web, site, archive: Archive) -> None:  # type: ignore[no-untyped-def]
    client, tok = web
    h = auth(tok["capturer"])
    bad = client.post("/api/v1/captures", json={"url": "ftp://example.org/x"}, headers=h)
    assert bad.status_code == 400 and bad.json()["exit_code"] == 2
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/records/ZZZZ-ZZZZ", headers=h).status_code == 404
    assert client.post("/api/v1/captures", json={}, headers=h).status_code == 422
    # the private-network guard: the store does not allow private targets -> the job fails, no record
    archive.config.set("capture.allow_private", "false")
    job = capture(client, tok["capturer"], site.base_url + "/plain")
    assert job["status"] == "failed" and job["error_kind"] == "BlockedAddressError" and job["record_id"] is None
    dead = capture(client, tok["capturer"], "http://169.254.169.254/latest/meta-data/")
    assert dead["status"] == "failed" and dead["error_kind"] == "BlockedAddressError"
    assert archive.catalog.count() == 0


def test_capture_rate_limit(web, site, archive: Archive) -> None:  # type: ignore[no-untyped-def]
    client, tok = web
    client.app.state.web.limiter.__init__(archive.catalog, 2)  # type: ignore[attr-defined]
    h = auth(tok["capturer"])
    codes = [client.post("/api/v1/captures", json={"url": site.base_url + "/plain"}, headers=h).status_code
             for _ in range(3)]
    assert codes[:2] == [202, 202] and codes[2] == 429
    r = client.post("/api/v1/captures", json={"url": site.base_url + "/plain"}, headers=h)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # another token has its own bucket
    assert client.post("/api/v1/captures", json={"url": site.base_url + "/plain"},
                       headers=auth(tok["admin"])).status_code == 202


#: Who may call what, pinned: the policy every route and mount declares (deps.Policy, as text). A new
#: route must be added here, so its policy is reviewed; a route whose guard is removed or weakened fails.
EXPECTED_POLICIES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public/api",
    ("GET", "/metrics"): "public/api",
    ("GET", "/api/openapi.json"): "public/api",
    ("GET", "/api/docs/assets"): "public/static",
    ("GET", "/static"): "public/static",
    ("GET", "/api/docs"): "public/page",
    ("GET", "/api/docs/init.js"): "public/static",
    ("GET", "/api/v1/records"): "viewer/api",
    ("GET", "/api/v1/records/{record_id}"): "viewer/api",
    ("GET", "/api/v1/records/{record_id}/provenance"): "viewer/api",
    ("GET", "/api/v1/records/{record_id}/artifacts/{name}"): "viewer/download (logs get)",
    ("POST", "/api/v1/records/{record_id}/verify"): "capturer/api",
    ("GET", "/api/v1/records/{record_id}/citation"): "viewer/api",
    ("POST", "/api/v1/certificates"): "viewer/download",
    ("POST", "/api/v1/exports"): "capturer/download",
    ("POST", "/api/v1/captures"): "capturer/api",
    ("GET", "/api/v1/captures/{job}"): "viewer/api",
    ("GET", "/api/v1/lookup"): "viewer/api",
    ("POST", "/api/v1/verify-file"): "viewer/api",
    ("POST", "/api/v1/verify-bundle"): "viewer/api",
    ("GET", "/api/v1/watches"): "viewer/api",
    ("POST", "/api/v1/watches"): "capturer/api",
    ("PATCH", "/api/v1/watches"): "capturer/api",
    ("DELETE", "/api/v1/watches"): "capturer/api",
    ("POST", "/api/v1/records/{record_id}/publish"): "capturer/api",
    ("POST", "/api/v1/records/{record_id}/unpublish"): "capturer/api",
    ("GET", "/api/v1/history"): "viewer/api",
    ("GET", "/api/v1/diff/{a}/{b}"): "viewer/api",
    ("GET", "/api/v1/tokens"): "admin/api",
    ("POST", "/api/v1/tokens"): "admin/api",
    ("DELETE", "/api/v1/tokens/{name}"): "admin/api",
    ("GET", "/api/v1/settings"): "admin/api",
    ("GET", "/r/{record_id}.json"): "public/api",
    ("GET", "/r/{record_id}"): "public/page",
    ("HEAD", "/r/{record_id}"): "public/page",
    ("GET", "/r/{record_id}/screenshot.png"): "public/download",
    ("GET", "/r/{record_id}/bundle.wacz"): "public/download",
    ("GET", "/log/checkpoint"): "public/api",
    ("GET", "/log/tile/{rest:path}"): "public/api",
    ("GET", "/login"): "public/page",
    ("POST", "/login"): "public/page",
    ("POST", "/logout"): "viewer/page",
    ("GET", "/"): "viewer/page",
    ("GET", "/records/{record_id}"): "viewer/page",
    ("GET", "/records/{record_id}/screenshot.png"): "viewer/download",
    ("GET", "/records/{record_id}/bundle.wacz"): "capturer/download (logs export)",
    ("POST", "/records/{record_id}/certificate"): "viewer/download",
    ("POST", "/records/{record_id}/publish"): "capturer/page",
    ("POST", "/records/{record_id}/unpublish"): "capturer/page",
    ("GET", "/capture"): "capturer/page",
    ("POST", "/capture"): "capturer/page",
    ("GET", "/verify"): "public-verify/page",
    ("POST", "/verify"): "public-verify/page",
    ("GET", "/watches"): "viewer/page",
    ("POST", "/watches"): "capturer/page",
    ("POST", "/watches/remove"): "capturer/page",
    ("GET", "/diff/{a}/{b}"): "viewer/page",
    ("GET", "/clause"): "viewer/page",
    ("GET", "/timegate/{path:path}"): "public/api",
    ("HEAD", "/timegate/{path:path}"): "public/api",
    ("GET", "/timemap/link/{path:path}"): "public/api",
    ("HEAD", "/timemap/link/{path:path}"): "public/api",
    ("GET", "/c/{collection}"): "public/page",
    ("GET", "/c/{collection}.json"): "public/api",
    ("GET", "/c/{collection}.wacz"): "public/download",
    ("GET", "/api/v1/provisions"): "viewer/api",
    ("GET", "/api/v1/provisions/{provision_id}"): "viewer/api",
    ("GET", "/provisions"): "viewer/page",
    ("GET", "/provisions/{provision_id}"): "viewer/page",
    ("GET", "/api/v1/search"): "viewer/api",
    ("GET", "/search"): "viewer/page",
    ("GET", "/matters/{matter}/exhibit"): "capturer/page",
    ("POST", "/matters/{matter}/exhibit"): "capturer/download",
    ("GET", "/matters"): "viewer/page",
    ("GET", "/matters/{matter}"): "viewer/page",
    ("POST", "/matters/{matter}/notes"): "capturer/page",
    ("POST", "/matters/{matter}/tags"): "capturer/page",
    ("GET", "/api/v1/matters"): "viewer/api",
    ("POST", "/api/v1/matters"): "capturer/api",
    ("GET", "/api/v1/matters/{matter}"): "viewer/api",
    ("POST", "/api/v1/matters/{matter}/records"): "capturer/api",
    ("POST", "/api/v1/matters/{matter}/notes"): "capturer/api",
    ("POST", "/api/v1/matters/{matter}/tags"): "capturer/api",
    ("GET", "/feeds/all.atom"): "viewer/api",  # anyone's while alerts.feeds_public is on
    ("GET", "/feeds/entity/{name}.atom"): "viewer/api",
    ("GET", "/feeds/watch/{key}.atom"): "viewer/api",
    ("GET", "/alerts"): "admin/page",
    ("GET", "/api/v1/alerts/deliveries"): "admin/api",
}


def declared(app: Any) -> dict[tuple[str, str], Any]:
    from archiver.web.deps import policies

    return {(m, path): pol for path, methods, pol in policies(app.routes) for m in sorted(methods)}


def concrete(path: str, rid: str, job: str) -> str:
    """A path to request for a route: real IDs where the route takes them, a file under a mount."""
    return (path.replace("{record_id}", rid).replace("{a}", rid).replace("{b}", rid).replace("{job}", job)
            .replace("/artifacts/{name}", "/artifacts/content").replace("/tokens/{name}", "/tokens/nobody")
            .replace("/api/docs/assets", "/api/docs/assets/swagger-ui.css" if path.endswith("assets") else "")
            .replace("/static", "/static/app.css" if path == "/static" else "/static")
            .replace("/log/tile/{rest:path}", "/log/tile/0/000.p/1").replace("{matter}", "m1"))


@pytest.mark.parametrize("public_verify", [False, True])
def test_role_matrix(archive: Archive, site, public_verify: bool) -> None:  # type: ignore[no-untyped-def]
    """Each route as anonymous, viewer, capturer, admin, a revoked and an expired token, against the real
    app: exactly the roles its policy admits get past the guard. The matrix is derived from the policies
    the routes declare, which are pinned in EXPECTED_POLICIES."""

    tok = _tokens(archive)
    rid = archive.capture(site.base_url + "/plain").record_id
    app = create_app(archive, public_verify=public_verify, start_jobs=False)
    found = declared(app)
    assert {k: str(v) if v else None for k, v in found.items()} == EXPECTED_POLICIES
    rank = {"viewer": 0, "capturer": 1, "admin": 2}
    checked = 0
    with TestClient(app, base_url="http://127.0.0.1") as client:
        job = client.post("/api/v1/captures", json={"url": "http://127.0.0.1:9/x"}, headers=auth(tok["capturer"]))
        job_id = job.json()["job"]
        for (method, path), policy in found.items():
            assert policy is not None, (method, path)
            needed = policy.access.role(public_verify)
            url = concrete(path, rid, job_id)
            for who in ("none", "viewer", "capturer", "admin", "revoked", "expired"):
                headers = auth(tok[who]) if who != "none" else {}
                r = client.request(method, url, headers=headers, follow_redirects=False)
                to_login = method == "GET" and r.status_code == 303 and \
                    r.headers["location"].startswith(("/login", "/verify"))
                where = (method, url, who, r.status_code, r.text[:160])
                if needed is None or (who in rank and rank[who] >= rank[needed.value]):
                    assert r.status_code not in (401, 403) and not to_login, where
                elif who not in rank:  # no valid token
                    if method == "GET" and not path.startswith("/api/"):  # a browser goes to log in
                        assert to_login, where
                    else:
                        assert r.status_code == 401, where
                        if path.startswith("/api/"):
                            assert r.headers["www-authenticate"].startswith("Bearer"), where
                else:
                    assert r.status_code == 403, where
                checked += 1
    app.state.web.runner.shutdown(wait=True)
    assert checked == len(EXPECTED_POLICIES) * 6


def test_session_cookie_needs_csrf_and_revocation_ends_it(web, archive: Archive) -> None:  # type: ignore[no-untyped-def]
    client, tok = web
    page = client.get("/login")
    csrf = page.cookies.get("archiver_login_csrf") or client.cookies.get("archiver_login_csrf")
    r = client.post("/login", data={"token": tok["viewer"], "csrf_token": csrf, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert client.get("/api/v1/records").status_code == 200  # the cookie authenticates
    rid_less = client.post("/api/v1/records/ZZZZ-ZZZZ/verify")
    assert rid_less.status_code == 403 and "CSRF" in rid_less.json()["detail"]
    revoke_token(archive, "viewer", actor="tester")
    assert client.get("/api/v1/records").status_code == 401


def test_security_headers_and_docs_offline(web) -> None:  # type: ignore[no-untyped-def]
    client, _ = web
    for path in ("/healthz", "/api/openapi.json", "/api/docs", "/login"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "no-referrer"
    docs = client.get("/api/docs").text
    assert "cdn" not in docs.lower() and "/api/docs/assets/swagger-ui-bundle.js" in docs
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/api/openapi.json").json()
    assert "/api/v1/captures" in spec["paths"] and "CaptureJob" in spec["components"]["schemas"]
    metrics = client.get("/metrics").text
    assert "archiver_http_requests_total" in metrics and "archiver_capture_jobs" in metrics
    assert json.loads(client.get("/healthz").text) == {"status": "ok"}


def test_a_failed_verification_is_a_200_with_verified_false(web, site, archive: Archive) -> None:  # type: ignore[no-untyped-def]
    client, tok = web
    rid = capture(client, tok["capturer"], site.base_url + "/plain")["record_id"]
    blob = archive.blobs.path(archive.artifact_sha256(rid, "text"))
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes() + b"tampered\n")
    r = client.post(f"/api/v1/records/{rid}/verify", headers=auth(tok["capturer"]))
    assert r.status_code == 200 and r.json()["verified"] is False and r.json()["ok"] is False
    assert "artifact.text" in [c["name"] for c in r.json()["checks"] if c["status"] == "FAIL"]
    # the page's Verify now reads the same answer; the metric counts it
    assert 'archiver_verifications_total{result="fail"} 1' in client.get("/metrics").text
