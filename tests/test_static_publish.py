"""Static publishing (issue 29, item 7): `archiver publish --static OUT` writes the public side as
files; served by `python -m http.server` from a sub-path with no archiver process running, the index,
the collection page and the record pages work in Chromium (relative links only), the bundles
downloaded from it verify with `archiver verify` and `wacz validate`, and no private record is in any
file. Bad input (a non-empty OUT without --force, a private record, nothing named) is one line, exit 2,
and nothing is half-written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.options import BrowserOptions, CaptureOptions
from tests.services import free_port
from tests.test_bundle import WACZ

NOPASS = lambda: None  # noqa: E731  (the test store's key has no passphrase)
CHROMIUM = os.environ.get("ARCHIVER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def archiver_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "archiver.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture()
def published(archive: Archive, site: SampleSite) -> dict[str, Any]:
    """Public: a plain page and a browser capture (with a screenshot); private: a PDF. A published
    collection holds all three."""
    a = archive.capture(site.base_url + "/plain", CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    b = archive.capture(site.base_url + "/terms.pdf")
    browser = Path(CHROMIUM).exists()
    c = archive.capture(site.base_url + "/js-page", CaptureOptions(browser=BrowserOptions(timeout=20)) if browser
                        else CaptureOptions())
    ids = {"a": a.record_id, "b": b.record_id, "c": c.record_id}
    archive.publications.publish([ids["a"], ids["c"]], actor="tester", passphrase=NOPASS)
    cols = archive.collections
    cols.create("exhibits", title="Exhibits to the brief", actor="tester")
    cols.add("exhibits", [ids["c"], ids["b"], ids["a"]], actor="tester", passphrase=NOPASS)
    cols.publish("exhibits", actor="tester", passphrase=NOPASS)
    archive.config.set("web.public_url", "https://evidence.example.org")
    return {**ids, "browser": browser}


@pytest.fixture()
def http_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``python -m http.server`` over a directory: no archiver code runs in it."""
    root = tmp_path / "www"
    root.mkdir()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield root, base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _axe(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in Axe().run(page).response["violations"]
            if v.get("impact") in ("serious", "critical")]


def test_static_site_served_from_a_sub_path_works_in_chromium(archive: Archive, published: dict[str, Any],
                                                              http_server: tuple[Path, str], tmp_path: Path,
                                                              cli) -> None:  # type: ignore[no-untyped-def]
    pw_api = pytest.importorskip("playwright.sync_api")
    if not published["browser"]:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    a, b, c = published["a"], published["b"], published["c"]
    www, base = http_server
    out = www / "evidence"  # the site lives at /evidence/: a sub-path
    r = archiver_cmd("publish", "--static", str(out), "--all-public", "--store", str(archive.root))
    assert r.returncode == 0, r.stderr
    assert "wrote 2 record(s), 1 collection(s)" in r.stdout
    # nothing about the private record anywhere in the site, bundles included
    for f in out.rglob("*"):
        if f.is_file():
            assert b.encode() not in f.read_bytes(), f
    assert not [p for p in www.iterdir() if p.name != "evidence"]  # no temp directory left beside it
    site = base + "/evidence/"
    with pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(accept_downloads=True)
        assert page.goto(site).status == 200
        page.get_by_role("link", name="Exhibits to the brief").click()
        page.wait_for_load_state()
        assert page.url == site + "c/exhibits/"
        assert page.locator("h1").inner_text() == "Exhibits to the brief"
        items = page.locator("ol.collection > li")
        assert items.count() == 2 and a in items.nth(1).inner_text() and c in items.nth(0).inner_text()
        assert page.evaluate("getComputedStyle(document.querySelector('header.site')).display") != "inline"  # CSS
        assert _axe(page) == []
        with page.expect_download() as dl:
            page.get_by_role("link", name="Download exhibits.wacz").click()
        bundle = tmp_path / "exhibits.wacz"
        dl.value.save_as(bundle)
        page.locator(f'a[href="../../r/{a}/"]').click()
        page.wait_for_load_state()
        assert page.url == site + f"r/{a}/"
        text = page.locator("main").inner_text()
        assert archive.resolve(a).content_sha256 in text and f"https://evidence.example.org/r/{a}" in text
        assert _axe(page) == []
        # the browser capture's page shows its screenshot, loaded from the static host
        assert page.goto(site + f"r/{c}/").status == 200
        shot = page.locator("img.shot")
        assert shot.count() == 1 and page.evaluate("document.querySelector('img.shot').naturalWidth") > 0
        browser.close()
    # the downloaded bundle verifies, with archiver and with py-wacz
    r2 = cli("verify", str(bundle), "--store", str(archive.root))
    assert r2.code == 0, r2.out[-1500:]
    one = tmp_path / "one.wacz"
    one.write_bytes(requests.get(site + f"r/{a}/bundle.wacz", timeout=10).content)
    assert cli("verify", str(one), "--store", str(archive.root)).code == 0
    if WACZ.exists():
        for f in (bundle, one):
            v = subprocess.run([str(WACZ), "validate", "-f", str(f)], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=False)
            assert v.returncode == 0 and "valid" in v.stdout, v.stdout + v.stderr
    # the JSON twins and a TimeMap, as the static host serves them
    assert requests.get(site + f"r/{a}.json", timeout=10).json()["record_id"] == a
    assert [i["record_id"] for i in requests.get(site + "c/exhibits.json", timeout=10).json()["items"]] == [c, a]
    tm = next((out / "timemap").iterdir())
    assert "rel=\"original\"" in tm.read_text() and "memento" in tm.read_text()


def test_bad_input_is_one_line_and_writes_nothing(archive: Archive, published: dict[str, Any], tmp_path: Path,
                                                  cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for args, words in ((["publish", "--static", str(out), "--all-public"], "not empty"),
                        (["publish", "--static", str(tmp_path / "new")], "--all-public"),
                        (["publish", "--static", str(tmp_path / "new"), published["a"], "--all-public"], "not both"),
                        (["publish", published["a"], "--force"], "go with --static")):
        r = cli(*args, *s)
        assert r.code == 2, (args, r.code, r.err)
        assert words in r.err and "Traceback" not in r.err, r.err
        assert len([ln for ln in r.err.splitlines() if ln.strip() and "hint:" not in ln]) == 1, r.err
    # a private record is refused by the writer (a real child process): nothing made
    r = archiver_cmd("publish", "--static", str(tmp_path / "new"), published["a"], published["b"], *s)
    assert r.returncode == 2 and f"record {published['b']} is not public" in r.stderr, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip() and "hint:" not in ln]) == 1, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", "store"])
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    # --force replaces only an earlier export: a folder of someone's files is refused, nothing deleted
    r = archiver_cmd("publish", "--static", str(out), published["a"], "--force", *s)
    assert r.returncode == 2 and "not an earlier static export" in r.stderr and (out / "keep.txt").exists()
    from archiver.publication import STATIC_MARKER

    (out / STATIC_MARKER).write_text("an earlier export\n")  # as one would be: --force replaces it whole
    r = archiver_cmd("publish", "--static", str(out), published["a"], "--force", *s)
    assert r.returncode == 0, r.stderr
    assert not (out / "keep.txt").exists() and (out / "r" / published["a"] / "index.html").is_file()
    assert not (out / "r" / published["c"]).exists()  # only what was named
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", "store"])


def test_a_failure_while_writing_leaves_the_old_site_and_no_temp_dir(archive: Archive, published: dict[str, Any],
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from archiver.errors import StoreError
    from archiver.web import public, static_site

    out = tmp_path / "out"
    static_site.build(archive, out, None)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = []

    def failing(*args: Any, **kw: Any) -> Any:
        calls.append(args[1])
        if len(calls) == 2:
            raise StoreError("disk went away")
        return real(*args, **kw)
    real = public.render_record
    monkeypatch.setattr(public, "render_record", failing)
    with pytest.raises(StoreError):
        static_site.build(archive, out, None, force=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", "store"])


def test_static_replay_shows_the_captured_text_from_a_sub_path(archive: Archive, published: dict[str, Any],
                                                               http_server: tuple[Path, str], tmp_path: Path) -> None:
    """With ReplayWeb.page installed (`archiver replay setup`, here through the same fetch path the
    replay tests use), the static record page frames the static embed, which replays the captured
    page from the record's WACZ, all from a sub-path of a plain static server."""
    pw_api = pytest.importorskip("playwright.sync_api")
    if not published["browser"]:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from tests.test_replaywebpage import CACHE, replaywebpage

    assets = replaywebpage()
    archive.config.set("replay.cache_dir", str(CACHE))
    www, base = http_server
    out = www / "evidence"
    a = published["a"]
    r = archiver_cmd("publish", "--static", str(out), a, "--store", str(archive.root))
    assert r.returncode == 0 and "no replay" not in r.stdout, r.stdout + r.stderr
    for name in ("ui.js", "LICENSE", "package.json", "SOURCE.json"):
        assert (out / "replay" / "replaywebpage" / name).read_bytes() == assets.path(name).read_bytes()
    assert (out / "replay" / "replay" / "sw.js").read_bytes() == assets.path("sw.js").read_bytes()
    with pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        assert page.goto(f"{base}/evidence/r/{a}/").status == 200
        frame_el = page.locator("iframe.replay-frame")
        assert frame_el.get_attribute("sandbox") == "allow-scripts allow-same-origin"
        assert page.get_by_role("link", name="AGPL-3.0").get_attribute("href") == \
            "../../replay/replaywebpage/LICENSE"
        found = ""
        deadline = time.monotonic() + 40
        while not found and time.monotonic() < deadline:
            page.wait_for_timeout(250)
            for frame in page.frames:
                if "mp_/" not in frame.url:  # the replayed page itself, served by ReplayWeb.page's worker
                    continue
                try:
                    text = frame.evaluate("document.body ? document.body.innerText : ''")
                except pw_api.Error:
                    continue
                if "Privacy" in text:
                    found = text
        assert page.url == f"{base}/evidence/r/{a}/"  # the record page stayed where it was
        browser.close()
    assert found, "the captured page's text never appeared in the replay frame"


def test_force_never_replaces_the_store_or_a_directory_that_is_not_an_export(tmp_path: Path) -> None:
    """Review of issue 29, finding 1: `publish --static OUT --force` with OUT the folder holding the store
    deleted the store. Now --force replaces only an earlier static export; the store, a folder holding it
    or inside it, and a folder of someone's files are refused in one line, and nothing is deleted."""
    from archiver.errors import UsageError
    from archiver.publication import STATIC_MARKER, check_static_out

    store = tmp_path / "work" / "store"
    store.mkdir(parents=True)
    (store / "catalog.sqlite3").write_bytes(b"x")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for out in (tmp_path / "work", store, store / "sub", mine):
        with pytest.raises(UsageError):
            check_static_out(out, force=True, store_root=store)
    old = tmp_path / "site"
    old.mkdir()
    (old / STATIC_MARKER).write_text("x")
    (old / "index.html").write_text("old")
    check_static_out(old, force=True, store_root=store)  # an earlier export may be replaced
    assert (store / "catalog.sqlite3").exists() and (mine / "notes.txt").exists()
