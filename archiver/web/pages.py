"""The HTML pages of ``archiver serve``: server-rendered from the same records as the API.

Routes parse, authorize, call the facade (or a use case, as the CLI does) and render a template;
templates only lay out values computed here or in the library. Forms carry the session's CSRF token.
Captured HTML is never rendered in this origin: pages show the screenshot and the extracted text.
Each route declares its policy by the guard it takes (``p: ViewerPage`` …, from ``deps``); this
module imports ``deps`` and the library, never the API module.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from archiver._version import __version__
from archiver.access import Role, authenticate
from archiver.errors import ArchiverError, AuthenticationError, PermissionDeniedError, UsageError
from archiver.jobs import CaptureRequest
from archiver.web.deps import (
    NOT_YET_VERIFIED,
    WEB_DIR,
    CapturerExport,
    CapturerPage,
    PublicPage,
    PublicVerifyPage,
    ViewerBytes,
    ViewerPage,
    WebState,
    actor,
    bundle_report,
    cached_matches,
    certificate_download,
    check_public_rate,
    cursor_of,
    export_download,
    optional_principal,
    parse_cursor,
    set_publication,
    state,
    submit_capture,
    take_one_time,
)
from archiver.web.security import COOKIE, SAFE_METHODS, Principal, csrf_ok

if TYPE_CHECKING:
    from archiver.api import Archive

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=WEB_DIR / "templates")
LOGIN_CSRF = "archiver_login_csrf"
STYLES = (("record", "Record"), ("bluebook", "Bluebook"), ("apa", "APA"), ("chicago-note", "Chicago"),
          ("mla", "MLA"), ("csl-json", "CSL-JSON"), ("bibtex", "BibTeX"), ("ris", "RIS"))
STATES = (("", "any state"), ("verified", "verified"), ("failed", "failed verification"),
          ("unstamped", "unstamped"), ("stamped", "timestamped"), ("watched", "watched"))
PAGE_SIZE = 50


def _ctx(request: Request, who: Principal | None, nav: str = "", **kw: Any) -> dict[str, Any]:
    user = None
    if who is not None:
        user = {"name": who.token.name, "role": who.token.role.value,
                "can_capture": who.token.role.allows(Role.CAPTURER), "is_admin": who.token.role.allows(Role.ADMIN)}
    return {"request": request, "user": user, "csrf_token": who.session.csrf if who and who.session else "",
            "static_url": "/static", "version": __version__, "nav": nav, "public": False, **kw}


def render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def login_redirect(request: Request) -> Response:
    """Where a browser without a session goes: the login form (or, on a --public-verify server, the
    records page sends a stranger to the only page they may use)."""
    if request.url.path == "/" and state(request).public_verify and COOKIE not in request.cookies and \
            "authorization" not in request.headers:
        return RedirectResponse("/verify", status_code=303)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def error_page(request: Request, status: int, exc: ArchiverError) -> Response:
    p = optional_principal(request)
    title = {401: "Please log in", 403: "Not allowed", 429: "Too many requests"}.get(status, "Refused")
    headers = {"Retry-After": str(getattr(exc, "retry_after", 1))} if status == 429 else None
    resp = render(request, "error.html", _ctx(request, p, title=title, message=exc.message, hint=exc.hint), status)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def check_form(request: Request, p: Principal, csrf_token: str | None) -> None:
    """Every form post made with a session cookie carries the session's CSRF token."""
    if request.method not in SAFE_METHODS and p.session is not None and not csrf_ok(p.session, csrf_token):
        raise PermissionDeniedError("the form's CSRF token is missing or wrong; reload the page and try again")


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def _login_response(st: WebState, token_name: str, target: str, secure: bool) -> Response:
    cookie, _ = st.signer.issue(token_name)
    resp = RedirectResponse(_safe_next(target), status_code=303)
    resp.set_cookie(COOKIE, cookie, max_age=st.signer.lifetime, httponly=True, samesite="strict", secure=secure,
                    path="/")
    resp.delete_cookie(LOGIN_CSRF, path="/login")
    return resp


# ---- login ---------------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, _: PublicPage, next: str = "/", once: str | None = None) -> Response:
    """The login form; with ``?once=`` (the link ``archiver serve`` prints) a one-button form that posts
    the code. A GET never takes the code: reads are pure, and a link preview or a prefetch that fetches
    the link must not use it up."""
    nonce = secrets.token_urlsafe(24)
    resp = render(request, "login.html", _ctx(request, None, next_url=_safe_next(next), csrf_token=nonce,
                                              once=(once or "")[:200]))
    resp.set_cookie(LOGIN_CSRF, nonce, max_age=3600, httponly=True, samesite="strict", path="/login")
    return resp


@router.post("/login")
def login(request: Request, _: PublicPage, token: str = Form(""), csrf_token: str = Form(""),
          next: str = Form("/"), once: str = Form("")) -> Response:
    st = state(request)
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return render(request, "login.html", _ctx(request, None, error="The login form expired; please try again.",
                                                  next_url=_safe_next(next)), 400)
    if once:  # the one-time link's form: the code is taken here, once, site-wide
        name = take_one_time(st, once)
        if name:
            return _login_response(st, name, next, request.url.scheme == "https")
        return render(request, "login.html", _ctx(request, None, error="That login link was used already or has "
                                                  "expired. Paste a token instead.", next_url=_safe_next(next)), 401)
    try:
        info = authenticate(st.archive, token.strip())
    except AuthenticationError as exc:
        nonce = secrets.token_urlsafe(24)
        resp = render(request, "login.html", _ctx(request, None, error=exc.message, next_url=_safe_next(next),
                                                  csrf_token=nonce), 401)
        resp.set_cookie(LOGIN_CSRF, nonce, max_age=3600, httponly=True, samesite="strict", path="/login")
        return resp
    return _login_response(st, info.name, next, request.url.scheme == "https")


@router.post("/logout")
def logout(request: Request, p: ViewerPage, csrf_token: str = Form("")) -> Response:
    check_form(request, p, csrf_token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# ---- records -------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def records_page(request: Request, p: ViewerPage, q: str = "", since: str = "", until: str = "",
                 watched: str = "", cursor: str = "") -> Response:
    from store.search import Query, search, stamped_among, verification_states, watched_urls

    st = state(request)
    chosen = request.query_params.get("state", "")
    rows = search(st.archive.catalog, Query(text=q or None, since=since or None, until=until or None,
                                            state="watched" if watched else (chosen or None),
                                            after=parse_cursor(cursor), limit=PAGE_SIZE + 1))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    ids = [r.record_id for r in rows]
    stamped = stamped_among(st.archive.catalog, ids)
    verified = verification_states(st.archive.catalog, ids)
    watched_set = watched_urls(st.archive.catalog)
    view = []
    for r in rows:
        badges = [{"kind": "ok" if r.record_id in stamped else "warn",
                   "label": "timestamped" if r.record_id in stamped else "unstamped"}]
        if r.record_id in verified:
            badges.append({"kind": "ok" if verified[r.record_id] else "fail",
                           "label": "verified" if verified[r.record_id] else "FAILED"})
        if r.url in watched_set:
            badges.append({"kind": "skip", "label": "watched"})
        view.append({**r.to_dict(), "badges": badges})
    base = {"q": q, "since": since, "until": until, "state": chosen, "watched": watched}
    next_url = "/?" + urlencode({**{k: v for k, v in base.items() if v}, "cursor": cursor_of(rows[-1])}) \
        if more and rows else None
    summary = f"{len(rows)} record(s) shown" + (", more on the next page" if more else "")
    return render(request, "records.html", _ctx(request, p, "records", title="Records", rows=view, f=base,
                                                 states=STATES, next_url=next_url,
                                                 prev_url="/" if cursor else None, summary=summary))


@router.get("/records/{record_id}", response_class=HTMLResponse)
def record_page(request: Request, record_id: str, p: ViewerPage) -> Response:
    """Rendered once per (record views' key, who is asking, their session's CSRF token): the key holds
    the cached verification row, so the verdict shown is never older than the latest verification."""
    from archiver.cite import citation_data
    from archiver.cite import render as cite_render
    from archiver.evidence import VIEWS, cached_provenance
    from archiver.matters.notes import working as working_data
    from store.search import CachedVerification, cached_verifications

    a = state(request).archive
    prov, _, key = cached_provenance(a, record_id)
    # working data and tracked clauses are not evidence, so not in the record views' key: read them on
    # every request (a few indexed rows) and key the rendered page by them too, so a new note, tag,
    # hold or provision shows at once
    provisions = a.provisions.list(url=prov.url)
    working = working_data(a, prov.record_id)
    extra = hashlib.sha256(json.dumps([[x.to_dict() for x in provisions], working.to_dict()], sort_keys=True,
                                      default=str).encode()).hexdigest()

    def make() -> bytes:
        block = cite_render(citation_data(a, prov.record_id), "record")
        host = prov.final_url.split("/")[2] if "://" in prov.final_url else prov.final_url
        if key is None:
            last = cached_verifications(a.catalog, [prov.record_id]).get(prov.record_id)
        else:  # the verdict in the key, not a second read that could be newer than the rest of the page
            v = key.verification
            last = None if v is None else CachedVerification(v[0], v[1], tuple(x for x in v[2].split(",") if x))
        resp = render(request, "record.html", _ctx(request, p, "records", title=f"{prov.record_id} · "
                                                   f"{prov.document or prov.title or host}", p=prov, host=host,
                                                   styles=STYLES, record_block=block,
                                                   can_export=p.token.role.allows(Role.CAPTURER),
                                                   can_verify=p.token.role.allows(Role.CAPTURER),
                                                   can_publish=p.token.role.allows(Role.CAPTURER),
                                                   public=a.publications.is_public(prov.record_id),
                                                   permalink=a.publications.permalink(prov.record_id),
                                                   last_verified=last, provisions=provisions, working=working))
        return bytes(resp.body)

    if key is None:
        return HTMLResponse(make())
    who = (p.token.name, p.token.role.value, p.session.csrf if p.session else "", str(request.base_url))
    return HTMLResponse(VIEWS.remember(("page", key.digest, extra, who), make))


@router.get("/records/{record_id}/screenshot.png")
def screenshot(request: Request, record_id: str, p: ViewerBytes) -> Response:
    """Shown on the record page (an image, not a download, so not a ``get`` in custody)."""
    a = state(request).archive
    sha = a.artifact_sha256(record_id, "screenshot")
    return Response(a.blobs.read_bytes(sha), media_type="image/png",
                    headers={"Content-Disposition": 'attachment; filename="screenshot.png"',
                             "Cache-Control": "private, max-age=86400"})


@router.get("/records/{record_id}/bundle.wacz")
def record_bundle(request: Request, record_id: str, p: CapturerExport) -> Response:
    """A GET that exports (a link with ``download``): it logs ``export`` through the library, as the API's
    POST does, and writes no catalog row."""
    return export_download(request, p, [record_id])


@router.post("/records/{record_id}/certificate")
def certificate_form(request: Request, record_id: str, p: ViewerBytes, declarant: str = Form(...),
                     title: str = Form(""), org: str = Form(""), csrf_token: str = Form("")) -> Response:
    check_form(request, p, csrf_token)
    if len(declarant) > 200 or len(title) > 200 or len(org) > 200:
        raise UsageError("declarant, title and organisation are at most 200 characters each")
    return certificate_download(request, p, [record_id], declarant=declarant, title=title, org=org, fmt="pdf")


@router.post("/records/{record_id}/publish")
def publish_form(request: Request, record_id: str, p: CapturerPage, csrf_token: str = Form("")) -> Response:
    check_form(request, p, csrf_token)
    report = set_publication(request, p, record_id, True)
    return RedirectResponse(f"/records/{quote(report.record_id)}#publication", status_code=303)


@router.post("/records/{record_id}/unpublish")
def unpublish_form(request: Request, record_id: str, p: CapturerPage, reason: str = Form(""),
                   csrf_token: str = Form("")) -> Response:
    check_form(request, p, csrf_token)
    report = set_publication(request, p, record_id, False, reason)
    return RedirectResponse(f"/records/{quote(report.record_id)}#publication", status_code=303)


# ---- capture -------------------------------------------------------------------------------------
@router.get("/capture", response_class=HTMLResponse)
def capture_form(request: Request, p: CapturerPage) -> Response:
    return render(request, "capture.html", _ctx(request, p, "capture", title="Capture", form={}, jobs=[]))


@router.post("/capture", response_class=HTMLResponse)
def capture_post(request: Request, p: CapturerPage, urls: str = Form(""), entity: str = Form(""),
                 document: str = Form(""), browser: str = Form(""), wayback: str = Form(""),
                 allow_status: str = Form(""), csrf_token: str = Form("")) -> Response:
    check_form(request, p, csrf_token)
    form = {"urls": urls, "entity": entity, "document": document, "browser": bool(browser),
            "wayback": bool(wayback), "allow_status": bool(allow_status)}
    lines = [u.strip() for u in urls.splitlines() if u.strip()][:100]
    jobs, errors = [], []
    for url in lines:
        try:
            job = submit_capture(request, p, CaptureRequest(url=url, entity=entity or None, document=document or None,
                                                            browser=bool(browser), wayback=bool(wayback),
                                                            allow_status=bool(allow_status)))
        except UsageError as exc:
            errors.append(f"{url}: {exc.message}")
            continue
        jobs.append({"url": url, "job": job.job, "status": job.status, "status_url": f"/api/v1/captures/{job.job}"})
    error = "; ".join(errors) if errors else ("Give at least one URL." if not lines else None)
    return render(request, "capture.html", _ctx(request, p, "capture", title="Capture", form=form, jobs=jobs,
                                                error=error), 200 if jobs or not error else 400)


# ---- verify --------------------------------------------------------------------------------------
def _file_result(a: Archive, sha: str, filename: str | None = None, size: int | None = None) -> dict[str, Any]:
    """The records holding these bytes with their cached verification: a lookup (no re-hash, no write),
    so a stranger on a --public-verify server cannot make the server verify anything."""
    matches = []
    for m in cached_matches(a, sha):
        pending = m.failed_checks == (NOT_YET_VERIFIED,)
        matches.append(m.to_dict() | {"verified": None if pending else m.verified,
                                      "detail": "not verified yet" if pending else ", ".join(m.failed_checks)})
    return {"kind": "file", "sha256": sha, "filename": filename, "size": size or 0, "matches": matches}


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, p: PublicVerifyPage, sha256: str = "") -> Response:
    from archiver.records import Digest

    a = state(request).archive
    if sha256.strip():
        check_public_rate(request, p)
    result = _file_result(a, Digest.parse(sha256).hex) if sha256.strip() else None
    return render(request, "verify.html", _ctx(request, p, "verify", title="Verify", result=result, sha256=sha256,
                                               public=p is None))


@router.post("/verify", response_class=HTMLResponse)
async def verify_upload(request: Request, p: PublicVerifyPage) -> Response:
    from starlette.concurrency import run_in_threadpool

    from archiver.web.bundlework import VerificationRefused
    from archiver.web.uploads import receive_upload

    check_public_rate(request, p)
    if p is not None and p.session is not None and not csrf_ok(p.session, request.query_params.get("csrf")):
        raise PermissionDeniedError("the form's CSRF token is missing or wrong; reload the page and try again")
    a = state(request).archive
    up = await receive_upload(request, a.config.int_("web.max_upload_bytes"), keep=True, tmp_dir=a.root / "tmp")
    try:
        assert up.path is not None
        with up.path.open("rb") as fh:
            is_zip = fh.read(4) == b"PK\x03\x04"
        if is_zip and (up.filename or "").lower().endswith(".wacz"):
            try:
                rep: Any = await bundle_report(request, up.path, up.filename)
            except VerificationRefused as exc:
                resp = render(request, "verify.html", _ctx(request, p, "verify", title="Verify", public=p is None,
                              result={"kind": "bundle", "ok": False, "reports": [],
                                      "headline": f"NOT VERIFIED: {exc.detail}"}), exc.status)
                if exc.retry_after is not None:
                    resp.headers["Retry-After"] = str(exc.retry_after)
                return resp
            headline = {"verified": "VERIFIED: every hash, signature and timestamp holds, and a key this store "
                                    "trusts signed it.",
                        "intact-untrusted": "INTACT, SIGNER NOT TRUSTED: every hash and signature holds, but no "
                                            "key this store trusts vouches for it.",
                        "incomplete": "INCOMPLETE: what is there holds, but something a record names is absent.",
                        "tampered": "TAMPERED: something in the bundle does not match what was signed."}
            result = {"kind": "bundle", "ok": rep.ok, "reports": rep.reports, "headline": headline[rep.verdict]}
        else:
            result = await run_in_threadpool(_file_result, a, up.sha256, up.filename, up.size)
    finally:
        if up.path is not None:
            up.path.unlink(missing_ok=True)
    return render(request, "verify.html", _ctx(request, p, "verify", title="Verify", result=result, public=p is None))


# ---- watches and diffs ---------------------------------------------------------------------------
@router.get("/watches", response_class=HTMLResponse)
def watches_page(request: Request, p: ViewerPage) -> Response:

    a = state(request).archive
    rows = []
    for w in a.watches.all():
        kind = {"changed": "warn", "new": "ok", "unchanged": "ok", "failed": "fail"}.get(w.last_outcome or "", "skip")
        rows.append({**w.to_dict(), "every": _every(w.interval_s), "outcome_kind": kind,
                     "versions": len(a.watches.versions(w.url)) if w.last_record else 0})
    return render(request, "watches.html", _ctx(request, p, "watches", title="Watches", watches=rows))


def _every(seconds: int) -> str:
    for unit, n in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


@router.post("/watches")
def watches_post(request: Request, p: CapturerPage, url: str = Form(...), every: str = Form("1d"),
                 entity: str = Form(""), document: str = Form(""), csrf_token: str = Form("")) -> Response:
    check_form(request, p, csrf_token)
    a = state(request).archive
    a.watches.add(url, entity=entity or None, document=document or None, every=every, actor=actor(p))
    return RedirectResponse("/watches", status_code=303)


@router.post("/watches/remove")
def watches_remove(request: Request, p: CapturerPage, url: str = Form(...), csrf_token: str = Form("")) -> Response:
    check_form(request, p, csrf_token)
    a = state(request).archive
    a.watches.remove(url, actor=actor(p))
    return RedirectResponse("/watches", status_code=303)


@router.get("/diff/{a}/{b}", response_class=HTMLResponse)
def diff_page(request: Request, a: str, b: str, p: ViewerPage, mode: str = "side") -> Response:
    from archiver.evidence import diff_view

    view = diff_view(state(request).archive, a, b)
    changed = [{"anchor": c.anchor, "status": c.status, "heading": c.heading, "before_html": Markup(c.before_html),  # noqa: S704 - escaped by word_diff_html
                "after_html": Markup(c.after_html), "inline_html": Markup(c.inline_html),  # noqa: S704
                "history_url": "/clause?" + urlencode({"url": view.url, "clause": c.key})} for c in view.changed]
    summary = (f"{len(view.changed)} section(s) changed, {len(view.unchanged)} unchanged" if view.changed
               else "No section changed.")
    return render(request, "diff.html", _ctx(request, p, "watches", title=f"Changes {view.a} → {view.b}", a=view.a,
                                             b=view.b, changed=changed, unchanged=view.unchanged,
                                             mode="inline" if mode == "inline" else "side", summary=summary))


@router.get("/clause", response_class=HTMLResponse)
def clause_page(request: Request, url: str, clause: str, p: ViewerPage) -> Response:
    from archiver.monitor import clause_history

    c = clause_history(state(request).archive, url, clause)
    return render(request, "clause.html", _ctx(request, p, "watches", title=f"Clause history: {c.heading}", c=c,
                                               url=url, quote=quote))


__all__ = ["error_page", "login_redirect", "router"]
