"""Memento (RFC 7089) routes: the TimeGate and the TimeMap of an original URL, over public records.

``GET /timegate/<original URL>`` answers 302 to the public record nearest ``Accept-Datetime``
(pattern 2.2 of RFC 7089 §4: a TimeGate apart from the original resource), ``GET
/timemap/link/<original URL>`` lists them all in application/link-format. The original URL is the
rest of the path, decoded once, with the request's query string (``/timegate/https://a.example/p?x=1``
asks for ``https://a.example/p?x=1``). The protocol lives in ``archiver/memento.py``; this router
only parses, calls it and answers. Both routes are public and read only.

No memento (an unknown URL, or one whose records are all private) is one constant 404, whichever it
is; bad input (white space, a fragment, not http(s), an unparseable ``Accept-Datetime``) is a 400
problem of one line.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from archiver import memento
from archiver.errors import UsageError
from archiver.web.deps import Public, problem, state

router = APIRouter()
#: Every answer depends on Accept-Datetime (a cache must key on it), the 404 and the 400 too.
VARY = {"Vary": "accept-datetime"}


def original_of(request: Request, path: str) -> str:
    query = request.url.query
    return memento.check_original(path + ("?" + query if query else ""))


def no_memento() -> Response:
    """The same answer for a URL never captured and one with private records only (nothing in it
    depends on which it was)."""
    return problem(404, "NotFoundError", "no public memento of this URL", headers=dict(VARY))


def bad(exc: UsageError) -> Response:
    return problem(400, "UsageError", exc.message, hint=exc.hint, headers=dict(VARY), exit_code=2)


@router.api_route("/timegate/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
def timegate(path: str, request: Request, _: Public) -> Response:
    archive = state(request).archive
    try:
        original = original_of(request, path)
        asked = request.headers.get("accept-datetime")
        when = memento.parse_accept_datetime(asked) if asked is not None else None
    except UsageError as exc:
        return bad(exc)
    found = memento.public_mementos(archive, original)
    if not found:
        return no_memento()
    chosen = memento.nearest(found, when)
    ep = memento.Endpoints(memento.public_base(archive, str(request.base_url)), original)
    return Response(status_code=302, headers={**VARY, "Location": ep.memento(chosen.record_id),
                                              "Link": memento.timegate_links(ep, found, chosen),
                                              "Cache-Control": "no-store"})


@router.api_route("/timemap/link/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
def timemap(path: str, request: Request, _: Public) -> Response:
    archive = state(request).archive
    try:
        original = original_of(request, path)
    except UsageError as exc:
        return bad(exc)
    found = memento.public_mementos(archive, original)
    if not found:
        return no_memento()
    ep = memento.Endpoints(memento.public_base(archive, str(request.base_url)), original)
    return Response(memento.timemap(ep, found), media_type=memento.LINK_FORMAT, headers=dict(VARY))


__all__ = ["router"]
