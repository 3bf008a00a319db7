"""The public page of a collection: ``/c/<name>`` (HTML), ``/c/<name>.json`` (its JSON twin) and
``/c/<name>.wacz`` (one bundle of its public records).

Only a published collection answers, and of it only the records that are public themselves
(``archiver/collections.py`` decides; this router parses, calls and renders). An unknown name, an
unpublished collection and a bad name give the same 404, whichever it is. The bundle is the one the
library keeps for exactly the current public records (made without a custody entry, as a public
record's bundle: reads write neither catalog nor custody).

Links in the page are relative (``../r/<ID>``, ``<name>.wacz``), so the same template renders the
static export (``archiver publish --static``), where only the link targets differ.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

if TYPE_CHECKING:
    from archiver.api import Archive
    from archiver.collections import PublicCollection
from archiver.web.deps import WEB_DIR, Access, Kind, Public, PublicPage, guard, problem, state

router = APIRouter()
PublicDownload = Annotated[None, Depends(guard(Access.PUBLIC, Kind.DOWNLOAD))]
#: Cache for a collection page: short (a record may be unpublished at any time); a revalidation with
#: the ETag costs a 304.
CACHE = "public, max-age=60, must-revalidate"
NOT_FOUND_HTML = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>"
                  "<body><main><h1>Not found</h1><p>There is no public collection at this address.</p></main>"
                  "</body></html>\n")


@dataclass(frozen=True, slots=True)
class Links:
    """Where a collection page's links lead: the server's routes, or a static export's files."""

    static: str
    json: str
    bundle: str
    record_prefix: str
    record_suffix: str = ""

    def record(self, record_id: str) -> str:
        return f"{self.record_prefix}{record_id}{self.record_suffix}"


def server_links(name: str) -> Links:
    """Relative to ``/c/<name>``: ``../r/<ID>`` is the record's public page, ``<name>.wacz`` the bundle."""
    return Links(static="../static", json=f"{name}.json", bundle=f"{name}.wacz", record_prefix="../r/")


def render_collection(view: PublicCollection, links: Links) -> str:
    """The collection page's HTML (autoescaped: titles and URLs are the captured pages' own words)."""
    from archiver._version import __version__

    html: str = template_env().get_template("public_collection.html").render(
        c=view, links=links, title=f"{view.title} · collection", version=__version__,
        hrefs={"static": links.static, "json": links.json})
    return html


_ENV: list[Any] = []


def template_env() -> Any:
    if not _ENV:
        import jinja2

        _ENV.append(jinja2.Environment(loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
                                       autoescape=True, undefined=jinja2.StrictUndefined))
    return _ENV[0]


@dataclass(frozen=True, slots=True)
class Rendered:
    html: bytes
    json: bytes
    html_etag: str
    json_etag: str


_RENDERED: OrderedDict[tuple[Any, ...], Rendered] = OrderedDict()
_LOCK = threading.Lock()
_CACHE_MAX = 256


def rendered(archive: Archive, name: str) -> Rendered | None:
    """A published collection's page and JSON, rendered once per state: the key holds what the bytes
    depend on (its public records in order with their manifests and addenda, and the settings that go
    into citations), so a record published, unpublished or stamped since gives a new rendering."""
    from archiver.collections import bundle_key

    ids = archive.collections.public_records(name)
    if ids is None:
        return None
    cfg = archive.config
    key = (str(archive.root), name, bundle_key(archive, ids), cfg.str_("web.public_url"),
           cfg.str_("operator.organization"), cfg.str_("operator.name"), cfg.str_("cite.archive_base_url"))
    with _LOCK:
        hit = _RENDERED.get(key)
        if hit is not None:
            _RENDERED.move_to_end(key)
            return hit
    view = archive.collections.public_view(name)
    if view is None:
        return None
    html = render_collection(view, server_links(name)).encode("utf-8")
    body = json_bytes(view)
    made = Rendered(html, body, _etag(html), _etag(body))
    with _LOCK:
        _RENDERED[key] = made
        while len(_RENDERED) > _CACHE_MAX:
            _RENDERED.popitem(last=False)
    return made


def json_bytes(view: PublicCollection) -> bytes:
    """The JSON twin's bytes (the server and a static site write the same)."""
    return json.dumps(view.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _answer(request: Request, body: bytes, etag: str, media: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": CACHE}
    match = request.headers.get("if-none-match", "")
    if etag in [t.strip() for t in match.split(",")] or match.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media, headers=headers)


def _not_found_page() -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_HTML, status_code=404)


def _not_found() -> Response:
    return problem(404, "NotFoundError", "no public collection of this name")


@router.get("/c/{collection}.json", include_in_schema=False)
def collection_json(collection: str, request: Request, _: Public) -> Response:
    made = rendered(state(request).archive, collection)
    return _not_found() if made is None else _answer(request, made.json, made.json_etag, "application/json")


@router.get("/c/{collection}.wacz", include_in_schema=False)
def collection_bundle(collection: str, request: Request, _: PublicDownload) -> Response:
    cols = state(request).archive.collections
    ids = cols.public_records(collection)
    made = cols.bundle(collection, ids) if ids else None
    if made is None:
        return _not_found()
    return FileResponse(made[0], media_type="application/wacz", filename=f"{collection}.wacz",
                        headers={"Cache-Control": CACHE, "ETag": f'"{made[1][:32]}"'})


@router.get("/c/{collection}", include_in_schema=False, response_class=HTMLResponse)
def collection_page(collection: str, request: Request, _: PublicPage) -> Response:
    made = rendered(state(request).archive, collection)
    if made is None:
        return _not_found_page()
    return _answer(request, made.html, made.html_etag, "text/html; charset=utf-8")


__all__ = ["Links", "Rendered", "json_bytes", "render_collection", "rendered", "router", "server_links", "template_env"]
