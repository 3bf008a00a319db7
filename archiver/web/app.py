"""The ASGI app of ``archiver serve``: a thin front-end over the ``Archive`` facade, like the CLI.

Routes parse, authorize, call the facade and render; JSON bodies are the records' own ``to_dict()``
(the same model as the CLI's ``--json``), errors are RFC 9457 problem details mapped from the same
error classes as the CLI's exit codes. ``create_app(archive)`` is the factory; ``serve.py`` runs it.

This module composes: it builds the state (``deps.WebState``), includes the routers (``api``, ``memento``,
``pages``), mounts the static files and declares their policy, and sets each response's security
headers from the policy of the route that answered. Nothing below imports it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from archiver.alerts.delivery import deliver_quietly
from archiver.errors import AccessError, ArchiverError, RateLimitError
from archiver.jobs import JobRunner, refresh_verifications
from archiver.schema import json_schema
from archiver.web.bundlework import BundleVerifier
from archiver.web.deps import (
    PROBLEM,
    PROBLEM_SCHEMA,
    WEB_DIR,
    Access,
    Kind,
    Policy,
    Public,
    PublicPage,
    WebState,
    declare,
    guard,
    job_runner_fn,
    policy_for_scope,
    problem,
    security_headers,
    state,
    status_for,
)
from archiver.web.metrics import Metrics
from archiver.web.security import CSP, SAFE_METHODS, RateLimiter, SessionSigner, SharedRateLimiter, server_secret

if TYPE_CHECKING:
    from archiver.api import Archive

#: Our stylesheet and script, and the bundled Swagger UI: no evidence, served to anyone.
STATIC = Policy(Access.PUBLIC, Kind.STATIC)
#: Anonymous hash lookups a --public-verify server answers per client address and minute.
PUBLIC_LOOKUPS_PER_MINUTE = 30
#: How often the server brings the search index up to date (seconds).
FULLTEXT_EVERY = 5.0
#: The background verification refresh: a round every REFRESH_EVERY seconds of at most REFRESH_BATCH records.
REFRESH_EVERY = 60.0
REFRESH_BATCH = 20
#: Seconds between two rounds of the alert deliverer (due webhook and mail deliveries, with backoff).
DELIVER_EVERY = 30.0
DocsScript = Annotated[None, Depends(guard(Access.PUBLIC, Kind.STATIC))]


def create_app(archive: Archive, *, workers: int = 2, public_verify: bool = False, start_jobs: bool = True,
               refresh_every: float = REFRESH_EVERY, refresh_batch: int = REFRESH_BATCH,
               public_lookups_per_minute: int = PUBLIC_LOOKUPS_PER_MINUTE, replay_url: str | None = None) -> FastAPI:
    """The app over ``archive``. With ``start_jobs`` it takes part in the store's shared capture jobs at
    once (claiming queued ones and those whose claimant died: ``jobs.JobRunner``) and keeps the
    verification cache fresh in the background (``refresh_batch`` records every ``refresh_every`` s, in
    one process of the site at a time); without, it claims jobs from its first submission on.
    ``replay_url``: the replay origin public pages frame (``serve.py`` runs it), None without replay."""
    import swagger_ui  # swagger-ui-py: ships Swagger UI 5 (OpenAPI 3.1) as static files; no CDN

    from archiver.models import MODELS
    from archiver.web import (
        alert_routes,
        api,
        collection_pages,
        exhibit_pages,
        logroutes,
        matter_pages,
        memento,
        pages,
        provision_pages,
        public,
        search_pages,
    )

    # the OpenAPI document is served by a route of ours below, so that it declares its policy too
    app = FastAPI(title="archiver", version=__import__("archiver").__version__,
                  description="Evidence archival and provenance: capture, verify, cite. Bodies are the same typed "
                              "records as the CLI's --json; errors are RFC 9457 problem details.",
                  openapi_url=None, docs_url=None, redoc_url=None)
    runner = JobRunner(archive, job_runner_fn(archive), workers=workers,
                       lease=archive.config.float_("web.job_lease_seconds"))
    # what a request may meet on another process or machine of the site lives in the catalog: the
    # cookie key and the capture counters (security.py); the lookup limiter guards GETs, which never
    # write, so it stays per process
    st = WebState(archive=archive, runner=runner,
                  signer=SessionSigner(server_secret(archive.root, archive.catalog),
                                       archive.config.int_("web.session_hours")),
                  limiter=SharedRateLimiter(archive.catalog, archive.config.int_("web.captures_per_minute")),
                  metrics=Metrics(), public_verify=public_verify, schemas={},
                  public_limiter=RateLimiter(public_lookups_per_minute, what="hash lookups"),
                  verifier=BundleVerifier(archive.root, archive.config), replay_url=replay_url,
                  token_ttl=archive.config.float_("web.token_cache_seconds"))
    app.state.web = st
    if start_jobs:
        runner.resume()
        runner.repeat(refresh_every, lambda: refresh_verifications(archive, refresh_batch), "verify-refresh")
        # the search index follows the outbox here, since a search (a GET) never writes
        runner.repeat(FULLTEXT_EVERY, archive.fulltext.sync, "fulltext-sync")
        runner.repeat(DELIVER_EVERY, lambda: deliver_quietly(archive), "alerts-deliver")  # the alert outbox

    @app.middleware("http")
    async def headers_and_metrics(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        security_headers(policy_for_scope(request.scope), response)
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

    # Public on purpose: a load balancer's probe and a Prometheus scraper carry no token; both show
    # counts, never records.
    @app.get("/healthz", include_in_schema=False)
    def healthz(_: Public) -> dict[str, str]:
        archive.catalog.count()
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False, response_class=PlainTextResponse)
    def metrics(_: Public) -> PlainTextResponse:
        return PlainTextResponse(st.metrics.render(runner.depth()), media_type="text/plain; version=0.0.4")

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi_json(_: Public) -> JSONResponse:
        return JSONResponse(app.openapi())

    swagger_static = __import__("pathlib").Path(swagger_ui.__file__).parent / "static"
    app.mount("/api/docs/assets", declare(StaticFiles(directory=swagger_static), STATIC), name="swagger-assets")
    app.mount("/static", declare(StaticFiles(directory=WEB_DIR / "static"), STATIC), name="static")
    for mounted in app.routes[-2:]:
        declare(mounted, STATIC)

    @app.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs(_: PublicPage) -> HTMLResponse:
        # Swagger UI sets inline styles from its script: allow those (and only those) on this one page
        return HTMLResponse(DOCS_HTML, headers={"Content-Security-Policy": CSP.replace(
            "style-src 'self'", "style-src 'self' 'unsafe-inline'")})

    @app.get("/api/docs/init.js", include_in_schema=False)
    def docs_init(_: DocsScript) -> Response:
        return Response(DOCS_JS, media_type="text/javascript")

    app.include_router(api.router)
    app.include_router(public.router)  # before pages: /r/… is the public side's
    app.include_router(logroutes.router)  # /log/…: the transparency log, when log.public is true
    app.include_router(provision_pages.router)  # /provisions… and /api/v1/provisions…
    app.include_router(pages.router)
    app.include_router(search_pages.router)  # /search and /api/v1/search: viewers
    app.include_router(exhibit_pages.router)  # /matters/<name>/exhibit: the exhibit form (capturers)
    app.include_router(memento.router)  # public: the TimeGate and TimeMaps of public records
    app.include_router(collection_pages.router)  # public: /c/<name> of published collections
    app.include_router(matter_pages.router)  # /matters…, /api/v1/matters…: viewer reads, capturer acts
    app.include_router(alert_routes.router)  # /feeds/… (public or viewer, per alerts.feeds_public), /alerts

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

__all__ = ["PROBLEM", "STATIC", "WebState", "create_app", "problem", "state", "status_for"]
