"""Making an exhibit set from the web app: ``GET /matters/<name>/exhibit`` (the form) and
``POST /matters/<name>/exhibit`` (the signed PDFs as a download: the PDF itself for one record, a ZIP
of them for more).

The router parses and calls ``archiver.exhibits.make_set``, which does everything the CLI's
``archiver exhibit`` does — Bates numbers continued and recorded in the matter, an ``exhibit`` custody
entry per PDF naming the token as the actor — into a temporary directory that is removed once the
answer is built. A form post made with a session carries the session's CSRF token. The key's
passphrase, if it has one, comes from the server's environment (``ARCHIVER_KEY_PASSPHRASE``), as for
every other signing the server does. Both routes are for capturers: an exhibit set is an act.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from archiver.errors import PermissionDeniedError, UsageError
from archiver.web.deps import CapturerBytes, CapturerPage, actor, state
from archiver.web.security import SAFE_METHODS, csrf_ok

router = APIRouter(include_in_schema=False)  # a page and its form: not part of the JSON API
MAX_IDS = 200

FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>New exhibits · {{ matter }}</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><main>
<h1>New exhibits for matter {{ matter }}</h1>
<p>One signed PDF per record (PAdES with an RFC 3161 document timestamp), every page Bates-stamped;
the numbers are recorded in the matter.</p>
<form method="post" action="/matters/{{ matter | urlencode }}/exhibit">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<p><label for="ids">Record IDs, in exhibit order</label><br>
<textarea id="ids" name="record_ids" rows="4" cols="40" required>{{ ids }}</textarea></p>
<p><label for="label">First label</label><br><input id="label" name="label" value="Exhibit A"></p>
<p><label for="prefix">Bates prefix</label><br><input id="prefix" name="bates_prefix" pattern="[A-Z0-9_.-]{0,20}"></p>
<p><label for="start">First Bates number (empty: after the matter's last)</label><br>
<input id="start" name="bates_start" inputmode="numeric" pattern="[0-9]*"></p>
<p><button type="submit">Make the exhibits</button></p>
</form></main></body></html>
"""

_ENV: list[Any] = []


def _template() -> Any:
    if not _ENV:
        import jinja2

        _ENV.append(jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(FORM))
    return _ENV[0]


@router.get("/matters/{matter}/exhibit")
def exhibit_form(request: Request, matter: str, p: CapturerPage, ids: str = "") -> HTMLResponse:
    """The form; ``?ids=`` pre-fills the records (a matter page links here with its list)."""
    from archiver.exhibits.seam import matter_records

    matter_records(state(request).archive, matter)  # an unknown matter is a 404 here, not after the post
    csrf = p.session.csrf if p.session is not None else ""
    return HTMLResponse(_template().render(matter=matter, ids=ids[:4000], csrf=csrf))


@router.post("/matters/{matter}/exhibit")
def make_exhibits(request: Request, matter: str, p: CapturerBytes, record_ids: str = Form(...),
                  label: str = Form(""), bates_prefix: str = Form(""), bates_start: str = Form(""),
                  csrf_token: str = Form("")) -> Response:
    """The exhibit PDFs as a download (one PDF, or a ZIP of several)."""
    from archiver.api import env_passphrase
    from archiver.exhibits import make_set

    if request.method not in SAFE_METHODS and p.session is not None and not csrf_ok(p.session, csrf_token):
        raise PermissionDeniedError("the form's CSRF token is missing or wrong; reload the page and try again")
    ids = [x for x in record_ids.replace(",", " ").split() if x]
    if not ids or len(ids) > MAX_IDS:
        raise UsageError(f"name 1 to {MAX_IDS} record IDs")
    start: int | None = None
    if bates_start.strip():
        if not bates_start.strip().isdigit():
            raise UsageError("the first Bates number is a whole number")
        start = int(bates_start.strip())
    a = state(request).archive
    tmp = Path(tempfile.mkdtemp(prefix="archiver-exhibits-", dir=a.root / "tmp" if (a.root / "tmp").is_dir()
                                else None))
    try:
        made = make_set(a, ids, matter=matter, out_dir=tmp / "out", actor=actor(p), passphrase=env_passphrase,
                        label=label or None, bates_prefix=bates_prefix.strip() or None, bates_start=start)
        files = [Path(e.file) for e in made.exhibits]
        if len(files) == 1:
            body, media, name = files[0].read_bytes(), "application/pdf", files[0].name
        else:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
                for f in files:
                    z.write(f, f.name)
            body, media, name = buf.getvalue(), "application/zip", "exhibits.zip"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    first, last = made.exhibits[0].bates_first, made.exhibits[-1].bates_last
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                     "X-Bates-Range": f"{first}-{last}"})


__all__ = ["router"]
