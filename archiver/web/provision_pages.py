"""Provisions in the web app: ``/provisions`` (the list), ``/provisions/<PID>`` (one provision: its
clause language, first tracked, last verified, every version's text with the word diff from the one
before, every observation) and their JSON twins ``/api/v1/provisions`` and ``/api/v1/provisions/<PID>``
(the same ``Provision`` and ``ProvisionReport`` records as ``provision list|show --json``).

Reads only, for viewers; pinning and untracking are acts of the CLI (``archiver provision add|remove``),
which logs their custody entries. This router imports ``deps`` and the library, never another router.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from archiver.provisions import Provision, ProvisionReport
from archiver.schema import plain
from archiver.web.deps import WEB_DIR, ApiViewer, ViewerPage, page_context, responses_for, state
from archiver.web.security import Principal

router = APIRouter()
templates = Jinja2Templates(directory=WEB_DIR / "templates")
STATUS_KIND = {"pinned": "skip", "unchanged": "ok", "moved": "warn", "changed": "warn", "removed": "fail"}


def _responses(cls: type, *, many: bool = False) -> dict[int | str, dict[str, Any]]:
    return responses_for(cls, many=many)


def _ctx(request: Request, who: Principal, **kw: Any) -> dict[str, Any]:
    return page_context(request, who, "provisions", **kw)


def day(iso: str) -> str:
    """``2026-05-09T14:50:44.123Z`` → ``May 9, 2026`` (the seeds' "First tracked" form)."""
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.UTC)
    return f"{t:%B} {t.day}, {t.year}"


def _row(p: Provision) -> dict[str, Any]:
    return {**p.to_dict(), "kind": STATUS_KIND.get(p.status, "skip"), "first_day": day(p.first_tracked),
            "verified_day": day(p.last_verified)}


# ---- API ------------------------------------------------------------------------------------------
@router.get("/api/v1/provisions", responses=_responses(Provision, many=True),
            summary="Tracked provisions, oldest first (as `archiver provision list --json`)")
def provisions_json(p: ApiViewer, request: Request, entity: str | None = None, url: str | None = None
                    ) -> JSONResponse:
    return JSONResponse(plain(state(request).archive.provisions.list(entity=entity or None, url=url or None)))


@router.get("/api/v1/provisions/{provision_id}", responses=_responses(ProvisionReport),
            summary="One provision: every version of its text with the record holding it, and every observation")
def provision_json(provision_id: str, p: ApiViewer, request: Request) -> JSONResponse:
    return JSONResponse(plain(state(request).archive.provisions.show(provision_id)))


# ---- pages ----------------------------------------------------------------------------------------
@router.get("/provisions", response_class=HTMLResponse, include_in_schema=False)
def provisions_page(request: Request, p: ViewerPage, entity: str = "") -> Response:
    found = state(request).archive.provisions.list(entity=entity or None)
    return templates.TemplateResponse(request, "provisions.html", _ctx(
        request, p, title="Provisions", rows=[_row(x) for x in found], entity=entity))


@router.get("/provisions/{provision_id}", response_class=HTMLResponse, include_in_schema=False)
def provision_page(request: Request, provision_id: str, p: ViewerPage) -> Response:
    return templates.TemplateResponse(request, "provision.html", _ctx(
        request, p, title=f"{provision_id.upper()} · provision", **provision_view(
            state(request).archive.provisions.show(provision_id))))


def provision_view(r: ProvisionReport) -> dict[str, Any]:
    """What the provision page lays out: the report, dates as the seeds write them, and each version's
    word diff from the one before as escaped HTML (``textdiff.word_diff_html``)."""
    from archiver.textdiff import word_diff_html

    versions = []
    for i, v in enumerate(r.versions):
        inline = Markup(word_diff_html(r.versions[i - 1].text, v.text)[2]) if i else None  # noqa: S704 - escaped there
        versions.append({**v.to_dict(), "first_day": day(v.first_seen), "last_day": day(v.last_seen),
                         "diff_html": inline})
    checks = [{**c.to_dict(), "kind": STATUS_KIND.get(c.status, "skip")} for c in r.checks]
    return {"r": r, "pv": _row(r.provision), "versions": list(reversed(versions)), "checks": list(reversed(checks))}


__all__ = ["day", "provision_view", "router"]
