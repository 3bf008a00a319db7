"""The ASGI app of ``archiver serve``: a thin front-end over the ``Archive`` facade, like the CLI.

Routes parse, authorize, call the facade and render; JSON bodies are the records' own ``to_dict()``
(the same model as the CLI's ``--json``), errors are RFC 9457 problem details mapped from the same
error classes as the CLI's exit codes. ``create_app(archive)`` is the factory; ``serve.py`` runs it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from archiver.access import Role, authenticate, require, token_by_name
from archiver.errors import (
    AccessError,
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
)
from archiver.jobs import JobRunner
from archiver.schema import json_schema
from archiver.web.metrics import Metrics
from archiver.web.security import (
    COOKIE,
    CSP,
    HEADERS,
    SAFE_METHODS,
    Principal,
    RateLimiter,
    SessionSigner,
    csrf_ok,
    server_secret,
)

if TYPE_CHECKING:
    from archiver.api import Archive

PROBLEM = "application/problem+json"
WEB_DIR = __import__("pathlib").Path(__file__).parent


@dataclass
class WebState:
    archive: Archive
    runner: JobRunner
    signer: SessionSigner
    limiter: RateLimiter
    metrics: Metrics
    public_verify: bool
    schemas: dict[str, Any]


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


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "hint": {"type": "string"}, "exit_code": {"type": "integer"}},
}


def state(request: Request) -> WebState:
    st: WebState = request.app.state.web
    return st


def principal(request: Request) -> Principal:
    """Bearer token or browser session; CSRF enforced for session requests that change something."""
    st = state(request)
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationError("only `Authorization: Bearer <token>` is accepted")
        return Principal(authenticate(st.archive, cred.strip()))
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise AuthenticationError("no access token")
    sess = st.signer.load(cookie)
    p = Principal(token_by_name(st.archive, sess.token_name), sess)
    if request.method not in SAFE_METHODS and request.url.path.startswith("/api/") and \
            not csrf_ok(sess, request.headers.get("x-csrf-token")):
        raise PermissionDeniedError("missing or wrong CSRF token (send the X-CSRF-Token header)")
    return p


def needs(role: Role) -> Callable[[Request], Principal]:
    def dep(request: Request) -> Principal:
        p = principal(request)
        require(p.token, role)
        return p

    return dep


def create_app(archive: Archive, *, workers: int = 2, public_verify: bool = False, start_jobs: bool = True) -> FastAPI:
    import swagger_ui  # swagger-ui-py: ships Swagger UI 5 (OpenAPI 3.1) as static files; no CDN

    from archiver.models import MODELS
    from archiver.web import api, pages

    app = FastAPI(title="archiver", version=__import__("archiver").__version__,
                  description="Evidence archival and provenance: capture, verify, cite. Bodies are the same typed "
                              "records as the CLI's --json; errors are RFC 9457 problem details.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    runner = JobRunner(archive, api.job_runner_fn(archive), workers=workers)
    st = WebState(archive=archive, runner=runner,
                  signer=SessionSigner(server_secret(archive.root), archive.config.int_("web.session_hours")),
                  limiter=RateLimiter(archive.config.int_("web.captures_per_minute")), metrics=Metrics(),
                  public_verify=public_verify, schemas={})
    app.state.web = st
    if start_jobs:
        runner.resume()

    @app.middleware("http")
    async def headers_and_metrics(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        response.headers.setdefault("Content-Security-Policy", CSP)
        route = request.scope.get("route")
        st.metrics.observe(request.method, getattr(route, "path", "unmatched"), response.status_code,
                           time.perf_counter() - started)
        return response

    @app.exception_handler(ArchiverError)
    async def archiver_error(request: Request, exc: ArchiverError) -> Response:
        status = status_for(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimitError):
            headers["Retry-After"] = str(exc.retry_after)
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="archiver"'
            if not request.url.path.startswith("/api/") and request.method in SAFE_METHODS:
                return pages.login_redirect(request)
        if isinstance(exc, AccessError) and not request.url.path.startswith("/api/"):
            return pages.error_page(request, status, exc)
        return problem(status, type(exc).__name__, exc.message, hint=exc.hint, headers=headers,
                       exit_code=exc.exit_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = ["/".join(str(x) for x in e.get("loc", ())) + ": " + str(e.get("msg", "")) for e in exc.errors()]
        return problem(422, "RequestValidationError", "; ".join(parts) or "invalid request", exit_code=2)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, "HTTPException", str(exc.detail), headers=dict(exc.headers or {}))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        archive.catalog.count()
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False, response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(st.metrics.render(runner.depth()), media_type="text/plain; version=0.0.4")

    swagger_static = __import__("pathlib").Path(swagger_ui.__file__).parent / "static"
    app.mount("/api/docs/assets", StaticFiles(directory=swagger_static), name="swagger-assets")
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")

    @app.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        # Swagger UI sets inline styles from its script: allow those (and only those) on this one page
        return HTMLResponse(DOCS_HTML, headers={"Content-Security-Policy": CSP.replace(
            "style-src 'self'", "style-src 'self' 'unsafe-inline'")})

    @app.get("/api/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(DOCS_JS, media_type="text/javascript")

    app.include_router(api.router)
    app.include_router(pages.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for cls in {*MODELS.values(), *api.EXTRA_MODELS}:
            schema = json_schema(cls)
            defs = schema.pop("$defs", {})
            for name, body in defs.items():
                components[name] = _rebase(body)
        components["Problem"] = PROBLEM_SCHEMA
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        spec["security"] = [{"bearer": []}]
        app.openapi_schema = _rebase(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _rebase(node: Any) -> Any:
    """Our schemas refer to ``#/$defs/X``; inside OpenAPI they live at ``#/components/schemas/X``."""
    if isinstance(node, dict):
        return {k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" and isinstance(v, str)
                    else _rebase(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>archiver API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>
"""
DOCS_JS = """window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true});\n"""

__all__ = ["PROBLEM", "WebState", "create_app", "needs", "principal", "problem", "state", "status_for"]
