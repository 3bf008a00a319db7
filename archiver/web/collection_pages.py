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

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from archiver.collections import PublicCollection
from archiver.web.deps import WEB_DIR, Access, Kind, Public, PublicPage, guard, problem, state

router = APIRouter()
PublicDownload = Annotated[None, Depends(guard(Access.PUBLIC, Kind.DOWNLOAD))]
#: Cache for a collection page: short (a record may be unpublished at any time).
CACHE = "public, max-age=60"
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


def _not_found_page() -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_HTML, status_code=404)


def _not_found() -> Response:
    return problem(404, "NotFoundError", "no public collection of this name")


@router.get("/c/{collection}.json", include_in_schema=False)
def collection_json(collection: str, request: Request, _: Public) -> Response:
    view = state(request).archive.collections.public_view(collection)
    if view is None:
        return _not_found()
    return JSONResponse(view.to_dict(), headers={"Cache-Control": CACHE})


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
    view = state(request).archive.collections.public_view(collection)
    if view is None:
        return _not_found_page()
    return HTMLResponse(render_collection(view, server_links(collection)), headers={"Cache-Control": CACHE})


__all__ = ["Links", "render_collection", "router", "server_links", "template_env"]
