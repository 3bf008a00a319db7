"""The transparency log over HTTP, as c2sp.org/tlog-tiles lays it out: ``/log/checkpoint`` and
``/log/tile/…`` (hash tiles and entry bundles), for anyone when ``log.public`` is true.

Why anyone may read it: a leaf holds a record ID and a SHA-256, never a URL or a title
(``archiver/tlog/entries.py``), so the log says that a record exists and which bytes it has, and
nothing of what it is — that is what lets a third party hold the archive to its past checkpoints
without seeing its private records. It is still off by default (``log.public`` false: every path is
the same 404), because the number of entries and their times are the operator's to publish.

Paths are held to the spec's grammar before the store is asked — ``tile/<L>/<N>[.p/<W>]`` and
``tile/entries/<N>[.p/<W>]``, ``L`` 0..63 and ``W`` 1..255 without leading zeroes, ``N`` in the
canonical ``x001/x234/067`` form — so no other file under the log's directory (``checkpoints/``, RFC
3161 tokens, temp files) and nothing outside it can be named: anything else is the 404. Full tiles and
entry bundles never change (``immutable``, a year); a partial tile may be deleted once its full tile
exists, and the checkpoint changes at every signing, so both are cached briefly.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from archiver.web.deps import Access, Kind, guard, state

router = APIRouter(include_in_schema=False)
PublicLog = Annotated[None, Depends(guard(Access.PUBLIC, Kind.API))]

IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=60"
CHECKPOINT = "public, max-age=5"  # tlog-tiles: "headers SHOULD prevent caching beyond a few seconds"
_TILE = re.compile(r"tile/(0|[1-9][0-9]?|entries)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")
NOT_FOUND = b"not found\n"


def tile_path_ok(path: str) -> bool:
    """Whether ``path`` (under ``/log/``) is a tile or entry-bundle path in the spec's canonical form."""
    from archiver.tlog.tiles import encode_index

    m = _TILE.fullmatch(path)
    if m is None:
        return False
    level, index, width = m.groups()
    if level != "entries" and int(level) > 63:
        return False
    if width is not None and int(width) > 255:
        return False
    n = int(index.replace("x", "").replace("/", ""))
    return encode_index(n) == index  # one spelling per tile: no x000/ prefixes


def _not_found() -> Response:
    return Response(NOT_FOUND, status_code=404, media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def _public(request: Request) -> bool:
    return state(request).archive.config.bool_("log.public")


@router.get("/log/checkpoint")
def checkpoint(request: Request, _: PublicLog) -> Response:
    """The latest signed checkpoint (with the witnesses' cosignatures it gathered)."""
    if not _public(request):
        return _not_found()
    data = state(request).archive.log.files.read("checkpoint")
    if data is None:
        return _not_found()
    return Response(data, media_type="text/plain; charset=utf-8", headers={"Cache-Control": CHECKPOINT})


@router.get("/log/tile/{rest:path}")
def tile(request: Request, rest: str, _: PublicLog) -> Response:
    """A hash tile or an entry bundle, byte for byte as the store keeps it."""
    path = f"tile/{rest}"
    if not _public(request) or not tile_path_ok(path):
        return _not_found()
    data = state(request).archive.log.files.read(path)
    if data is None:
        return _not_found()
    return Response(data, media_type="application/octet-stream",
                    headers={"Cache-Control": PARTIAL if ".p/" in path else IMMUTABLE})


__all__ = ["router", "tile_path_ok"]
