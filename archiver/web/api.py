"""``/api/v1``: the HTTP API. Each route parses, authorizes, calls the facade and returns a record.

Every route declares its policy by the guard it takes (``p: ApiViewer`` …, from ``deps``); reads
answer from what is stored (verification results from the cache) and never write; acts go through
the library with ``actor=deps.actor(p)``; the library writes their custody entries.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from archiver.access import NewToken, TokenInfo
from archiver.errors import IntegrityError, UsageError
from archiver.evidence import ProvenanceReport
from archiver.jobs import CaptureJob, CaptureRequest
from archiver.monitor import DiffReport, HistoryReport, Watch, WatchUpdate
from archiver.publication import PublicationReport
from archiver.records import ArtifactMatch, Verification
from archiver.reports import (
    BundleReport,
    CitationReport,
    FileVerification,
    JobAccepted,
    RecordPage,
    RecordReport,
    Settings,
)
from archiver.schema import JsonRecord, plain
from archiver.web.deps import (
    ApiAdmin,
    ApiCapturer,
    ApiViewer,
    CapturerBytes,
    ViewerBytes,
    ViewerDownload,
    actor,
    bundle_report,
    cached_matches,
    certificate_download,
    cursor_of,
    export_download,
    parse_cursor,
    refused,
    repr_digest,
    responses_for,
    set_publication,
    state,
    submit_capture,
)
from archiver.web.uploads import receive_upload

router = APIRouter(prefix="/api/v1")
Viewer = ApiViewer
Capturer_ = ApiCapturer
Admin = ApiAdmin
RECORD_ID = re.compile(r"^[0-9A-Za-z-]{1,20}$")


EXTRA_MODELS: tuple[type, ...] = ()


PROBLEMS: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "Problem details (RFC 9457)",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


BUSY: dict[int | str, dict[str, Any]] = {
    "5XX": {"description": "Problem details (RFC 9457): every verification slot busy, or the server stopping",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


def ok(cls: type, *, many: bool = False, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response entry for a record type (``deps.responses_for``)."""
    return responses_for(cls, many=many, status=status)


def body(value: JsonRecord | list[Any] | tuple[Any, ...], status: int = 200) -> JSONResponse:
    return JSONResponse(plain(value), status_code=status)


def _rid(record_id: str) -> str:
    if not RECORD_ID.match(record_id):
        raise UsageError(f"not a record ID: {record_id!r}")
    return record_id


# ---- records -------------------------------------------------------------------------------------
@router.get("/records", responses=ok(RecordPage), summary="Records, newest first, filtered, paginated")
def records(p: Viewer, request: Request, url: str | None = None, entity: str | None = None,
            document: str | None = None, since: str | None = None, until: str | None = None,
            q: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
            cursor: str | None = None) -> JSONResponse:
    from store.search import Query as Q
    from store.search import search

    rows = search(state(request).archive.catalog, Q(text=q, url=url, entity=entity, document=document, since=since,
                                                    until=until, after=parse_cursor(cursor), limit=limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return body(RecordPage(items=tuple(rows), next_cursor=cursor_of(rows[-1]) if more and rows else None))


@router.get("/records/{record_id}", responses=ok(RecordReport),
            summary="One record: manifest and addenda (as `archiver show --json`)")
def record(record_id: str, p: Viewer, request: Request) -> Response:
    from archiver.evidence import VIEWS, json_bytes, view_key
    from archiver.reports import AddendumEntry, RecordReport

    a = state(request).archive

    def make() -> bytes:
        m = a.manifest(_rid(record_id))
        adds = tuple(AddendumEntry(sha256=sha, addendum=ad, unreadable=True if ad is None else None)
                     for sha, ad in a.addenda(m.record_id))
        return json_bytes(RecordReport(manifest=m, addenda=adds))

    key = view_key(a, _rid(record_id))
    return _json(VIEWS.remember(("record", key.digest), make) if key is not None else make())


@router.get("/records/{record_id}/provenance", responses=ok(ProvenanceReport),
            summary="Everything the record page shows")
def provenance(record_id: str, p: Viewer, request: Request) -> Response:
    from archiver.evidence import cached_provenance

    return _json(cached_provenance(state(request).archive, _rid(record_id))[1])


def _json(data: bytes) -> Response:
    """Bytes made by ``evidence.json_bytes`` (cached views), sent as a JSONResponse would send them."""
    return Response(data, media_type="application/json")


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.get("/records/{record_id}/artifacts/{name}", summary="An artifact's exact bytes (Range supported)",
            responses={200: {"description": "The bytes", "content": {"application/octet-stream": {}}},
                       206: {"description": "A byte range"}, 416: {"description": "Range not satisfiable"},
                       **PROBLEMS})
def artifact(record_id: str, name: str, p: ViewerDownload, request: Request) -> Response:
    """Handed out whole (200), the artifact is a ``get`` in custody, as ``archiver get``, written once
    the last byte is sent (an aborted download is none). A byte range (206) is a partial read (a
    replayer seeking into a WARC, a resumed download) and logs nothing: one entry per seek would
    bury the events custody is for. From a local blob store the file is sent as a file (Starlette's
    ``FileResponse``: ranges, ``If-Range`` against the strong ETag, the blob's SHA-256; the ASGI
    ``pathsend`` zero-copy extension where the server offers it); from S3 it is streamed."""
    from store.blobs import BlobStore

    a = state(request).archive
    summary = a.resolve(_rid(record_id))
    sha = a.artifact_sha256(summary.record_id, name)
    size = a.blobs.size(sha)
    art = a.manifest(summary.record_id).artifact(name) if "." not in name else None
    media = art.media_type if art else ("application/json" if name == "manifest" else "application/octet-stream")
    ext = {"warc": ".warc.gz", "manifest": ".json", "timestamp": ".tsr", "tsa-chain": ".pem", "text": ".txt",
           "main-text": ".txt", "screenshot": ".png", "pdf": ".pdf", "dom": ".html"}.get(name.split(".")[0], ".bin")
    headers = {"Content-Disposition": f'attachment; filename="{summary.record_id}-{name}{ext}"',
               "Repr-Digest": repr_digest(sha),
               "Accept-Ranges": "bytes", "Cache-Control": "private"}
    if isinstance(a.blobs, BlobStore):
        who = actor(p)
        return _BlobFile(a.blobs.path(sha), headers={**headers, "ETag": f'"{sha}"'}, media_type=media,
                         on_whole=lambda: a.log_get(summary.record_id, name, sha, to="http", actor=who))
    start, end, status = 0, size - 1, 200
    rng = request.headers.get("range")
    if rng:
        m = _RANGE.match(rng.strip())
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start = max(0, size - int(m.group(2)))
            if start >= size or start > end:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}", **headers})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)

    def stream() -> Iterator[bytes]:
        with a.blobs.open(sha) as fh:
            fh.seek(start) if start else None
            left = end - start + 1
            h = hashlib.sha256() if status == 200 else None
            while left > 0:
                chunk = fh.read(min(1 << 20, left))
                if not chunk:
                    break
                left -= len(chunk)
                if h is not None:
                    h.update(chunk)
                yield chunk
            if h is not None and h.hexdigest() != sha:  # the client's Repr-Digest check fails too
                raise IntegrityError(f"artifact {name} of {summary.record_id} is corrupt in the store")
        if h is not None and left == 0:
            a.log_get(summary.record_id, name, sha, to="http", actor=actor(p))

    return StreamingResponse(stream(), status_code=status, media_type=media, headers=headers)


class _BlobFile(FileResponse):
    """A blob sent as a file, calling ``on_whole`` (the custody ``get``) once a whole 200 body is sent.

    Why the messages are watched rather than a background task used: under a server of ASGI spec < 2.4
    (uvicorn) Starlette runs the background task after a client disconnected mid-body too; here only
    the last body message of a 200 (or a ``pathsend``) marks the artifact as handed out."""

    chunk_size = 1 << 20  # read in MiB pieces on the worker thread where the server has no pathsend

    def __init__(self, path: Path, *, headers: dict[str, str], media_type: str, on_whole: Callable[[], None]) -> None:
        super().__init__(path, headers=headers, media_type=media_type)
        self._on_whole = on_whole

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0
        whole = False

        async def watched(message: Message) -> None:
            nonlocal status, whole
            await send(message)
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif status == 200 and scope.get("method") == "GET" and (
                    message["type"] == "http.response.pathsend"
                    or (message["type"] == "http.response.body" and not message.get("more_body", False))):
                whole = True

        await super().__call__(scope, receive, watched)
        if whole:
            await run_in_threadpool(self._on_whole)


@router.post("/records/{record_id}/verify", responses=ok(Verification),
             summary="Run every check now and refresh the cached result (verified: false is still a 200)")
def verify(record_id: str, p: Capturer_, request: Request) -> JSONResponse:
    st = state(request)
    report = st.archive.verify(_rid(record_id), actor=actor(p))
    st.metrics.verification("pass" if report.ok else "fail")
    return body(report)


class UnpublishBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/records/{record_id}/publish", responses=ok(PublicationReport),
             summary="Make a record public at its permalink (a signed addendum; `changed: false` if it already was)")
def publish(record_id: str, p: Capturer_, request: Request) -> JSONResponse:
    return body(set_publication(request, p, _rid(record_id), True))


@router.post("/records/{record_id}/unpublish", responses=ok(PublicationReport),
             summary="Make a record private again, with the reason; its permalink then answers like an unknown ID")
def unpublish(record_id: str, req: UnpublishBody, p: Capturer_, request: Request) -> JSONResponse:
    return body(set_publication(request, p, _rid(record_id), False, req.reason))


@router.get("/records/{record_id}/citation", responses=ok(CitationReport),
            summary="A citation in one style, optionally pinning an exact quote; `verified` is the cached result")
def citation(record_id: str, p: Viewer, request: Request, style: str = "record", quote: str | None = None
             ) -> Response:
    from dataclasses import replace

    from archiver.cite import STYLES, citation_data, render
    from archiver.evidence import VIEWS, json_bytes, view_key
    from archiver.reports import CitationReport, QuoteReport
    from store.search import CachedVerification, cached_verifications

    if style not in STYLES:
        raise UsageError(f"unknown citation style {style!r}", hint="styles: " + ", ".join(STYLES))
    a = state(request).archive

    def make() -> bytes:
        data = citation_data(a, _rid(record_id), quote=quote or None)
        cached = cached_verifications(a.catalog, [data.record_id]).get(data.record_id)
        if key is not None:  # the verdict shown is the one in the cache key, never a later or earlier read
            cached = None if key.verification is None else CachedVerification(
                key.verification[0], key.verification[1], tuple(x for x in key.verification[2].split(",") if x))
        if cached is not None:  # a read shows the last verification; POST …/verify refreshes it
            data = replace(data, verified=cached.ok, verify_detail=f"`archiver verify` at {cached.time}"
                           if cached.ok else f"at {cached.time}: " + ", ".join(cached.failed))
        q = data.quote
        return json_bytes(CitationReport(record_id=data.record_id, style=style, verified=bool(cached and cached.ok),
                                         citation=render(data, style),
                                         quote=QuoteReport(excerpt=q.excerpt, sha256=q.sha256, start=q.start,
                                                           end=q.end, section=q.section, fragment=q.fragment())
                                         if q else None))

    key = view_key(a, _rid(record_id))
    if key is None:
        return _json(make())
    quoted = hashlib.sha256(quote.encode("utf-8")).hexdigest() if quote else None
    return _json(VIEWS.remember(("citation", key.digest, style, quoted), make))


class CertificateBody(BaseModel):
    record_ids: list[str] = Field(min_length=1, max_length=200)
    declarant: str = Field(min_length=1, max_length=200)
    title: str = Field(default="", max_length=200)
    org: str = Field(default="", max_length=200)
    format: str = Field(default="pdf", pattern="^(md|html|pdf)$")


@router.post("/certificates", summary="Certificate of authenticity (FRE 902(13)/(14)) as a download",
             responses={200: {"description": "The certificate", "content": {"application/pdf": {}, "text/html": {},
                                                                            "text/markdown": {}}}, **PROBLEMS})
def certificate(req: CertificateBody, p: ViewerBytes, request: Request) -> Response:
    return certificate_download(request, p, [_rid(r) for r in req.record_ids], declarant=req.declarant,
                                title=req.title, org=req.org, fmt=req.format)


class ExportBody(BaseModel):
    record_ids: list[str] = Field(min_length=1, max_length=500)


@router.post("/exports", summary="A self-verifying WACZ bundle of records, as a download",
             responses={200: {"description": "The bundle", "content": {"application/wacz": {}}}, **PROBLEMS})
def export(req: ExportBody, p: CapturerBytes, request: Request) -> Response:
    return export_download(request, p, [_rid(r) for r in req.record_ids])


# ---- captures ------------------------------------------------------------------------------------
class CaptureBody(BaseModel):
    url: str = Field(min_length=1, max_length=8192)
    entity: str | None = Field(default=None, max_length=500)
    document: str | None = Field(default=None, max_length=500)
    browser: bool = False
    wayback: bool = False
    allow_status: bool = False


@router.post("/captures", status_code=202, responses=ok(JobAccepted, status=202),
             summary="Queue a capture; poll status_url")
def capture(req: CaptureBody, p: Capturer_, request: Request) -> JSONResponse:
    job = submit_capture(request, p, CaptureRequest(url=req.url, entity=req.entity, document=req.document,
                                                     browser=req.browser, wayback=req.wayback,
                                                     allow_status=req.allow_status))
    return body(JobAccepted(job=job.job, status=job.status, status_url=f"/api/v1/captures/{job.job}"), status=202)


@router.get("/captures/{job}", responses=ok(CaptureJob), summary="A capture job's status")
def capture_status(job: str, p: Viewer, request: Request) -> JSONResponse:
    return body(state(request).runner.get(job))


# ---- lookups and verification of outside files ---------------------------------------------------
@router.get("/lookup", responses=ok(ArtifactMatch, many=True), summary="Which records hold a file with this SHA-256")
def lookup(sha256: str, p: Viewer, request: Request) -> JSONResponse:
    return body(state(request).archive.lookup(sha256))


@router.post("/verify-file", responses=ok(FileVerification),
             summary="Upload a file (multipart field `file`): hashed as it streams in, never kept; each match "
                     "shows its cached verification (`failed_checks: [not-yet-verified]` until the server's "
                     "background refresh or POST …/verify reaches it)")
async def verify_file(request: Request, p: Viewer) -> JSONResponse:
    st = state(request)
    up = await receive_upload(request, st.archive.config.int_("web.max_upload_bytes"), keep=False)

    matches = await run_in_threadpool(cached_matches, st.archive, up.sha256)
    return body(FileVerification(filename=up.filename, sha256=up.sha256, size=up.size, matches=matches))


@router.post("/verify-bundle", responses={**ok(BundleReport), **BUSY},
             summary="Upload a .wacz bundle (multipart field `file`) and verify it against this store's trust, in a "
                     "process of its own capped in memory and time (422 when over a cap; 503 with Retry-After when "
                     "every verification slot is busy)")
async def verify_bundle(request: Request, p: Viewer) -> JSONResponse:
    from archiver.web.bundlework import VerificationRefused

    st = state(request)
    up = await receive_upload(request, st.archive.config.int_("web.max_upload_bytes"), keep=True,
                              tmp_dir=st.archive.root / "tmp")
    try:
        report = await bundle_report(request, up.path, up.filename)
    except VerificationRefused as exc:
        return refused(exc)
    finally:
        if up.path is not None:
            up.path.unlink(missing_ok=True)
    return body(report)


# ---- watching ------------------------------------------------------------------------------------
@router.get("/watches", responses=ok(Watch, many=True), summary="The watch list")
def watches(p: Viewer, request: Request) -> JSONResponse:
    return body(state(request).archive.watches.all())


class WatchBody(BaseModel):
    url: str = Field(min_length=1, max_length=8192)
    every: str = Field(default="1d", max_length=20)
    entity: str | None = Field(default=None, max_length=500)
    document: str | None = Field(default=None, max_length=500)


@router.post("/watches", status_code=201, responses=ok(Watch, status=201),
             summary="Watch a URL")
def add_watch(req: WatchBody, p: Capturer_, request: Request) -> JSONResponse:
    a = state(request).archive
    w = a.watches.add(req.url, entity=req.entity, document=req.document, every=req.every, actor=actor(p))
    return body(w, status=201)


class WatchUpdateBody(BaseModel):
    """Fields left out keep their value; an empty list of rules clears them (select: automatic text)."""

    url: str = Field(min_length=1, max_length=8192)
    select: list[Annotated[str, Field(max_length=2000)]] | None = Field(default=None, max_length=50)
    remove: list[Annotated[str, Field(max_length=2000)]] | None = Field(default=None, max_length=50)
    every: str | None = Field(default=None, max_length=20)
    entity: str | None = Field(default=None, max_length=500)
    document: str | None = Field(default=None, max_length=500)


@router.patch("/watches", responses=ok(WatchUpdate),
              summary="Change a watch's declaration: a new version in its history and a watch-update custody "
                      "entry; new rules re-derive the previous version's text (a signed addendum)")
def update_watch(req: WatchUpdateBody, p: Capturer_, request: Request) -> JSONResponse:
    from archiver.api import env_passphrase

    a = state(request).archive
    res = a.watches.update(req.url, select=None if req.select is None else tuple(req.select),
                           remove=None if req.remove is None else tuple(req.remove), every=req.every,
                           entity=req.entity, document=req.document, passphrase=env_passphrase, actor=actor(p))
    return body(res)


@router.delete("/watches", status_code=204, responses={204: {"description": "No longer watched"}, **PROBLEMS},
               summary="Stop watching a URL (its records stay)")
def remove_watch(url: str, p: Capturer_, request: Request) -> Response:
    a = state(request).archive
    a.watches.remove(url, actor=actor(p))
    return Response(status_code=204)


@router.get("/history", responses=ok(HistoryReport),
            summary="Versions of a watched document")
def history(url: str, p: Viewer, request: Request) -> JSONResponse:
    return body(state(request).archive.watches.history(url))


@router.get("/diff/{a}/{b}", responses=ok(DiffReport),
            summary="What changed between two records, section by section")
def diff(a: str, b: str, p: Viewer, request: Request, sections: bool = True) -> JSONResponse:
    from archiver.monitor import compared_texts, diff_report

    arch = state(request).archive
    ra, rb = arch.resolve(_rid(a)), arch.resolve(_rid(b))
    ta, tb = compared_texts(arch, ra.record_id, rb.record_id)
    return body(diff_report(arch, ra.record_id, rb.record_id, ta, tb))


# ---- administration ------------------------------------------------------------------------------
@router.get("/tokens", responses=ok(TokenInfo, many=True), summary="Access tokens (never their secrets)")
def tokens(p: Admin, request: Request) -> JSONResponse:
    return body(state(request).archive.tokens.all())


class TokenBody(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: str = Field(default="viewer", pattern="^(viewer|capturer|admin)$")
    expires: str | None = Field(default=None, max_length=20)


@router.post("/tokens", status_code=201, responses=ok(NewToken, status=201),
             summary="Create a token; its secret is in this answer only")
def new_token(req: TokenBody, p: Admin, request: Request) -> JSONResponse:
    a = state(request).archive
    return body(a.tokens.create(req.name, req.role, expires=req.expires, actor=actor(p)), status=201)


@router.delete("/tokens/{name}", responses=ok(TokenInfo), summary="Revoke a token")
def delete_token(name: str, p: Admin, request: Request) -> JSONResponse:
    a = state(request).archive
    return body(a.tokens.revoke(name, actor=actor(p)))


@router.get("/settings", responses=ok(Settings), summary="The store's settings")
def settings(p: Admin, request: Request) -> JSONResponse:
    from archiver.reports import Settings

    return body(Settings({k: v for k, v, _ in state(request).archive.config.items()}))


__all__ = ["EXTRA_MODELS", "router"]
