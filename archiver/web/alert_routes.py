"""Alerts on ``archiver serve``: the Atom feeds (``/feeds/all.atom``, ``/feeds/entity/<name>.atom``,
``/feeds/watch/<key>.atom``) and the delivery log (``/alerts``, its JSON twin
``/api/v1/alerts/deliveries``).

Who may read a feed is a setting, ``alerts.feeds_public``: off (the default), a feed is a viewer's, as
every other private read; on, anyone's — a feed names documents and what changed in them, which an
operator may well want to publish, but must decide to. The route's declared policy is the strict one
(``viewer/api``), and :class:`FeedGuard` relaxes it only while the setting is on, so the route walk
still reads one policy per route. The delivery log is an admin's: webhook URLs can carry credentials.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from archiver.alerts import deliveries, list_events
from archiver.alerts import feeds as feeds_mod
from archiver.alerts import webhooks as webhooks_mod
from archiver.web.deps import WEB_DIR, Access, Guard, Kind, Policy, guard, page_context, state
from archiver.web.security import Principal

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=WEB_DIR / "templates")


class FeedGuard(Guard):
    """A viewer's route, open to anyone while ``alerts.feeds_public`` is on (see the module docstring)."""

    def __call__(self, request: Request) -> Principal | None:
        if state(request).archive.config.bool_("alerts.feeds_public"):
            return None
        return super().__call__(request)


FeedReader = Annotated[Principal | None, Depends(FeedGuard(Policy(Access.VIEWER, Kind.API)))]
AdminPage = Annotated[Principal, Depends(guard(Access.ADMIN, Kind.PAGE))]
AdminApi = Annotated[Principal, Depends(guard(Access.ADMIN, Kind.API))]


def _base(request: Request) -> str:
    return str(state(request).archive.config.get("web.public_url") or "") or str(request.base_url).rstrip("/")


def _atom(body: bytes) -> Response:
    return Response(body, media_type=feeds_mod.MEDIA_TYPE, headers={"Cache-Control": "private, max-age=60"})


@router.get("/feeds/all.atom")
def feed_all(request: Request, _: FeedReader) -> Response:
    """Every alert, newest first (the latest 100)."""
    base = _base(request)
    return _atom(feeds_mod.feed_all(state(request).archive, feed_url=base + "/feeds/all.atom", base=base))


@router.get("/feeds/entity/{name}.atom")
def feed_entity(request: Request, name: str, _: FeedReader) -> Response:
    """The alerts of one entity's documents."""
    base = _base(request)
    from urllib.parse import quote

    url = f"{base}/feeds/entity/{quote(name, safe='')}.atom"
    return _atom(feeds_mod.feed_entity(state(request).archive, name, feed_url=url, base=base))


@router.get("/feeds/watch/{key}.atom")
def feed_watch(request: Request, key: str, _: FeedReader) -> Response:
    """The alerts of one watched URL (``key``: see ``archiver.alerts.feeds.watch_key``)."""
    base = _base(request)
    return _atom(feeds_mod.feed_watch(state(request).archive, key, feed_url=f"{base}/feeds/watch/{key}.atom",
                                      base=base))


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, p: AdminPage) -> Response:
    """Webhooks (never their secrets), the delivery log with every attempt, the latest events, the feeds."""
    a = state(request).archive
    watches = [{"url": w.url, "key": feeds_mod.watch_key(w.url), "entity": w.entity} for w in a.watches.all()]
    ctx: dict[str, Any] = page_context(request, p, "alerts") | {
        "title": "Alerts",
        "webhooks": webhooks_mod.list_all(a), "deliveries": deliveries(a, limit=100),
        "events": list_events(a, limit=50), "watches": watches,
        "entities": sorted({w["entity"] for w in watches if w["entity"]}),
        "feeds_public": a.config.bool_("alerts.feeds_public"),
    }
    return templates.TemplateResponse(request, "alerts.html", ctx)


@router.get("/api/v1/alerts/deliveries")
def deliveries_json(request: Request, _: AdminApi, status: str | None = None, limit: int = 100) -> JSONResponse:
    """The delivery log as JSON: the same records as ``archiver alerts log --json``."""
    from archiver.schema import plain

    return JSONResponse(plain(deliveries(state(request).archive, status=status, limit=max(1, min(limit, 1000)))))


__all__ = ["FeedGuard", "router"]
