"""The replay origin: where captured pages run, and nothing else.

Why a separate origin: a replayed page is the captured site's HTML and scripts. Run in the app's
origin, a script would read the app's pages and act with the visitor's session. So the app never
serves captured bytes as a document (downloads are ``attachment`` with a sandbox CSP), and replay
happens here, on another origin (``archiver serve --replay-port``, default the app's port + 1, or
``web.replay_url`` on another registrable domain for a public server), inside a sandboxed iframe of
the public record page. This origin holds no secret: it sets no cookie, reads none, has no login and
no state but a cache of public bundles, and serves:

- ReplayWeb.page's files as ``archiver replay setup`` unpacked them (``/replaywebpage/ui.js``, the
  service worker ``/replay/sw.js`` with its ``Service-Worker-Allowed`` scope, and, as the AGPL asks,
  the licence, ``package.json`` and ``SOURCE.json`` naming the version and the source);
- ``/embed/<ID>``: a page holding ``<replay-web-page>`` for one **public** record, which only the app's
  origin may frame (``frame-ancestors``);
- ``/w/<ID>.wacz``: that record's WACZ bundle (the kept public bundle, exported once per record,
  manifest and addenda count), served with byte ranges, CORS open to the app's origin only.

A private record and an ID that was never issued answer with the same bytes (:data:`NOT_FOUND`):
both are decided by one indexed query (``publications.is_public``) before anything else is read, so
this origin cannot be used to learn which IDs exist. Cookies a browser sends here (browsers do not
separate cookies by port, so on a laptop the app's HttpOnly session cookie arrives too) are ignored.
"""

from __future__ import annotations

import html
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from archiver.api import Archive
    from archiver.replayassets import ReplayAssets

#: The one answer for a private record, an unknown ID and a path we do not serve.
NOT_FOUND = b"Not found\n"
#: Headers on every answer: no referrer leaves a replayed page, no type guessing.
BASE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
#: The page ReplayWeb.page frames inside the embed (its service worker answers it once installed;
#: served here too so a first load that races the worker gets the same app).
APP_PAGE = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ReplayWeb.page</title>"
            "<script src='/replaywebpage/ui.js'></script></head>"
            "<body><replay-app-main></replay-app-main></body></html>")


def capture_ts(captured_at: str) -> str:
    """``2026-11-23T13:11:19.482Z`` → ``20261123131119``: the 14-digit timestamp replay addresses by."""
    digits = re.sub(r"\D", "", captured_at)
    return digits[:14].ljust(14, "0")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL (what CORS and ``frame-ancestors`` compare)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class WaczCache:
    """Public records' WACZ bundles: the kept bundle of ``publication.public_bundle`` (the same file the
    public page offers as a download: exported once per record and addenda, byte-deterministic, written
    under a temporary name and renamed, no custody entry, so a GET writes neither catalog nor custody).
    One lock per record keeps the parallel range requests ReplayWeb.page opens with from exporting the
    same record several times at once."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, rid: str) -> Path:
        from archiver.publication import public_bundle

        with self._guard:
            lock = self._locks.setdefault(rid, threading.Lock())
        with lock:
            return public_bundle(self.archive, rid)[0]


def create_replay_app(archive: Archive, app_origin: str | list[str], *,
                      assets: ReplayAssets | None = None) -> Starlette:
    """The replay origin's app. ``app_origin``: the origin(s) of the app whose public pages frame the
    embeds (the only origins CORS and ``frame-ancestors`` name). ``assets``: ReplayWeb.page's files
    (default: those ``archiver replay setup`` installed for this store; none → a clear error)."""
    from archiver import replayassets
    from archiver.errors import UsageError
    from archiver.provenance.ids import is_canonical_record_id

    if assets is None:
        assets = replayassets.installed(replayassets.cache_dir(archive.config))
    if assets is None:
        raise UsageError("ReplayWeb.page is not set up, so the replay origin has nothing to replay with",
                         hint="run `archiver replay setup` (it fetches the pinned release with npm)")
    origins = [origin_of(o) for o in ([app_origin] if isinstance(app_origin, str) else app_origin)]
    waczs = WaczCache(archive)
    ancestors = " ".join(origins)
    embed_csp = f"frame-ancestors {ancestors}; base-uri 'none'; object-src 'none'"

    def not_found() -> Response:
        return Response(NOT_FOUND, status_code=404, media_type="text/plain; charset=utf-8",
                        headers={**BASE_HEADERS, "Cache-Control": "no-store"})

    def public(rid: str) -> bool:
        # the same one query for a private, an unknown and a malformed ID (one answer, one timing class)
        return archive.publications.is_public(rid) and is_canonical_record_id(rid)

    def asset(name: str, media_type: str, **headers: str) -> Response:
        return FileResponse(assets.path(name), media_type=media_type,
                            headers={**BASE_HEADERS, "Cache-Control": "public, max-age=3600", **headers})

    def index(request: Request) -> Response:
        body = (f"archiver replay origin: replays public records with ReplayWeb.page {assets.version} "
                f"({assets.license}). Source: {assets.source}  Licence: /replaywebpage/LICENSE\n")
        return PlainTextResponse(body, headers=BASE_HEADERS)

    def ui_js(request: Request) -> Response:
        return asset("ui.js", "text/javascript; charset=utf-8")

    def sw_js(request: Request) -> Response:
        return asset("sw.js", "text/javascript; charset=utf-8", **{"Service-Worker-Allowed": "/replay/"})

    def licence(request: Request) -> Response:
        return asset("LICENSE", "text/plain; charset=utf-8")

    def package_json(request: Request) -> Response:
        return asset("package.json", "application/json")

    def source_json(request: Request) -> Response:
        return asset(replayassets.MANIFEST, "application/json")

    def app_page(request: Request) -> Response:
        # framed by the embed page, itself framed by the app's public page: both are its ancestors
        return HTMLResponse(APP_PAGE, headers={**BASE_HEADERS,
                                               "Content-Security-Policy": f"frame-ancestors 'self' {ancestors}"})

    def embed(request: Request) -> Response:
        rid = str(request.path_params["rid"])
        if not public(rid):
            return not_found()
        m = archive.manifest(rid)
        url, ts = m.subject.final_url, capture_ts(m.captured_at)
        title = f"Replay of {url} as captured {m.captured_at} (record {rid})"
        page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                f"<title>{html.escape(title)}</title>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                "<script src='/replaywebpage/ui.js'></script></head>"
                "<body style='margin:0'>"
                f"<replay-web-page source='/w/{rid}.wacz' url='{html.escape(url, quote=True)}' ts='{ts}' "
                "replayBase='/replay/' embed='replay-with-info' "
                # useHashCheck=1: ReplayWeb.page checks each member it reads against the datapackage
                "swName='sw.js?useHashCheck=1&amp;serveIndex=1&amp;' noWebWorker "
                "style='display:block;width:100%;height:calc(100vh - 24px)'></replay-web-page>"
                # links of this origin only: in the sandboxed frame a link elsewhere would open nowhere
                f"<p style='font:12px sans-serif;margin:4px'>Replayed with ReplayWeb.page {assets.version} "
                f"(<a href='/replaywebpage/LICENSE'>{assets.license}</a>, "
                "<a href='/replaywebpage/SOURCE.json'>version and source</a>).</p></body></html>")
        return HTMLResponse(page, headers={**BASE_HEADERS, "Content-Security-Policy": embed_csp,
                                           "Cache-Control": "no-cache"})

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        return {"Access-Control-Allow-Origin": origin if origin in origins else origins[0],
                "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Allow-Headers": "Range",
                "Access-Control-Expose-Headers": "Content-Range, Content-Length, Accept-Ranges, ETag",
                "Vary": "Origin"}

    def wacz(request: Request) -> Response:
        rid = str(request.path_params["rid"])
        if not public(rid):
            return not_found()
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={**BASE_HEADERS, **cors(request)})
        path = waczs.path(rid)
        return FileResponse(path, media_type="application/wacz",
                            headers={**BASE_HEADERS, **cors(request), "Cache-Control": "no-cache",
                                     "Cross-Origin-Resource-Policy": "cross-origin"})

    async def fallback(request: Request, exc: Exception) -> Response:
        return not_found()

    routes = [
        Route("/", index),
        Route("/replaywebpage/ui.js", ui_js),
        Route("/replaywebpage/LICENSE", licence),
        Route("/replaywebpage/package.json", package_json),
        Route("/replaywebpage/SOURCE.json", source_json),
        Route("/replay/sw.js", sw_js),
        Route("/replay/", app_page),
        Route("/replay/index.html", app_page),
        Route("/embed/{rid}", embed),
        Route("/w/{rid}.wacz", wacz, methods=["GET", "HEAD", "OPTIONS"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: fallback, 405: fallback})
    app.state.replay_assets = assets
    return app


def replay_base(configured: str, host: str, port: int) -> str:
    """The replay origin's public base: ``web.replay_url`` when set, else ``http://<host>:<port>``."""
    if configured:
        return configured.rstrip("/")
    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    return f"http://{shown}:{port}"


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are the same *site* for a browser's cookies: same host, any port (browsers do
    not separate cookies by port), or hosts sharing a registrable domain. Without the Public Suffix
    List the registrable domain is taken as the last two labels (three when the second-level label is
    two letters or a usual second level such as ``co``/``com``/``org``/``gov``/``ac``), which errs
    towards warning."""
    from urllib.parse import urlsplit

    ha, hb = (urlsplit(x).hostname or "" for x in (a, b))
    if not ha or not hb:
        return False
    if ha == hb:
        return True

    def registrable(h: str) -> str:
        labels = h.rstrip(".").split(".")
        if all(x.isdigit() for x in labels) or ":" in h:  # an IP address is its own site
            return h
        n = 3 if len(labels) >= 3 and (len(labels[-2]) <= 2 or labels[-2] in ("com", "org", "gov", "net", "edu",
                                                                                 "co", "ac")) else 2
        return ".".join(labels[-n:])

    return registrable(ha) == registrable(hb)


__all__ = ["NOT_FOUND", "WaczCache", "capture_ts", "create_replay_app", "origin_of", "replay_base", "same_site"]
