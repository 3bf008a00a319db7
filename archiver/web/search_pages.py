"""Search across documents: the page ``/search`` (the search box in every page's header) and its JSON
twin ``GET /api/v1/search``, both for viewers (``archiver.fulltext``; the CLI's ``archiver search``).

Both are pure reads: the index is kept by the server's job pool (``app.py``), never by a GET. A query
the library refuses (no words, too long) is shown on the page beside the form, and is a 400 problem in
the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from archiver.errors import UsageError
from archiver.fulltext import SearchReport
from archiver.web.deps import WEB_DIR, ApiViewer, ViewerPage, page_context, responses_for, state
from archiver.web.security import Principal

router = APIRouter()
templates = Jinja2Templates(directory=WEB_DIR / "templates")


def _ctx(request: Request, who: Principal, **kw: Any) -> dict[str, Any]:
    return page_context(request, who, "search", **kw)


@router.get("/api/v1/search", responses=responses_for(SearchReport))
def search_api(request: Request, _: ApiViewer, q: str, entity: str | None = None, latest: bool = False,
               limit: int = 10) -> dict[str, Any]:
    """Ranked sections of the documents' own text holding every word of ``q`` ("a phrase" in quotes)."""
    return state(request).archive.fulltext.search(q, entity=entity, latest=latest, limit=limit).to_dict()


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
def search_page(request: Request, p: ViewerPage, q: str = "", entity: str = "", latest: bool = False) -> Response:
    a = state(request).archive
    report = error = None
    if q.strip():
        try:
            report = a.fulltext.search(q, entity=entity or None, latest=latest, limit=20)
        except UsageError as exc:
            error = exc.message
    entities = a.fulltext.entities()
    status = 400 if error else 200
    return templates.TemplateResponse(request, "search.html", _ctx(
        request, p, title=f"Search: {q}" if q else "Search", q=q, entity=entity, latest=latest, report=report,
        error=error, entities=entities), status_code=status)
