"""The bottom of the web front-end: its state, who is asking, what each route allows, and the acts
the routers share.

Routers (``api.py``, ``pages.py``) import this module and the library, never each other; ``app.py``
composes them. Every route declares a :class:`Policy` by taking a :class:`Guard` as a dependency
(``p: ApiViewer``): the guard both enforces the policy and carries it, so ``policies(app)`` reads it
off the route object and a test fails on any route that declares none (deny by default). A mount
(static files) declares its policy with :func:`declare`. The policy also decides the response's
security headers (page, JSON, or captured bytes).

Every act a route performs for a person goes through :func:`acting`, the one place that tells the
library who acts; the custody entries themselves are written by the library, so the CLI, a page
and the API log the same event for the same act.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from archiver.access import Role, authenticate, issue_login_code, require, take_login_code, token_by_name
from archiver.errors import (
    ArchiverError,
    AuthenticationError,
    CaptureError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    QuoteNotFoundError,
    RateLimitError,
    RemoteServiceError,
    StoreError,
    UsageError,
)
from archiver.reports import BundleReport, MatchVerification
from archiver.web.security import (
    API_CSP,
    CAPTURED_CSP,
    COOKIE,
    CSP,
    HEADERS,
    SAFE_METHODS,
    Principal,
    RateLimiter,
    SessionSigner,
    SharedRateLimiter,
    csrf_ok,
)

if TYPE_CHECKING:
    from archiver.api import Archive
    from archiver.jobs import CaptureJob, CaptureRequest, JobRunner, RunFn
    from archiver.publication import PublicationReport
    from archiver.records import RecordSummary
    from archiver.web.bundlework import BundleVerifier, VerificationRefused
    from archiver.web.metrics import Metrics

PROBLEM = "application/problem+json"
WEB_DIR = Path(__file__).parent
#: What a record that the background refresh has not reached yet says in place of its failed checks.
NOT_YET_VERIFIED = "not-yet-verified"


@dataclass
class WebState:
    archive: Archive
    runner: JobRunner
    signer: SessionSigner
    limiter: RateLimiter | SharedRateLimiter  # captures, per token (shared by every process: the catalog)
    metrics: Metrics
    public_verify: bool
    schemas: dict[str, Any]
    public_limiter: RateLimiter  # anonymous hash lookups on a --public-verify server, per client address
    verifier: BundleVerifier  # uploaded bundles, verified in bounded child processes
    #: The replay origin's base URL (``archiver serve --replay-port``, ``web.replay_url``), or None when
    #: replay is not set up: public pages frame ``<replay_url>/embed/<ID>`` (web/replay.py).
    replay_url: str | None = None
    #: Seconds a successful token check is reused by this process (``web.token_cache_seconds``).
    token_ttl: float = 0.0


def state(request: Request) -> WebState:
    st: WebState = request.app.state.web
    return st


# ---- errors as problem details -------------------------------------------------------------------
def status_for(exc: ArchiverError) -> int:
    """The HTTP status of an error class: the same causes as the CLI's exit codes."""
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, RateLimitError):
        return 429
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, QuoteNotFoundError):
        return 422
    if isinstance(exc, IntegrityError):
        return 409  # stored bytes no longer match their hash: verify says which
    if isinstance(exc, CaptureError | RemoteServiceError):
        return 502
    if isinstance(exc, StoreError):
        return 503
    return 400


def problem(status: int, title: str, detail: str, *, hint: str = "", headers: dict[str, str] | None = None,
            exit_code: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": f"https://archiver.invalid/problems/{status}", "title": title,
                            "status": status, "detail": detail}
    if hint:
        body["hint"] = hint
    if exit_code is not None:
        body["exit_code"] = exit_code
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def refused(exc: VerificationRefused) -> JSONResponse:
    """A bundle upload that was not verified (busy, over a cap, server stopping) as problem details."""
    title = {503: "ServiceUnavailable", 500: "VerificationFailed"}.get(exc.status, "BundleRefused")
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return problem(exc.status, title, exc.detail, headers=headers)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "hint": {"type": "string"}, "exit_code": {"type": "integer"}},
}


# ---- who is asking -------------------------------------------------------------------------------
def principal(request: Request) -> Principal:
    """Bearer token or browser session; CSRF enforced for session requests to the API that change something."""
    st = state(request)
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationError("only `Authorization: Bearer <token>` is accepted")
        return Principal(authenticate(st.archive, cred.strip(), ttl=st.token_ttl))
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise AuthenticationError("no access token")
    sess = st.signer.load(cookie)
    p = Principal(token_by_name(st.archive, sess.token_name, ttl=st.token_ttl), sess)
    if request.method not in SAFE_METHODS and request.url.path.startswith("/api/") and \
            not csrf_ok(sess, request.headers.get("x-csrf-token")):
        raise PermissionDeniedError("missing or wrong CSRF token (send the X-CSRF-Token header)")
    return p


def optional_principal(request: Request) -> Principal | None:
    try:
        return principal(request)
    except ArchiverError:
        return None


def actor(who: Principal) -> str:
    """Who acts, as custody names it: the token's name. Every act the web performs passes this to the
    library as ``actor=`` (an argument, never ambient state), so its custody entries name the person."""
    return who.token.name


# ---- policies: deny by default -------------------------------------------------------------------
class Access(str, Enum):
    """Who may call a route. ``public-verify``: anyone when the server runs with ``--public-verify``,
    else a viewer."""

    PUBLIC = "public"
    PUBLIC_VERIFY = "public-verify"
    VIEWER = "viewer"
    CAPTURER = "capturer"
    ADMIN = "admin"

    def role(self, public_verify: bool) -> Role | None:
        """The least role needed, or None when no token is needed."""
        if self is Access.PUBLIC or (self is Access.PUBLIC_VERIFY and public_verify):
            return None
        return {Access.PUBLIC_VERIFY: Role.VIEWER, Access.VIEWER: Role.VIEWER, Access.CAPTURER: Role.CAPTURER,
                Access.ADMIN: Role.ADMIN}[self]


class Kind(str, Enum):
    """What a route answers, which decides its security headers."""

    PAGE = "page"  # HTML of this origin: our script and stylesheet only, never framed
    API = "api"  # JSON (or text) for programs
    DOWNLOAD = "download"  # captured or produced bytes: attachment, nosniff, a sandbox CSP
    STATIC = "static"  # our own stylesheet, script and the bundled Swagger UI


@dataclass(frozen=True, slots=True)
class Policy:
    access: Access
    kind: Kind
    #: The custody event a GET of this route appends (an artifact handed out whole is a ``get``, as in
    #: the CLI); every other GET writes nothing.
    logs: str | None = None

    def __str__(self) -> str:
        return f"{self.access.value}/{self.kind.value}" + (f" (logs {self.logs})" if self.logs else "")


class Guard:
    """A route's policy as a dependency: FastAPI calls it before the route, a test reads ``.policy``."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def __repr__(self) -> str:
        return f"Guard({self.policy})"

    def __call__(self, request: Request) -> Principal | None:
        st = state(request)
        needed = self.policy.access.role(st.public_verify)
        if needed is None:
            # a public route still knows a logged-in user (the verify page shows the menu), never requires one
            return optional_principal(request) if self.policy.access is Access.PUBLIC_VERIFY else None
        p = principal(request)
        require(p.token, needed)
        return p


class PublicGuard(Guard):
    """The guard of a route anyone may call: nothing to check, so it runs on the event loop instead of
    costing a thread hop (the public record pages answer most of an archive's anonymous traffic)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


def guard(access: Access, kind: Kind, logs: str | None = None) -> Guard:
    return (PublicGuard if access is Access.PUBLIC and logs is None else Guard)(Policy(access, kind, logs))


POLICY_ATTR = "archiver_policy"


def declare(obj: Any, policy: Policy) -> Any:
    """Declare the policy of something that takes no dependencies (a mounted app, such as static files).
    Nothing would enforce a role there, so only a public policy can be declared this way."""
    if policy.access is not Access.PUBLIC:
        raise ValueError(f"a mount cannot enforce {policy}: serve it from a route with a guard")
    setattr(obj, POLICY_ATTR, policy)
    return obj


def policy_of(route: Any) -> Policy | None:
    """The policy a route declares: its one Guard dependency, or a declared mount; None if none (or two)."""
    route = getattr(route, "original_route", route)  # FastAPI's view of a route inside an included router
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # a mount: only what declare() set
        declared: Policy | None = getattr(route, POLICY_ATTR, None)
        return declared
    found: list[Policy] = []
    todo = [dependant]
    while todo:
        d = todo.pop()
        if isinstance(d.call, Guard):
            found.append(d.call.policy)
        todo.extend(d.dependencies)
    return found[0] if len(found) == 1 else None


def policies(routes: list[Any]) -> list[tuple[str, frozenset[str], Policy | None]]:
    """(path, methods, policy) of every route and mount, in order: what the route-walk test reads."""
    from fastapi.routing import iter_route_contexts  # the routes of included routers, with their prefixes

    out = []
    for r in iter_route_contexts(routes):
        methods = frozenset(r.methods or {"GET"})
        out.append((str(r.path), methods, policy_of(r.original_route)))
    return out


def policy_for_scope(scope: MutableMapping[str, Any]) -> Policy | None:
    """The policy of the route that answered a request (middleware: security headers)."""
    route = scope.get("route")
    if route is not None:
        return policy_of(route)
    return getattr(scope.get("endpoint"), POLICY_ATTR, None)


def security_headers(policy: Policy | None, response: Response) -> None:
    """Headers by kind: pages and JSON keep what a route set; downloads always get attachment, nosniff
    and the sandbox CSP, whatever the route did (a route cannot forget them)."""
    for k, v in HEADERS.items():
        response.headers.setdefault(k, v)
    kind = policy.kind if policy is not None else Kind.API
    if kind is Kind.DOWNLOAD:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = CAPTURED_CSP
        if response.status_code < 300 and not response.headers.get("content-disposition", "").startswith(
                "attachment"):
            response.headers["Content-Disposition"] = "attachment"
        response.headers.setdefault("Cache-Control", "private")
    else:
        response.headers.setdefault("Content-Security-Policy", API_CSP if kind is Kind.API else CSP)


Public = Annotated[None, Depends(guard(Access.PUBLIC, Kind.API))]
PublicPage = Annotated[None, Depends(guard(Access.PUBLIC, Kind.PAGE))]
PublicVerifyPage = Annotated[Principal | None, Depends(guard(Access.PUBLIC_VERIFY, Kind.PAGE))]
ApiViewer = Annotated[Principal, Depends(guard(Access.VIEWER, Kind.API))]
ApiCapturer = Annotated[Principal, Depends(guard(Access.CAPTURER, Kind.API))]
ApiAdmin = Annotated[Principal, Depends(guard(Access.ADMIN, Kind.API))]
ViewerDownload = Annotated[Principal, Depends(guard(Access.VIEWER, Kind.DOWNLOAD, logs="get"))]
ViewerBytes = Annotated[Principal, Depends(guard(Access.VIEWER, Kind.DOWNLOAD))]  # produced or shown, not a get
CapturerBytes = Annotated[Principal, Depends(guard(Access.CAPTURER, Kind.DOWNLOAD))]
CapturerExport = Annotated[Principal, Depends(guard(Access.CAPTURER, Kind.DOWNLOAD, logs="export"))]
ViewerPage = Annotated[Principal, Depends(guard(Access.VIEWER, Kind.PAGE))]
CapturerPage = Annotated[Principal, Depends(guard(Access.CAPTURER, Kind.PAGE))]


def check_public_rate(request: Request, p: Principal | None) -> None:
    """Anonymous lookups on a --public-verify server are rate-limited per client address."""
    if p is None:
        host = request.client.host if request.client else "unknown"
        state(request).public_limiter.take(host)


# ---- one-time login codes (printed by `archiver serve`; kept in the catalog for every process) ----
def one_time_login(st: WebState, token_name: str, ttl: float = 600.0) -> str:
    return issue_login_code(st.archive, token_name, ttl)


def take_one_time(st: WebState, code: str) -> str | None:
    """The token name of a valid code, used up; None for a used, expired or unknown one."""
    return take_login_code(st.archive, code)


# ---- acts and reads shared by the API and the pages ----------------------------------------------
def parse_cursor(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    try:
        captured, _, rid = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().partition("|")
    except (ValueError, UnicodeDecodeError):
        raise UsageError("invalid cursor") from None
    if not captured or not rid:
        raise UsageError("invalid cursor")
    return captured, rid


def cursor_of(row: RecordSummary) -> str:
    return base64.urlsafe_b64encode(f"{row.captured_at}|{row.record_id}".encode()).decode().rstrip("=")


def job_runner_fn(archive: Archive) -> RunFn:
    """How a job captures: the facade, as the token that asked, through the same SSRF guard as the CLI."""

    def run(req: CaptureRequest, job_key: str, actor: str) -> str:
        from archiver.options import BrowserOptions, CaptureOptions

        opts = CaptureOptions(entity=req.entity, document=req.document, allow_status=req.allow_status,
                              browser=BrowserOptions() if req.browser else None, job_key=job_key)
        m = archive.capture(req.url, opts, actor=actor)  # the job's actor: the token that asked
        if req.wayback:
            from archiver.errors import WaybackError

            try:
                archive.wayback(m.record_id, save=True, actor=actor)
            except WaybackError:
                pass  # the capture stands; the Wayback verdict stays "not checked"
        return m.record_id

    return run


def submit_capture(request: Request, p: Principal, req: CaptureRequest) -> CaptureJob:
    st = state(request)
    st.limiter.take(p.token.name)
    return st.runner.submit(req, actor(p))


def cached_matches(a: Archive, sha: str) -> tuple[MatchVerification, ...]:
    """The records holding these bytes and their *cached* verification: a lookup, never a re-hash."""
    from store.search import cached_verifications

    found = a.lookup(sha)
    cached = cached_verifications(a.catalog, sorted({m.record_id for m in found}))
    out = []
    for m in found:
        c = cached.get(m.record_id)
        out.append(MatchVerification(m.record_id, m.artifact, m.url, m.captured_at, bool(c and c.ok),
                                     (c.failed if c else (NOT_YET_VERIFIED,))))
    return tuple(out)


async def bundle_report(request: Request, path: Path | None, filename: str | None) -> BundleReport:
    """The uploaded bundle at ``path`` verified in a bounded child process (``web.bundlework``): at most
    ``web.verify_workers`` at once, capped in memory and time, killed when the server stops. A refusal
    is raised as ``VerificationRefused`` (its status and one line); the caller removes ``path``."""
    from starlette.concurrency import run_in_threadpool

    assert path is not None
    report: BundleReport = await run_in_threadpool(state(request).verifier.verify, path, filename)
    return report


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            yield chunk


def repr_digest(sha256_hex: str) -> str:
    """RFC 9530 ``Repr-Digest``: the SHA-256 of the representation, as a structured-field byte sequence."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"


def export_download(request: Request, p: Principal, record_ids: list[str]) -> Response:
    """A WACZ bundle of records as a download; the library logs ``export`` for each, as the CLI's export.
    An export made by a GET (the record page's link) signs no log checkpoint: a GET writes no catalog row."""
    from archiver.api import env_passphrase

    a = state(request).archive
    tmp = Path(tempfile.mkdtemp(prefix="archiver-export-", dir=a.root / "tmp" if (a.root / "tmp").is_dir() else None))
    dest = tmp / "evidence.wacz"
    try:
        result = a.bundles.export(record_ids, dest, passphrase=env_passphrase, actor=actor(p),
                                  sign_checkpoint=request.method != "GET")
    except BaseException:
        dest.unlink(missing_ok=True)
        tmp.rmdir()
        raise

    def cleanup() -> None:
        dest.unlink(missing_ok=True)
        tmp.rmdir()

    return StreamingResponse(file_chunks(dest), media_type="application/wacz", background=BackgroundTask(cleanup),
                             headers={"Content-Disposition": 'attachment; filename="evidence.wacz"',
                                      "Content-Length": str(result.size), "Repr-Digest": repr_digest(result.sha256)})


def set_publication(request: Request, p: Principal, record_id: str, public: bool,
                    reason: str = "") -> PublicationReport:
    """Publish or unpublish one record for a person (a page's button or the API): the library signs the
    addendum and logs ``publish``/``unpublish`` naming the token, as the CLI's commands do."""
    from archiver.api import env_passphrase

    a = state(request).archive
    if public:
        [report] = a.publications.publish([record_id], actor=actor(p), passphrase=env_passphrase)
    else:
        [report] = a.publications.unpublish([record_id], reason=reason, actor=actor(p), passphrase=env_passphrase)
    return report


CERTIFICATE_MEDIA = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def certificate_download(request: Request, p: Principal, record_ids: list[str], *, declarant: str, title: str,
                         org: str, fmt: str) -> Response:
    """A certificate of authenticity as a download; the library logs ``certificate`` for each record."""
    from archiver.cite import certificate as cert_mod

    a = state(request).archive
    cert = cert_mod.build(a, record_ids, declarant=declarant, title=title, organization=org)
    data = cert_mod.render(cert, fmt)
    cert_mod.log_issued(a, cert, fmt, to="http", actor=actor(p))
    return Response(data, media_type=CERTIFICATE_MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="certificate.{fmt}"'})


def responses_for(cls: type, *, many: bool = False, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of a JSON route answering ``cls`` (its schema is registered by the app from
    ``archiver.models``) or an RFC 9457 problem: what schemathesis checks every answer against."""
    ref: dict[str, Any] = {"$ref": f"#/components/schemas/{cls.__name__}"}
    schema = {"type": "array", "items": ref} if many else ref
    return {status: {"description": cls.__doc__.strip().split("\n")[0] if cls.__doc__ else cls.__name__,
                     "content": {"application/json": {"schema": schema}}},
            "4XX": {"description": "Problem details (RFC 9457)",
                    "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


def page_context(request: Request, who: Principal, nav: str, **kw: Any) -> dict[str, Any]:
    """What every signed-in page's template (``base.html``) needs: who is asking, the form token, the
    nav item. One place, so a router's pages and the main pages show the same header."""
    from archiver._version import __version__

    user = {"name": who.token.name, "role": who.token.role.value, "can_capture": who.token.role.allows(Role.CAPTURER),
            "is_admin": who.token.role.allows(Role.ADMIN)}
    return {"request": request, "user": user, "csrf_token": who.session.csrf if who.session else "",
            "static_url": "/static", "version": __version__, "nav": nav, "public": False, **kw}


__all__ = [
    "NOT_YET_VERIFIED",
    "PROBLEM",
    "PROBLEM_SCHEMA",
    "WEB_DIR",
    "Access",
    "ApiAdmin",
    "ApiCapturer",
    "ApiViewer",
    "CapturerBytes",
    "CapturerExport",
    "CapturerPage",
    "Guard",
    "Kind",
    "Policy",
    "Public",
    "PublicPage",
    "PublicVerifyPage",
    "ViewerBytes",
    "ViewerDownload",
    "ViewerPage",
    "WebState",
    "actor",
    "bundle_report",
    "cached_matches",
    "certificate_download",
    "check_public_rate",
    "cursor_of",
    "declare",
    "export_download",
    "guard",
    "job_runner_fn",
    "one_time_login",
    "optional_principal",
    "page_context",
    "parse_cursor",
    "policies",
    "policy_for_scope",
    "policy_of",
    "principal",
    "problem",
    "refused",
    "repr_digest",
    "security_headers",
    "set_publication",
    "state",
    "status_for",
    "submit_capture",
    "take_one_time",
]
