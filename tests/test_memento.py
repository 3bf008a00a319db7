"""Memento (issue 29, item 6): the TimeGate and TimeMap of an original URL over public records only.

memento-client (the PyPI client of the Memento project) finds the public record nearest a datetime
through our TimeGate on a real server (uvicorn on 127.0.0.1); the TimeMap is application/link-format
with every public memento and its datetime; a private record never appears, and a URL with private
records only answers byte for byte as a URL never captured; bad input is a one-line 400."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archiver import memento
from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.web import create_app

mc_mod = pytest.importorskip("memento_client")
NOPASS = lambda: None  # noqa: E731  (the test store's key has no passphrase)


def _at(summary_time: str) -> dt.datetime:
    return dt.datetime.fromisoformat(summary_time.replace("Z", "+00:00"))


@pytest.fixture()
def three(archive: Archive, site: SampleSite) -> dict[str, Any]:
    """Three captures of one URL, each in its own second; the first and last public, the middle private."""
    url = site.base_url + "/plain"
    ids = []
    for i in range(3):
        if i:
            time.sleep(1.05)
        ids.append(archive.capture(url).record_id)
    archive.publications.publish([ids[0], ids[2]], actor="tester", passphrase=NOPASS)
    times = {rid: _at(archive.resolve(rid).captured_at) for rid in ids}
    return {"url": url, "ids": ids, "times": times}


@pytest.fixture()
def client(archive: Archive) -> Iterator[TestClient]:
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://testserver") as c:
        yield c
    app.state.web.runner.shutdown(wait=True)


def test_memento_client_finds_the_public_memento_nearest_a_datetime(archive: Archive, three: dict[str, Any]) -> None:
    from tests.live_server import LiveServer

    first, private, last = three["ids"]
    times = three["times"]
    with LiveServer(create_app(archive, start_jobs=False)) as srv:
        client = mc_mod.MementoClient(timegate_uri=srv.base_url + "/timegate/", check_native_timegate=False)
        for asked, want in ((times[first] - dt.timedelta(days=30), first),
                            (times[first] + dt.timedelta(milliseconds=300), first),
                            (times[last] + dt.timedelta(days=1), last)):
            info = client.get_memento_info(three["url"], asked.replace(tzinfo=None))
            closest = info["mementos"]["closest"]
            assert closest["uri"] == [f"{srv.base_url}/r/{want}"], (asked, info)
            assert closest["datetime"] == times[want].replace(tzinfo=None, microsecond=0)
            assert info["mementos"]["first"]["uri"] == [f"{srv.base_url}/r/{first}"]
            assert info["mementos"]["last"]["uri"] == [f"{srv.base_url}/r/{last}"]
        # asked at the private record's own second: a public neighbour answers, never the private one
        info = client.get_memento_info(three["url"], times[private].replace(tzinfo=None))
        assert info["mementos"]["closest"]["uri"][0] in (f"{srv.base_url}/r/{first}", f"{srv.base_url}/r/{last}")
        assert private not in repr(info)


def test_timegate_redirects_with_vary_and_links(client: TestClient, three: dict[str, Any]) -> None:
    first, _, last = three["ids"]
    asked = memento.http_date(three["times"][first] + dt.timedelta(seconds=0.2))
    r = client.get(f"/timegate/{three['url']}", headers={"Accept-Datetime": asked}, follow_redirects=False)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == f"http://testserver/r/{first}"
    assert r.headers["vary"] == "accept-datetime"
    links = mc_mod.MementoClient.parse_link_header(r.headers["link"])
    assert links[three["url"]]["rel"] == ["original"]
    assert "timemap" in links[f"http://testserver/timemap/link/{three['url']}"]["rel"]
    assert set(links[f"http://testserver/r/{first}"]["rel"]) == {"first", "memento"}
    assert links[f"http://testserver/r/{first}"]["datetime"] == [memento.http_date(three["times"][first])]
    # no Accept-Datetime: the most recent memento (RFC 7089 §4.1.1); HEAD answers the same
    r = client.head(f"/timegate/{three['url']}", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == f"http://testserver/r/{last}"


def test_timemap_lists_only_public_records_with_datetimes(archive: Archive, client: TestClient,
                                                          three: dict[str, Any]) -> None:
    first, private, last = three["ids"]
    r = client.get(f"/timemap/link/{three['url']}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/link-format")
    assert private not in r.text
    links = mc_mod.MementoClient.parse_link_header(r.text.replace("\n", ""))
    mems = {u: v for u, v in links.items() if "memento" in v["rel"]}
    assert list(mems) == [f"http://testserver/r/{first}", f"http://testserver/r/{last}"]
    for rid in (first, last):
        assert mems[f"http://testserver/r/{rid}"]["datetime"] == [memento.http_date(three["times"][rid])]
    self_link = next(v for v in links.values() if "self" in v["rel"])
    assert self_link["type"] == ["application/link-format"]
    assert self_link["from"] == [memento.http_date(three["times"][first])]
    assert self_link["until"] == [memento.http_date(three["times"][last])]
    assert any("timegate" in v["rel"] for v in links.values())
    # with web.public_url set, every memento is its permalink (what a citation carries)
    archive.config.set("web.public_url", "https://evidence.example.org/")
    text = client.get(f"/timemap/link/{three['url']}").text
    assert f"<https://evidence.example.org/r/{first}>" in text and "testserver" not in text
    # unpublishing takes a record out at once
    archive.publications.unpublish([first], reason="sealed", actor="tester", passphrase=NOPASS)
    text = client.get(f"/timemap/link/{three['url']}").text
    assert first not in text and last in text


def _answer(r: Any) -> tuple[int, bytes, list[tuple[str, str]]]:
    return r.status_code, r.content, sorted((k, v) for k, v in r.headers.items() if k not in ("date",))


def test_a_url_with_private_records_only_answers_like_an_unknown_url(archive: Archive, site: SampleSite,
                                                                     client: TestClient) -> None:
    private_url = site.base_url + "/chunked"
    rid = archive.capture(private_url).record_id
    unknown = site.base_url + "/never-captured"
    for route in ("/timegate/", "/timemap/link/"):
        for headers in ({}, {"Accept-Datetime": "Thu, 01 Jan 2026 00:00:00 GMT"}):
            a = client.get(route + private_url, headers=headers, follow_redirects=False)
            b = client.get(route + unknown, headers=headers, follow_redirects=False)
            assert a.status_code == 404, a.text
            assert _answer(a) == _answer(b)
            assert rid not in a.text
    # published, it appears; unpublished again, the answer is the unknown URL's once more
    archive.publications.publish([rid], actor="tester", passphrase=NOPASS)
    assert client.get("/timemap/link/" + private_url).status_code == 200
    archive.publications.unpublish([rid], reason="by mistake", actor="tester", passphrase=NOPASS)
    assert _answer(client.get("/timemap/link/" + private_url)) == _answer(client.get("/timemap/link/" + unknown))


@pytest.mark.parametrize(("path", "headers", "words"), [
    ("/timegate/http://example.org/a%20b", {}, "white space"),
    ("/timegate/http://example.org/a%23top", {}, "fragment"),
    ("/timemap/link/http://example.org/page%23s2", {}, "fragment"),
    ("/timemap/link/http://example.org/a%09b", {}, "white space"),
    ("/timegate/ftp://example.org/", {}, "not an absolute http(s) URL"),
    ("/timegate/example.org/page", {}, "not an absolute http(s) URL"),
    ("/timegate/http://example.org/", {"Accept-Datetime": "yesterday"}, "Accept-Datetime"),
    ("/timegate/http://example.org/", {"Accept-Datetime": "2026-01-01T00:00:00Z"}, "Accept-Datetime"),
])
def test_bad_input_is_a_one_line_400(client: TestClient, path: str, headers: dict[str, str], words: str) -> None:
    r = client.get(path, headers=headers, follow_redirects=False)
    assert r.status_code == 400, (path, r.status_code, r.text)
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert words in body["detail"] and "\n" not in body["detail"], body


def test_memento_headers_of_a_record_page(archive: Archive, site: SampleSite, client: TestClient) -> None:
    """The helper the public record page calls: Memento-Datetime and the Link of a URI-M; its TimeGate
    link leads back to the record, query string included."""
    url = site.base_url + "/plain?lang=en"
    s = archive.resolve(archive.capture(url).record_id)
    h = memento.memento_headers(s, "https://evidence.example.org/")
    assert h["Memento-Datetime"] == memento.http_date(_at(s.captured_at))
    assert h["Memento-Datetime"].endswith(" GMT")
    links = mc_mod.MementoClient.parse_link_header(h["Link"])
    assert links[url]["rel"] == ["original"]
    assert links[f"https://evidence.example.org/r/{s.record_id}"] == {"rel": ["memento"],
                                                                     "datetime": [h["Memento-Datetime"]]}
    assert links[f"https://evidence.example.org/timemap/link/{url}"]["type"] == ["application/link-format"]
    assert "timegate" in links[f"https://evidence.example.org/timegate/{url}"]["rel"]
    archive.publications.publish([s.record_id], actor="tester", passphrase=NOPASS)
    tg = memento.Endpoints("", url).timegate
    r = client.get(tg, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].endswith(f"/r/{s.record_id}"), (tg, r.text)
    # without the query it is another URL
    assert client.get(memento.Endpoints("", site.base_url + "/plain").timegate).status_code == 404
    # an original whose path holds an escape: the link escapes it once more, the server decodes it once
    ep = memento.Endpoints("https://e.example", "http://a.example/Privacy%20Policy.pdf?x=%20")
    assert ep.timegate == "https://e.example/timegate/http://a.example/Privacy%2520Policy.pdf?x=%20"
