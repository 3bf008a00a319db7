"""Shared set-up for the issue-31 review scripts: a throw-away store, a local page, the CLI in-process."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from archiver.api import Archive
from archiver.cli import main
from archiver.demo.server import SampleSite, send

PAGE: dict[str, bytes] = {}


def page(doc_id: str, body: str, nav: str = "Home | Pricing | Blog") -> bytes:
    return (f"<html><body><nav><h2>Site navigation</h2>{nav}</nav><div id='{doc_id}'><h1>Terms</h1>{body}</div>"
            "<footer>Copyright 2026</footer></body></html>").encode()


def site() -> SampleSite:
    return SampleSite({"/terms": lambda h: send(h, 200, PAGE["terms"], "text/html; charset=utf-8"),
                       "/other": lambda h: send(h, 200, PAGE["other"], "text/html; charset=utf-8")})


def store() -> Archive:
    tmp = Path(tempfile.mkdtemp(prefix="rev31-"))
    a, _ = Archive.init(tmp / "store", operator="Reviewer", backends=None)
    a.config.set("capture.allow_private", "true")
    return a


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def cli_json(*args: str) -> Any:
    code, out, err = cli(*args)
    try:
        return code, json.loads(out)
    except ValueError:
        return code, {"raw": out, "err": err}
