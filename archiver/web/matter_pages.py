"""Matters in the web app: the list (``/matters``, with filters), a matter's page (``/matters/<name>``:
its exhibits with their tags and notes, its holds) with the note and tag forms, and the JSON API
(``/api/v1/matters…``) over the same records (``archiver.matters``).

A router like the others: it imports ``deps``, ``security`` and the library, never another router;
every route declares its policy by its guard; forms carry the session's CSRF token; acts (a note, a
tag, a new matter, adding records) go through the library with ``actor=deps.actor(p)``, which writes
their custody entries, so the CLI, a page and the API log the same event for the same act.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from archiver.access import Role
from archiver.errors import PermissionDeniedError
from archiver.matters import Matter, add, create, list_all
from archiver.matters.notes import MatterView, Note, TagChange, add_note, add_tags, view
from archiver.schema import plain
from archiver.web.deps import (
    WEB_DIR,
    ApiCapturer,
    ApiViewer,
    CapturerPage,
    ViewerPage,
    actor,
    page_context,
    responses_for,
    state,
)
from archiver.web.security import SAFE_METHODS, Principal, csrf_ok

router = APIRouter()
templates = Jinja2Templates(directory=WEB_DIR / "templates")
HELD = {"": None, "held": True, "not-held": False}


def _ctx(request: Request, who: Principal, **kw: Any) -> dict[str, Any]:
    return page_context(request, who, "matters", **kw)


def _check_form(request: Request, p: Principal, csrf_token: str | None) -> None:
    """Every form post made with a session cookie carries the session's CSRF token."""
    if request.method not in SAFE_METHODS and p.session is not None and not csrf_ok(p.session, csrf_token):
        raise PermissionDeniedError("the form's CSRF token is missing or wrong; reload the page and try again")


def _held(value: str) -> bool | None:
    return HELD.get(value)


# ---- pages ---------------------------------------------------------------------------------------
@router.get("/matters", response_class=HTMLResponse, include_in_schema=False)
def matters_page(request: Request, p: ViewerPage, q: str = "", client: str = "", held: str = "",
                 tag: str = "") -> Response:
    a = state(request).archive
    found = list_all(a, client=client or None, held=_held(held), tag=tag or None, q=q or None)
    clients = sorted({m.client for m in list_all(a) if m.client})
    return templates.TemplateResponse(request, "matters.html", _ctx(
        request, p, title="Matters", matters=found, clients=clients,
        filters={"q": q, "client": client, "held": held if held in HELD else "", "tag": tag}))


@router.get("/matters/{matter}", response_class=HTMLResponse, include_in_schema=False)
def matter_page(request: Request, matter: str, p: ViewerPage, tag: str = "") -> Response:
    v = view(state(request).archive, matter, tag=tag or None)
    return templates.TemplateResponse(request, "matter.html", _ctx(
        request, p, title=f"{v.title} · matter", m=v, can_edit=p.token.role.allows(Role.CAPTURER)))


@router.post("/matters/{matter}/notes", include_in_schema=False)
def note_form(request: Request, matter: str, p: CapturerPage, record_id: str = Form(...), text: str = Form(""),
              csrf_token: str = Form("")) -> Response:
    _check_form(request, p, csrf_token)
    n = add_note(state(request).archive, record_id, text, matter=matter, actor=actor(p))
    return RedirectResponse(f"/matters/{quote(n.matter)}#r-{quote(n.record_id)}", status_code=303)


@router.post("/matters/{matter}/tags", include_in_schema=False)
def tag_form(request: Request, matter: str, p: CapturerPage, record_id: str = Form(...), tags: str = Form(""),
             csrf_token: str = Form("")) -> Response:
    _check_form(request, p, csrf_token)
    ch = add_tags(state(request).archive, record_id, tags.replace(",", " ").split(), matter=matter, actor=actor(p))
    return RedirectResponse(f"/matters/{quote(ch.matter)}#r-{quote(ch.record_id)}", status_code=303)


# ---- the API -------------------------------------------------------------------------------------
def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(plain(value), status_code=status)


def _ok(cls: type, *, many: bool = False, status: int = 200) -> dict[int | str, dict[str, Any]]:
    return responses_for(cls, many=many, status=status)


class MatterBody(BaseModel):
    name: str = Field(min_length=1, max_length=56)
    title: str = Field(default="", max_length=300)
    client: str = Field(default="", max_length=300)
    number: str = Field(default="", max_length=300)


class RecordsBody(BaseModel):
    record_ids: list[str] = Field(min_length=1, max_length=1000)


class NoteBody(BaseModel):
    record_id: str = Field(min_length=1, max_length=20)
    text: str = Field(min_length=1, max_length=5000)


class TagsBody(BaseModel):
    record_id: str = Field(min_length=1, max_length=20)
    tags: list[str] = Field(min_length=1, max_length=20)


@router.get("/api/v1/matters", responses=_ok(Matter, many=True),
            summary="Matters, narrowed by client, hold state (held=true|false), a tag used in them or text")
def api_matters(request: Request, p: ApiViewer, client: str = "", held: bool | None = None, tag: str = "",
                q: str = "") -> JSONResponse:
    return _json(list_all(state(request).archive, client=client or None, held=held, tag=tag or None, q=q or None))


@router.post("/api/v1/matters", status_code=201, responses=_ok(Matter, status=201),
             summary="Create a matter with an empty exhibit list (custody matter-create)")
def api_create(request: Request, req: MatterBody, p: ApiCapturer) -> JSONResponse:
    m = create(state(request).archive, req.name, title=req.title, client=req.client, number=req.number,
               actor=actor(p))
    return _json(m, 201)


@router.get("/api/v1/matters/{matter}", responses=_ok(MatterView),
            summary="A matter: its holds and its exhibits in order, each with its tags and notes")
def api_matter(request: Request, matter: str, p: ApiViewer, tag: str = "") -> JSONResponse:
    return _json(view(state(request).archive, matter, tag=tag or None))


@router.post("/api/v1/matters/{matter}/records", responses=_ok(Matter),
             summary="Append records to the matter's exhibit list (collection-add per new record)")
def api_add(request: Request, matter: str, req: RecordsBody, p: ApiCapturer) -> JSONResponse:
    from archiver.matters import get

    a = state(request).archive
    add(a, matter, req.record_ids, actor=actor(p))
    return _json(get(a, matter))


@router.post("/api/v1/matters/{matter}/notes", status_code=201, responses=_ok(Note, status=201),
             summary="A note on one of the matter's records (working data: the record is not changed)")
def api_note(request: Request, matter: str, req: NoteBody, p: ApiCapturer) -> JSONResponse:
    return _json(add_note(state(request).archive, req.record_id, req.text, matter=matter, actor=actor(p)), 201)


@router.post("/api/v1/matters/{matter}/tags", responses=_ok(TagChange),
             summary="Tag one of the matter's records (working data: the record is not changed)")
def api_tags(request: Request, matter: str, req: TagsBody, p: ApiCapturer) -> JSONResponse:
    return _json(add_tags(state(request).archive, req.record_id, req.tags, matter=matter, actor=actor(p)))


__all__ = ["router"]
