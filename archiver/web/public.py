"""The public side: a published record's permalink page ``/r/<ID>``, its JSON twin, and its downloads.

Anyone may open these, with no login: they are what a court, the other side or a reader is given.
Three rules shape the module:

* **Nothing about private records.** A private record and an ID never issued get the same 404 (same
  status, headers and bytes), after the same one indexed query; the version list names only public
  records; custody shows the record's evidence events, never who downloaded or verified it.
* **Immutable apart from the verification line.** A record never changes, so a page is rendered once per
  (record, addenda, cached verification, settings) and served with a strong ETag (the SHA-256 of its
  bytes), ``If-None-Match`` answered 304, and caching headers a CDN can honour.
* **One rendering for the server and for static publishing.** :func:`render_record` returns the page's
  HTML and JSON for an ID, with the links a caller chooses (absolute for the server, relative for a
  static site), so ``publish --static`` writes the very bytes the server would send.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from archiver._version import __version__
from archiver.schema import plain
from archiver.web.deps import WEB_DIR, Access, Kind, guard, state
from archiver.web.security import page_csp

if TYPE_CHECKING:
    from archiver.api import Archive
    from archiver.evidence import ProvenanceReport
    from archiver.records import RecordSummary

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=WEB_DIR / "templates")
PublicPage = Annotated[None, Depends(guard(Access.PUBLIC, Kind.PAGE))]
PublicJson = Annotated[None, Depends(guard(Access.PUBLIC, Kind.API))]
PublicBytes = Annotated[None, Depends(guard(Access.PUBLIC, Kind.DOWNLOAD))]

#: the seeds' sentence under a Citation Record
PERMANENT = ("Permanent archival reference. Stable identifier suitable for legal filings, compliance "
             "documentation, and research citation.")
STYLES = (("record", "Record"), ("bluebook", "Bluebook"), ("apa", "APA"), ("chicago-note", "Chicago"),
          ("mla", "MLA"), ("csl-json", "CSL-JSON"), ("bibtex", "BibTeX"), ("ris", "RIS"))
#: A CDN may keep a page this long; the verification line is the only part that changes, and a
#: revalidation with the ETag costs a 304.
MAX_AGE = 300
NOT_FOUND_HTML = (b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title>"
                  b"</head><body><main><h1>Not found</h1><p>There is no public record at this address.</p>"
                  b"</main></body></html>\n")
NOT_FOUND_JSON = b'{"type":"https://archiver.invalid/problems/404","title":"Not found","status":404,' \
                 b'"detail":"no public record at this address"}\n'
_CACHE_BYTES = 96 << 20  # pages hold whole documents (~10-200 kB each); the disk cache keeps the rest


@dataclass(frozen=True, slots=True)
class Rendered:
    """A public record's page and JSON twin, with their strong ETags."""

    html: bytes
    json: bytes
    html_etag: str
    json_etag: str
    screenshot_sha256: str | None
    summary: RecordSummary  # the catalog row: a memento's headers come from it


def server_hrefs(rid: str, what: str) -> str:
    """Links as the server serves them (absolute paths on the app's origin)."""
    return {"self": f"/r/{rid}", "json": f"/r/{rid}.json", "bundle": f"/r/{rid}/bundle.wacz",
            "screenshot": f"/r/{rid}/screenshot.png", "static": "/static"}[what]


class _Renders:
    """Rendered pages by (store, key) (bounded LRU; each server process keeps its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], Rendered] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[Any, ...]) -> Rendered | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: tuple[Any, ...], value: Rendered) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old.html) + len(old.json)
            self._items[key] = value
            self._bytes += len(value.html) + len(value.json)
            while self._bytes > _CACHE_BYTES and len(self._items) > 1:
                _, gone = self._items.popitem(last=False)
                self._bytes -= len(gone.html) + len(gone.json)


_RENDERS = _Renders()


#: what a public page's bytes depend on, in two indexed queries: the record (its manifest, how many
#: addenda, its cached verification), whether it is public, and the newest publication anywhere (the
#: page lists the other public versions of its document)
_KEY_SQL = ("SELECT r.manifest_sha256, (SELECT COUNT(*) FROM addenda a WHERE a.record_id = r.record_id), v.time, "
            "v.ok FROM records r LEFT JOIN verifications v ON v.record_id = r.record_id WHERE r.record_id = ?")
_GEN_SQL = "SELECT MAX(seq) FROM outbox WHERE event IN ('publish', 'unpublish')"
#: the page says where the record is in the log under the latest checkpoint: a new checkpoint, a new page
_LOG_SQL = "SELECT MAX(size) FROM tlog_checkpoints"
_TEMPLATES = ("public_base.html", "public_record.html", "_replay.html")


def _template_stamp() -> str:
    """The templates' own bytes are part of what a page is: a new release re-renders, never serves old bytes."""
    h = hashlib.sha256(__version__.encode())
    for name in _TEMPLATES:
        path = WEB_DIR / "templates" / name
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


_STAMP = _template_stamp()


def page_key(archive: Archive, record_id: str, replay_url: str | None, scheme: str) -> str | None:
    """The hex key of a public record's rendering, or None when it is not public. Strong ETags are made
    from it, so a revalidation (304) costs these two queries and never a rendering."""
    from archiver.provenance.ids import is_canonical_record_id
    from archiver.publication import is_public_in

    if not is_canonical_record_id(record_id):
        return None
    with archive.catalog.reader() as d:  # one kept connection: a public page costs three index probes
        if not is_public_in(d, record_id):
            return None
        row = d.one(_KEY_SQL, (record_id,))
        gen = d.one(_GEN_SQL)
        cp = d.one(_LOG_SQL)
    if row is None:
        return None
    settings = tuple(archive.config.str_(k) for k in ("web.public_url", "operator.organization", "operator.name",
                                                       "cite.archive_base_url"))
    try:  # the page says whether its signer is trusted here: trusting or dropping a key changes the folder
        keyring = os.stat(archive.keys.keyring_dir).st_mtime_ns
    except OSError:
        keyring = 0
    raw = repr((_STAMP, record_id, tuple(row), gen[0] if gen else None, cp[0] if cp else None, settings, replay_url,
                scheme, keyring))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def render_record(archive: Archive, record_id: str, *, hrefs: Callable[[str, str], str] = server_hrefs,
                  replay_url: str | None = None, scheme: str = "server") -> Rendered | None:
    """The public page and JSON of ``record_id``, or None when it is not public (or unknown: the
    caller answers both alike). Kept by :func:`page_key` in memory and under ``<store>/public/pages/``
    (a cache: a record never changes, so a page is rendered once per key, also across restarts).
    ``scheme`` names the link scheme ``hrefs`` implements (part of the key)."""
    key = page_key(archive, record_id, replay_url, scheme)
    if key is None:
        return None
    hit = _RENDERS.get((str(archive.root), key))
    if hit is not None:
        return hit
    from archiver.records import RecordSummary

    folder = archive.root / "public" / "pages"
    html_path, json_path, meta_path = (folder / f"{key}.{ext}" for ext in ("html", "json", "meta"))
    try:  # kept from an earlier rendering (this process or another): three small files, no query
        meta = json.loads(meta_path.read_bytes())
        html, body = html_path.read_bytes(), json_path.read_bytes()
        shot, summary = meta["screenshot"], RecordSummary(**meta["summary"])
    except (OSError, ValueError, KeyError, TypeError):
        from store.fsutil import atomic_write_bytes

        made = _render(archive, record_id, hrefs=hrefs, replay_url=replay_url)
        found = archive.catalog.get(record_id)
        if made is None or found is None:
            return None
        html, body, shot = made
        summary = found
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(json_path, body)
        atomic_write_bytes(html_path, html)
        atomic_write_bytes(meta_path, json.dumps({"screenshot": shot, "summary": summary.to_dict()}).encode())
    etag = f'"{key[:32]}"'
    rendered = Rendered(html, body, etag, f'"{key[32:64]}"', shot, summary)
    _RENDERS.put((str(archive.root), key), rendered)
    return rendered


def _render(archive: Archive, record_id: str, *, hrefs: Callable[[str, str], str],
            replay_url: str | None) -> tuple[bytes, bytes, str | None] | None:
    from archiver.cite import citation_data
    from archiver.cite import render as cite_render
    from archiver.publication import public_provenance
    from store.search import cached_verifications

    report = public_provenance(archive, record_id)
    if report is None:
        return None
    cached = cached_verifications(archive.catalog, [record_id]).get(record_id)
    data = citation_data(archive, record_id)
    citations = [(key, label, cite_render(data, key)) for key, label in STYLES]
    m = archive.manifest(record_id)
    shot = m.artifact("screenshot")
    versions = [(v, [(r, hrefs(r, "self")) for r in v.record_ids]) for v in (report.timeline.versions
                                                                             if report.timeline else ())]
    ts = m.captured_at.replace("-", "").replace(":", "").replace("T", "")[:14]
    ctx = {"p": report, "permalink": data.permalink or hrefs(record_id, "self"), "permanent": PERMANENT,
           "citations": citations, "verified": cached, "versions": versions, "version": __version__,
           "hrefs": {k: hrefs(record_id, k) for k in ("self", "json", "bundle", "screenshot", "static")},
           "has_screenshot": shot is not None, "replay_url": replay_url, "record_id": record_id,
           "page_url": m.subject.final_url, "ts": ts, "verify_cmds": verify_commands(report)}
    html = templates.get_template("public_record.html").render(ctx).encode("utf-8")
    body = json.dumps(plain(report), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return html, body + b"\n", shot.sha256 if shot else None


def verify_commands(p: ProvenanceReport) -> list[str]:
    """The README's "Verify without this tool", filled in for this record's bundle."""
    rid = p.record_id
    return [
        f"archiver verify {rid}.wacz            # every check, offline (pip install archiver)",
        f"unzip -o {rid}.wacz -d {rid} && cd {rid}",
        f"sha256sum archive/{rid}.warc.gz      # equals the manifest's warc artifact",
        f"python -m warcio check archive/{rid}.warc.gz",
        f"jq -r '.artifacts[] | \"\\(.sha256)  \\(.name)\"' provenance/{rid}.manifest.json",
        f"# content SHA-256 {p.content_sha256}",
    ]


def _matches(request: Request, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): ``W/"x"`` matches ``"x"``."""
    match = request.headers.get("if-none-match", "")
    tags = [t.strip().removeprefix("W/") for t in match.split(",")]
    return bool(match) and (etag in tags or match.strip() == "*")


def _answer(request: Request, body: bytes, etag: str, media: str, csp: str | None = None) -> Response:
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE}, must-revalidate"}
    if csp:  # else the policy's default (security_headers)
        headers["Content-Security-Policy"] = csp
    if _matches(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media, headers=headers)


def _not_found(json_body: bool = False) -> Response:
    return Response(NOT_FOUND_JSON if json_body else NOT_FOUND_HTML, status_code=404,
                    media_type="application/problem+json" if json_body else "text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def _replay_url(request: Request) -> str | None:
    return getattr(state(request), "replay_url", None)


class _NotModified(Exception):
    """The client holds the current bytes (its If-None-Match names this key's ETag)."""

    def __init__(self, etag: str) -> None:
        self.etag = etag


async def _rendered(request: Request, record_id: str, which: int) -> Rendered | None:
    """The page from the cache on the event loop (its key is three index probes on a kept connection);
    a revalidation that still holds ends here, before any page is read; rendering a page not seen yet,
    which reads blobs and takes tens of milliseconds, runs in a worker thread. ``which``: 0 the page,
    1 the JSON (each has its own ETag)."""
    from starlette.concurrency import run_in_threadpool

    a, replay_url = state(request).archive, _replay_url(request)
    key = page_key(a, record_id, replay_url, "server")
    if key is None:
        return None
    etag = f'"{key[32 * which:32 * (which + 1)]}"'
    if _matches(request, etag):
        raise _NotModified(etag)
    hit = _RENDERS.get((str(a.root), key))
    if hit is not None:
        return hit
    return await run_in_threadpool(render_record, a, record_id, replay_url=replay_url)


def _not_modified(etag: str, csp: str | None = None) -> Response:
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE}, must-revalidate"}
    if csp:
        headers["Content-Security-Policy"] = csp
    return Response(status_code=304, headers=headers)


@router.get("/r/{record_id}.json")
async def record_json(request: Request, record_id: str, _: PublicJson) -> Response:
    try:
        made = await _rendered(request, record_id, 1)
    except _NotModified as nm:
        return _not_modified(nm.etag)
    return _not_found(True) if made is None else _answer(request, made.json, made.json_etag, "application/json")


@router.api_route("/r/{record_id}", methods=["GET", "HEAD"])
async def record_page(request: Request, record_id: str, _: PublicPage) -> Response:
    """A public record page is a memento (RFC 7089): it names its original, TimeGate and TimeMap in
    ``Link`` and its time in ``Memento-Datetime``; HEAD answers the same headers (Memento clients ask so)."""
    from archiver.memento import memento_headers, public_base

    replay_url = _replay_url(request)
    try:
        made = await _rendered(request, record_id, 0)
    except _NotModified as nm:
        return _not_modified(nm.etag, page_csp(replay_url))
    if made is None:
        return _not_found()
    # the page frames its replay from the replay origin, and only from there (security.page_csp)
    resp = _answer(request, made.html, made.html_etag, "text/html; charset=utf-8", page_csp(replay_url))
    resp.headers.update(memento_headers(made.summary, public_base(state(request).archive, str(request.base_url))))
    return resp


@router.get("/r/{record_id}/screenshot.png")
def record_screenshot(request: Request, record_id: str, _: PublicBytes) -> Response:
    a = state(request).archive
    made = render_record(a, record_id, replay_url=_replay_url(request))
    if made is None or made.screenshot_sha256 is None:
        return _not_found()
    data = a.blobs.read_bytes(made.screenshot_sha256)
    return Response(data, media_type="image/png", headers={
        "ETag": f'"{made.screenshot_sha256[:32]}"', "Cache-Control": "public, max-age=31536000, immutable",
        "Content-Disposition": f'attachment; filename="{record_id}.png"'})


@router.get("/r/{record_id}/bundle.wacz")
def record_bundle(request: Request, record_id: str, _: PublicBytes) -> Response:
    """The record's WACZ, exported once per (record, addenda) and kept; a public download logs nothing
    (the ``publish`` entry says the record is given to anyone)."""
    from fastapi.responses import FileResponse

    from archiver.publication import public_bundle

    a = state(request).archive
    if render_record(a, record_id, replay_url=_replay_url(request)) is None:
        return _not_found()
    path, sha = public_bundle(a, record_id)
    return FileResponse(path, media_type="application/wacz", filename=f"{record_id}.wacz",
                        headers={"ETag": f'"{sha[:32]}"', "Cache-Control": f"public, max-age={MAX_AGE}"})


__all__ = ["NOT_FOUND_HTML", "PERMANENT", "Rendered", "render_record", "router", "server_hrefs", "verify_commands"]
