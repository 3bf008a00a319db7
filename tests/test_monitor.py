"""Watching documents: change detection on normalised text, versions, section diffs, clause history."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.demo.server import QuietHTTPServer, SampleSite
from archiver.errors import UsageError
from archiver.monitor import parse_interval

from .conftest import STATE


@pytest.fixture(autouse=True)
def _reset_state() -> None:
    STATE.update(policy=1, vanishing=1)


def test_one_clause_change_is_detected_and_named(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    url = site.base_url + "/policy"
    assert cli("watch", "add", url, "--every", "1d", "--entity", "Example Inc.", "--document", "Privacy Policy",
               *s).code == 0
    r = cli("watch", "run", "--json", *s)
    assert r.code == 10 and json.loads(r.out)["counts"] == {"new": 1}  # first capture: a new document
    r = cli("watch", "run", "--json", *s)
    assert r.code == 0 and json.loads(r.out)["counts"] == {"unchanged": 1}
    STATE["policy"] = 2
    r = cli("watch", "run", "--json", *s)
    assert r.code == 10
    res = json.loads(r.out)["results"][0]
    assert res["outcome"] == "changed" and res["sections"] == ["2. How we use information"]
    a, b = res["previous_record_id"], res["record_id"]
    assert archive.manifest(b).previous is not None and archive.manifest(b).previous.record_id == a
    r = cli("diff", a, b, "--sections", "--format", "json", *s)
    changes = [c for c in json.loads(r.out)["sections"] if c["status"] != "unchanged"]
    assert [(c["status"], c["heading_b"]) for c in changes] == [("changed", "2. How we use information")]
    text = cli("diff", a, b, "--sections", *s).out
    assert text.startswith("CHANGED   2. How we use information") and "+We use your information to provide, " \
        "improve and advertise" in text
    html = cli("diff", a, b, "--format", "html", "--sections", *s).out
    assert "<ins>" in html and "<del>" in html and "<script" not in html
    hist = json.loads(cli("history", url, "--json", *s).out)
    assert len(hist["versions"]) == 2 and hist["changes"] == 1
    assert len(hist["versions"][0]["record_ids"]) == 2  # the unchanged run verified version 1
    cl = {c["heading"]: c for c in json.loads(cli("clauses", b, "--json", *s).out)}
    assert cl["2. How we use information"]["changes"] == 1
    assert all(c["changes"] == 0 for h, c in cl.items() if h != "2. How we use information")
    one = json.loads(cli("history", url, "--clause", "How we use information", "--json", *s).out)
    assert one["changes"] == 1 and len(one["history"]) == 3


def test_markup_noise_is_not_a_change(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    url = site.base_url + "/noisy"
    cli("watch", "add", url, *s)
    cli("watch", "run", *s)
    r = cli("watch", "run", "--json", *s)
    assert r.code == 0 and json.loads(r.out)["counts"] == {"unchanged": 1}
    recs = archive.list(url=url)
    assert len(recs) == 2 and recs[0].content_sha256 != recs[1].content_sha256  # bytes differ, text does not
    assert len(json.loads(cli("history", url, "--json", *s).out)["versions"]) == 1


def test_removed_policy_is_a_version_and_failures_do_not_stop_others(archive: Archive, site: SampleSite,
                                                                    cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/policy"
    for u in (site.base_url + "/vanishing", dead, site.base_url + "/plain"):
        assert cli("watch", "add", u, *s).code == 0
    cli("watch", "run", *s)
    STATE["vanishing"] = 2
    r = cli("watch", "run", "--json", *s)
    by = {x["url"]: x for x in json.loads(r.out)["results"]}
    gone = by[site.base_url + "/vanishing"]
    assert gone["outcome"] == "changed" and gone["status"] == 410
    assert by[dead]["outcome"] == "failed" and "refused" in by[dead]["error"].lower()
    assert by[site.base_url + "/plain"]["outcome"] == "unchanged"
    hist = json.loads(cli("history", site.base_url + "/vanishing", "--json", *s).out)
    assert [v["status"] for v in hist["versions"]] == [200, 410]


def test_hundred_watches_bounded_and_one_failure(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    for i in range(100):
        archive.catalog.add_watch(f"{site.base_url}/plain?w={i}", None, None, 86400, '{"allow_private": true}',
                                  "2026-01-01T00:00:00.000Z")
    archive.catalog.add_watch("http://127.0.0.1:9/x", None, None, 86400, '{"allow_private": true}',
                              "2026-01-01T00:00:00.000Z")
    r = cli("watch", "run", "-j", "8", "--json", "--store", str(archive.root))
    counts = json.loads(r.out)["counts"]
    assert counts == {"new": 100, "failed": 1}
    r = cli("watch", "run", "--due", "--json", "--store", str(archive.root))
    assert json.loads(r.out)["counts"] == {}  # nothing is due again within a day


def test_concurrent_runs_do_not_double_capture(archive: Archive, site: SampleSite) -> None:
    from archiver.monitor import run_lock, run_watches

    archive.catalog.add_watch(site.base_url + "/plain", None, None, 60, '{"allow_private": true}', "x")
    from concurrent.futures import ThreadPoolExecutor

    with run_lock(archive) as held:
        assert held
        with ThreadPoolExecutor(1) as pool:  # another process's view of the store: its own connection
            summary = pool.submit(run_watches, Archive.open(archive.root), passphrase=lambda: None,
                                  actor="tester").result()
    assert summary.skipped and summary.results == () and archive.list() == []


def test_bad_watch_input(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    for bad in ("0d", "1 fortnight", "-5m", ""):
        with pytest.raises(UsageError):
            parse_interval(bad)
    assert cli("watch", "add", site.base_url + "/plain", "--every", "soon", *s).code == 2
    assert cli("watch", "add", site.base_url + "/plain", *s).code == 0
    r = cli("watch", "add", site.base_url + "/plain", *s)
    assert r.code == 2 and "already watched" in r.err
    assert cli("watch", "add", "ftp://example.org/x", *s).code == 2
    a = archive.capture(site.base_url + "/plain")
    b = archive.capture(site.base_url + "/terms.pdf")
    r = cli("diff", a.record_id, b.record_id, *s)
    assert r.code == 0 and "different URLs" in r.err


def test_webhook_notification(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    got: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = QuietHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        s = ["--store", str(archive.root)]
        cli("watch", "add", site.base_url + "/policy", *s)
        r = cli("watch", "run", "--notify-url", f"http://127.0.0.1:{httpd.server_address[1]}/hook", *s)
        assert r.code == 10 and "notification: sent" in r.out
        assert json.loads(got[0])["counts"] == {"new": 1}
    finally:
        httpd.shutdown()
        httpd.server_close()
    # a dead webhook never loses the capture
    r = cli("watch", "run", "--notify-url", "http://127.0.0.1:9/hook", "--json", *s)
    assert r.code == 0 and json.loads(r.out)["notified"].startswith("failed")
    assert len(archive.list()) == 2


def test_sections_on_real_corpus_versions() -> None:
    """Consecutive real policy versions: sections split and diff without crashing, most unchanged."""
    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    if not corpus.is_dir():
        pytest.skip("../shared/corpus is not beside this checkout")
    from archiver.textdiff import diff_sections, split_sections

    mds = sorted(corpus.rglob("*.md"))
    by_doc: dict[Path, list[Path]] = {}
    for p in mds:
        if p.name.lower() != "readme.md":
            by_doc.setdefault(p.parent, []).append(p)
    pairs = [(v[0], v[1]) for v in by_doc.values() if len(v) >= 2]
    if not pairs:
        pytest.skip("no consecutive Markdown versions found in the corpus")
    focused = 0
    for old, new in pairs:
        a = split_sections(old.read_text("utf-8"))
        b = split_sections(new.read_text("utf-8"))
        changes = diff_sections(a, b)
        assert len(a) >= 1 and len(b) >= 1
        assert {c.status for c in changes} <= {"added", "removed", "changed", "moved", "unchanged"}
        unchanged = sum(c.status == "unchanged" for c in changes)
        if len(changes) >= 10 and unchanged >= 0.9 * len(changes) and unchanged < len(changes):
            focused += 1  # a real revision pinned to a few clauses of a long policy
    assert focused >= 2
