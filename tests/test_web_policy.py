"""Web foundations: imports inside web/, deny by default, headers by policy, pure reads, one custody
event per act whichever front-end performs it."""

from __future__ import annotations

import ast
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient

from archiver.access import create_token
from archiver.api import Archive
from archiver.options import CaptureOptions
from archiver.web import create_app
from archiver.web.deps import Access, Kind, Policy, policies
from tests.conftest import HTML

WEB = Path(__file__).resolve().parent.parent / "archiver" / "web"


# ---- imports inside web/ -------------------------------------------------------------------------
def web_imports() -> dict[str, set[str]]:
    """Module -> the archiver.web modules it imports (at any depth of the file, TYPE_CHECKING included)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(WEB.glob("*.py")):
        mod = path.stem
        graph[mod] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                parts = n.split(".")
                if parts[:2] == ["archiver", "web"] and len(parts) > 2 and (WEB / f"{parts[2]}.py").exists():
                    graph[mod].add(parts[2])
        graph[mod].discard(mod)
    return graph


def routers() -> set[str]:
    return {p.stem for p in WEB.glob("*.py") if "APIRouter(" in p.read_text("utf-8")}


def import_problems(graph: dict[str, set[str]], router_mods: set[str]) -> list[str]:
    problems = []
    for mod in sorted(router_mods):
        for dep in sorted(graph.get(mod, ())):
            if dep in router_mods or dep in ("app", "serve", "__init__", "__main__"):
                problems.append(f"router {mod} imports {dep} (routers import only deps and the library)")
    # a cycle: depth-first search with colours
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        colour[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if colour.get(d) == 1:
                problems.append("import cycle: " + " -> ".join([*stack[stack.index(d):], d]))
            elif d not in colour:
                visit(d)
        stack.pop()
        colour[m] = 2

    for m in sorted(graph):
        if m not in colour:
            visit(m)
    return problems


def test_web_has_no_import_cycle_and_routers_import_only_deps() -> None:
    graph = web_imports()
    assert {"api", "pages"} <= routers()
    assert import_problems(graph, routers()) == []
    assert graph["deps"] <= {"security", "metrics", "uploads", "bundlework"}, graph["deps"]


def test_the_import_check_finds_a_cycle_and_a_router_importing_a_router() -> None:
    graph = web_imports()
    graph["api"] = graph["api"] | {"pages"}
    graph["deps"] = graph["deps"] | {"app"}
    found = import_problems(graph, routers())
    assert "router api imports pages (routers import only deps and the library)" in found
    assert any(p.startswith("import cycle:") and "deps" in p for p in found), found


# ---- deny by default -----------------------------------------------------------------------------
def undeclared(app: FastAPI) -> list[tuple[str, list[str]]]:
    """Every route and mount of the app (included routers and static mounts too) without a policy."""
    return [(path, sorted(methods)) for path, methods, pol in policies(app.routes) if pol is None]


@pytest.fixture()
def app(archive: Archive) -> Iterator[FastAPI]:
    made = create_app(archive, start_jobs=False)
    yield made
    made.state.web.runner.shutdown(wait=True)


def test_every_route_declares_a_policy(app: FastAPI) -> None:
    walked = policies(app.routes)
    assert len(walked) >= 40
    assert {p for p, _, _ in walked} >= {"/static", "/api/docs/assets", "/api/openapi.json", "/api/docs", "/"}
    assert undeclared(app) == []


def test_a_route_or_mount_added_without_a_policy_is_reported(app: FastAPI) -> None:
    @app.get("/api/v1/secret")
    def secret() -> dict[str, str]:
        return {"everything": "here"}

    app.mount("/files", StaticFiles(directory=WEB / "static"), name="files")
    assert undeclared(app) == [("/api/v1/secret", ["GET"]), ("/files", ["GET"])]
    # a route declares its policy by its guard, which enforces it: an attribute alone does not count,
    # and a mount (which enforces nothing) can only be declared public
    from archiver.web.deps import declare

    secret_route = next(r for r in app.routes if getattr(r, "path", "") == "/api/v1/secret")
    secret_route.archiver_policy = Policy(Access.ADMIN, Kind.API)
    assert ("/api/v1/secret", ["GET"]) in undeclared(app)
    with pytest.raises(ValueError, match="cannot enforce"):
        declare(StaticFiles(directory=WEB / "static"), Policy(Access.VIEWER, Kind.STATIC))


def test_headers_come_from_the_policy(archive: Archive, site: Any, app: FastAPI) -> None:
    viewer = create_token(archive, "v", "viewer", actor="tester").token
    rid = archive.capture(site.base_url + "/hostile").record_id
    h = {"Authorization": f"Bearer {viewer}"}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        page = client.get(f"/records/{rid}", headers=h)
        api = client.get(f"/api/v1/records/{rid}", headers=h)
        dl = client.get(f"/api/v1/records/{rid}/artifacts/content", headers=h)
        css = client.get("/static/app.css")
    assert page.status_code == api.status_code == dl.status_code == css.status_code == 200
    for r in (page, api, dl, css):
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'")
    assert css.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    assert dl.headers["content-security-policy"].startswith("sandbox")
    assert dl.headers["content-disposition"].startswith("attachment;")
    # a download route cannot forget: the policy adds what the route left out
    from starlette.responses import Response

    from archiver.web.deps import security_headers

    bare = Response(b"<script>alert(1)</script>", media_type="text/html")
    security_headers(Policy(Access.VIEWER, Kind.DOWNLOAD), bare)
    assert bare.headers["content-disposition"] == "attachment"
    assert bare.headers["content-security-policy"].startswith("sandbox")


# ---- reads are pure ------------------------------------------------------------------------------
class Writes:
    """Commits to the SQLite catalog (from any connection) and lines of the custody log."""

    def __init__(self, root: Path) -> None:
        self.db = sqlite3.connect(root / "catalog.sqlite3")
        self.log = root / "custody.log"

    def now(self) -> tuple[int, list[str]]:
        version = int(self.db.execute("PRAGMA data_version").fetchone()[0])
        return version, self.log.read_text("utf-8").splitlines()


def concrete(path: str, rid: str, job: str, url: str) -> str:
    return (path.replace("{record_id}", rid).replace("{a}", rid).replace("{b}", rid).replace("{job}", job)
            .replace("{name}", "content").replace("{path:path}", url).replace("{collection}", "exhibits")
            .replace("{matter}", "m1"))


QUERIES = {"/api/v1/lookup": {"sha256": "HTML"}, "/api/v1/history": {"url": "URL"},
           "/clause": {"url": "URL", "clause": "CLAUSE"}, "/verify": {"sha256": "HTML"},
           "/api/v1/records/{record_id}/citation": {"style": "record"},
           "/api/v1/search": {"q": "privacy"}, "/search": {"q": "privacy"}}


def get_routes(app: FastAPI) -> list[tuple[str, Policy]]:
    out = []
    for path, methods, pol in policies(app.routes):
        assert pol is not None, path
        if "GET" in methods:
            out.append((path, pol))
    return out


@pytest.mark.parametrize("public_verify", [False, True])
def test_no_get_writes_the_catalog_or_custody(archive: Archive, site: Any, public_verify: bool) -> None:
    """Every GET route, with real IDs, as an admin (and anonymously where its policy allows): the catalog
    sees no commit; custody gains nothing, except the one event a route declares (a whole download is a
    ``get``, the page's bundle link an ``export``)."""
    import hashlib

    from archiver.alerts.feeds import watch_key

    admin = create_token(archive, "boss", "admin", actor="tester").token
    # /log/… answers 200 (a signed checkpoint, so a log key); the records below are newer than it, so a
    # GET that exported them with a new checkpoint would write the catalog
    archive.config.set("log.public", "true")
    archive.capture(site.base_url + "/plain?before=log")
    tile = f"/log/tile/0/000.p/{archive.log.checkpoint(stamp=False).size}"
    m = archive.capture(site.base_url + "/chunked", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    archive.capture(site.base_url + "/chunked", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    archive.verify(m.record_id)  # a cached result exists, as on a running server
    from archiver.monitor import add_watch

    add_watch(archive, site.base_url + "/chunked", entity=None, document=None, every="1d", actor="tester")
    app = create_app(archive, public_verify=public_verify, start_jobs=False)
    from archiver.monitor import clauses

    clause = clauses(archive, m.record_id)[0].key
    archive.publications.publish([m.record_id], actor="tester", passphrase=lambda: None)  # /r/… answers 200
    archive.collections.create("exhibits", actor="tester")  # /c/exhibits… answers 200
    archive.collections.add("exhibits", [m.record_id], actor="tester", passphrase=lambda: None)
    archive.collections.publish("exhibits", actor="tester", passphrase=lambda: None)
    archive.derive([m.record_id], passphrase=lambda: None, actor="tester")  # main-text, for a provision
    provision = archive.provisions.add(m.record_id, "We use your information to provide and improve the service.",
                                       actor="tester").provision_id  # /provisions/<PID> answers 200
    from archiver import matters

    matters.create(archive, "m1", actor="tester")  # /matters/m1… answers 200
    matters.add(archive, "m1", [m.record_id], actor="tester")
    watch = Writes(archive.root)
    sha = hashlib.sha256(HTML).hexdigest()
    seen = 0
    with TestClient(app, base_url="http://127.0.0.1") as client:
        job = client.post("/api/v1/captures", json={"url": site.base_url + "/plain"},
                          headers={"Authorization": f"Bearer {admin}"}).json()["job"]
        deadline = time.monotonic() + 30
        while client.get(f"/api/v1/captures/{job}", headers={"Authorization": f"Bearer {admin}"}).json()[
                "status"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
        for path, pol in get_routes(app):
            url = {"/static": "/static/app.css", "/api/docs/assets": "/api/docs/assets/swagger-ui.css",
                   "/log/tile/{rest:path}": tile, "/feeds/entity/{name}.atom": "/feeds/entity/Example%20Inc..atom",
                   "/feeds/watch/{key}.atom": f"/feeds/watch/{watch_key(site.base_url + '/chunked')}.atom"}.get(
                path, concrete(path, m.record_id, job, site.base_url + "/chunked").replace("{provision_id}", provision))
            params = {k: {"HTML": sha, "URL": site.base_url + "/chunked", "CLAUSE": clause}.get(v, v)
                      for k, v in QUERIES.get(path, {}).items()}
            who = [{"Authorization": f"Bearer {admin}"}]
            if pol.access.role(public_verify) is None:
                who.append({})
            for headers in who:
                before = watch.now()
                r = client.get(url, params=params, headers=headers, follow_redirects=False)
                # (a screenshot needs a browser capture: the 404 still goes through the route's reads)
                assert r.status_code == 200 or path.endswith("screenshot.png") or (
                    path.startswith("/timegate/") and r.status_code == 302), (path, headers, r.status_code,
                                                                                 r.text[:200])
                after = watch.now()
                assert after[0] == before[0], f"GET {path} wrote the catalog"
                added = after[1][len(before[1]):]
                expected = [pol.logs] if pol.logs else []
                assert [__import__("json").loads(x)["event"] for x in added] == expected, (path, added)
                seen += 1
    app.state.web.runner.shutdown(wait=True)
    assert seen >= 25


def test_public_verify_looks_up_without_rehashing_and_is_rate_limited(archive: Archive, site: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    m = archive.capture(site.base_url + "/chunked")
    sha = hashlib.sha256(HTML).hexdigest()
    calls: list[str] = []
    real = Archive.verify

    def counting(self: Archive, record_id: str, **kw: Any) -> Any:
        calls.append(record_id)
        return real(self, record_id, **kw)

    monkeypatch.setattr(Archive, "verify", counting)
    app = create_app(archive, public_verify=True, start_jobs=False, public_lookups_per_minute=3)
    watch = Writes(archive.root)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        before = watch.now()
        first = client.get("/verify", params={"sha256": sha})
        assert first.status_code == 200 and m.record_id in first.text and "NOT VERIFIED YET" in first.text
        assert watch.now() == before and calls == []
        up = client.post("/verify", files={"file": ("policy.html", HTML, "text/html")})
        assert up.status_code == 200 and m.record_id in up.text and calls == [] and watch.now() == before
        codes = [client.get("/verify", params={"sha256": sha}).status_code for _ in range(3)]
        assert codes[:1] == [200] and codes[-1] == 429
        assert client.get("/verify").status_code == 200  # the empty form is not a lookup
        # an explicit verification (capturer, POST) refreshes the cache that the lookup shows
        cap = create_token(archive, "cap", "capturer", actor="tester").token
        assert client.post(f"/api/v1/records/{m.record_id}/verify",
                           headers={"Authorization": f"Bearer {cap}"}).json()["verified"] is True
        assert calls == [m.record_id]
        shown = client.get("/verify", params={"sha256": sha}, headers={"Authorization": f"Bearer {cap}"})
        assert shown.status_code == 200 and "VERIFIED" in shown.text and "NOT VERIFIED YET" not in shown.text
    app.state.web.runner.shutdown(wait=True)


def test_background_refresh_verifies_the_stalest_records_a_few_at_a_time(archive: Archive, site: Any) -> None:
    from archiver.jobs import refresh_verifications
    from store.search import cached_verifications, verification_queue

    ids = [archive.capture(site.base_url + f"/plain?n={i}").record_id for i in range(3)]
    archive.verify(ids[0], log=False)
    assert verification_queue(archive.catalog, 3)[-1] == ids[0]  # never verified first
    lines = len((archive.root / "custody.log").read_text().splitlines())
    assert refresh_verifications(archive, 2) == 2
    assert set(cached_verifications(archive.catalog, ids)) == set(ids)
    assert len((archive.root / "custody.log").read_text().splitlines()) == lines  # a cache, not an act
    # the server runs it on its job pool: a fresh record is verified within a few rounds
    late = archive.capture(site.base_url + "/plain?n=late").record_id
    app = create_app(archive, refresh_every=0.05, refresh_batch=1)
    deadline = time.monotonic() + 20
    while late not in cached_verifications(archive.catalog, [late]) and time.monotonic() < deadline:
        time.sleep(0.05)
    app.state.web.runner.shutdown(wait=True)
    assert cached_verifications(archive.catalog, [late])[late].ok


# ---- one custody event per act -------------------------------------------------------------------
def events_since(archive: Archive, n: int) -> list[tuple[str, str]]:
    return [(e.event, e.actor) for e in list(archive.custody.entries())[n:]]


def test_cli_page_and_api_log_the_same_event_for_the_same_act(archive: Archive, site: Any, cli: Any,
                                                               tmp_path: Path) -> None:
    """watch add/remove, certificate, get/download, export, verify: the same event from each front-end,
    named for who acted (the operator on the command line, the token on the web)."""
    cap = create_token(archive, "cap", "capturer", actor="tester").token
    rid = archive.capture(site.base_url + "/plain").record_id
    store = ["--store", str(archive.root)]
    h = {"Authorization": f"Bearer {cap}"}
    op = archive.operator().name
    app = create_app(archive, start_jobs=False)
    acts: dict[str, dict[str, list[tuple[str, str]]]] = {}

    def act(name: str, front: str, fn: Any) -> None:
        n = len(list(archive.custody.entries()))
        fn()
        acts.setdefault(name, {})[front] = [e for e in events_since(archive, n) if e[0] != "verify"
                                            or name == "verify"]

    def ok(r: Any) -> None:
        assert r.status_code < 400, r.text[:200]

    def run(*args: str) -> None:
        assert cli(*args, *store).code == 0

    with TestClient(app, base_url="http://127.0.0.1") as client:
        w = "http://127.0.0.1:9/watched"
        act("watch add", "cli", lambda: run("watch", "add", w + "1"))
        act("watch add", "api", lambda: ok(client.post("/api/v1/watches", json={"url": w + "2"}, headers=h)))
        act("watch add", "page", lambda: ok(client.post("/watches", data={"url": w + "3"}, headers=h,
                                                         follow_redirects=False)))
        act("watch remove", "cli", lambda: run("watch", "remove", w + "1"))
        act("watch remove", "api", lambda: ok(client.delete("/api/v1/watches", params={"url": w + "2"},
                                                             headers=h)))
        act("watch remove", "page", lambda: ok(client.post("/watches/remove", data={"url": w + "3"}, headers=h,
                                                            follow_redirects=False)))
        act("certificate", "cli", lambda: run("certificate", rid, "--declarant", "Jane Roe", "-f", "md", "-o",
                                              str(tmp_path / "c.md")))
        act("certificate", "api", lambda: ok(client.post("/api/v1/certificates", headers=h, json={
            "record_ids": [rid], "declarant": "Jane Roe", "format": "md"})))
        act("certificate", "page", lambda: ok(client.post(f"/records/{rid}/certificate", headers=h,
                                                           data={"declarant": "Jane Roe"})))
        act("get", "cli", lambda: run("get", rid, "content", "-o", str(tmp_path / "content.html")))
        act("get", "api", lambda: ok(client.get(f"/api/v1/records/{rid}/artifacts/content", headers=h)))
        act("export", "cli", lambda: run("export", rid, "-o", str(tmp_path / "e.wacz")))
        act("export", "api", lambda: ok(client.post("/api/v1/exports", json={"record_ids": [rid]}, headers=h)))
        act("export", "page", lambda: ok(client.get(f"/records/{rid}/bundle.wacz", headers=h)))
        act("verify", "cli", lambda: run("verify", rid))
        act("verify", "api", lambda: ok(client.post(f"/api/v1/records/{rid}/verify", headers=h)))
        act("publish", "cli", lambda: run("publish", rid))
        act("unpublish", "cli", lambda: run("unpublish", rid, "--reason", "r1"))
        act("publish", "api", lambda: ok(client.post(f"/api/v1/records/{rid}/publish", headers=h)))
        act("unpublish", "api", lambda: ok(client.post(f"/api/v1/records/{rid}/unpublish", headers=h,
                                                        json={"reason": "r2"})))
        act("publish", "page", lambda: ok(client.post(f"/records/{rid}/publish", headers=h,
                                                       follow_redirects=False)))
        act("unpublish", "page", lambda: ok(client.post(f"/records/{rid}/unpublish", headers=h,
                                                         data={"reason": "r3"}, follow_redirects=False)))
    app.state.web.runner.shutdown(wait=True)
    expected_event = {"watch add": "watch-add", "watch remove": "watch-remove", "certificate": "certificate",
                      "get": "get", "export": "export", "verify": "verify", "publish": "publish",
                      "unpublish": "unpublish"}
    for name, by_front in acts.items():
        for front, got in by_front.items():
            actor = op if front == "cli" else "cap"
            assert got == [(expected_event[name], actor)], (name, front, got)


def test_the_lookup_limiter_keeps_a_bounded_number_of_addresses() -> None:
    from archiver.errors import RateLimitError
    from archiver.web.security import RateLimiter

    lim = RateLimiter(2, what="hash lookups")
    lim.MAX_KEYS = 50
    for i in range(500):
        lim.take(f"10.0.{i // 256}.{i % 256}")
    assert len(lim._buckets) <= 50
    lim.take("192.0.2.1")
    lim.take("192.0.2.1")
    with pytest.raises(RateLimitError, match="too many hash lookups"):
        lim.take("192.0.2.1")


def test_the_record_page_shows_the_cached_verdict_and_verify_now_only_to_capturers(archive: Archive, site: Any,
                                                                                    app: FastAPI) -> None:
    rid = archive.capture(site.base_url + "/plain").record_id
    viewer = {"Authorization": f"Bearer {create_token(archive, 'v', 'viewer', actor='tester').token}"}
    cap = {"Authorization": f"Bearer {create_token(archive, 'c', 'capturer', actor='tester').token}"}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        first = client.get(f"/records/{rid}", headers=viewer).text
        assert "Not verified yet." in first and "Verify now" not in first
        assert "Verify now" in client.get(f"/records/{rid}", headers=cap).text
        assert client.post(f"/api/v1/records/{rid}/verify", headers=cap).status_code == 200
        later = client.get(f"/records/{rid}", headers=viewer).text
        assert "Last verified" in later and '<span class="badge ok">VERIFIED</span>' in later


def test_the_other_acts_log_one_event_each_naming_who_acted(stamped: Archive, site: Any, cli: Any,
                                                             tmp_path: Path) -> None:
    """The rest of the custody table in docs/architecture.md: capture (CLI, API, page; with its timestamp),
    token create/revoke (CLI, API), and the acts only the CLI offers (derive, wayback, import, keys)."""
    archive = stamped
    admin = create_token(archive, "boss", "admin", actor="tester").token
    h = {"Authorization": f"Bearer {admin}"}
    store = ["--store", str(archive.root)]
    op = archive.operator().name
    app = create_app(archive, workers=1)  # jobs run: a capture job is the token's act

    def run(*args: str) -> None:
        r = cli(*args, *store)
        assert r.code == 0, r.out + r.err

    def events(fn: Any) -> list[tuple[str, str]]:
        n = len(list(archive.custody.entries()))
        fn()
        return events_since(archive, n)

    def wait_job(r: Any) -> None:
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.get(r.json()["status_url"], headers=h).json()["status"] in ("done", "failed"):
                return
            time.sleep(0.05)
        raise AssertionError("capture job did not finish")

    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert events(lambda: run("capture", site.base_url + "/plain?cli")) == [("capture", op), ("timestamp", op)]
        assert events(lambda: wait_job(client.post("/api/v1/captures", headers=h,
                                                   json={"url": site.base_url + "/plain?api"}))) == [
            ("capture", "boss"), ("timestamp", "boss")]
        page = events(lambda: client.post("/capture", headers=h, data={"urls": site.base_url + "/plain?page"},
                                          follow_redirects=False))
        deadline = time.monotonic() + 60
        while len(page) < 2 and time.monotonic() < deadline:  # the page queues a job and redirects at once
            time.sleep(0.05)
            # (custody is appended just before the catalog's COMMIT: an entry may name a row not visible yet)
            page = [(e.event, e.actor) for e in archive.custody.entries() if e.record_id and "page" in
                    getattr(archive.catalog.get(e.record_id), "url", "")]
        assert page == [("capture", "boss"), ("timestamp", "boss")]
        assert events(lambda: run("tokens", "create", "t1", "--role", "viewer")) == [("token-create", op)]
        assert events(lambda: client.post("/api/v1/tokens", headers=h, json={"name": "t2", "role": "viewer"})) == [
            ("token-create", "boss")]
        assert events(lambda: run("tokens", "revoke", "t1")) == [("token-revoke", op)]
        assert events(lambda: client.delete("/api/v1/tokens/t2", headers=h)) == [("token-revoke", "boss")]
    app.state.web.runner.shutdown(wait=True)
    rid = archive.list(url=site.base_url + "/plain?cli")[0].record_id
    assert events(lambda: run("derive", rid)) == [("derived", op)]
    bundle = tmp_path / "b.wacz"
    run("export", rid, "-o", str(bundle))
    other, _ = Archive.init(tmp_path / "other", operator="Receiver")
    other.config.set("tsa.certs", archive.config.str_("tsa.certs"))
    from archiver.provenance.keys import key_id_of

    key = key_id_of(archive.keys.signing_public_key())
    n = len(list(other.custody.entries()))
    r = cli("import", str(bundle), "--trust-key", key, "--store", str(other.root))
    assert r.code == 0, r.out + r.err
    assert [(e.event, e.actor) for e in list(other.custody.entries())[n:]] == [("key-trust", "Receiver"),
                                                                             ("import", "Receiver")]
    assert events(lambda: run("keys", "generate", "--replace")) == [("key-generate", op), ("key-rotate", op)]
