"""The web app: access tokens, and ``archiver serve`` (run as its own process, like the demo)."""

import os
import sys
from typing import Annotated

import typer

from archiver.cli._common import JsonOpt, StoreOpt, _emit_json, _open, _out, app

tokens_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                         help="Access tokens for `archiver serve` (stored hashed; a secret is shown once).")
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(name: str,
                  role: Annotated[str, typer.Option("--role", help="viewer, capturer or admin.")] = "viewer",
                  expires: Annotated[str | None, typer.Option("--expires", help="90d, 12h, 2w, 1y or "
                                                              "YYYY-MM-DD.")] = None,
                  store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Create a token; its secret is printed once and never stored."""
    archive = _open(store)
    new = archive.tokens.create(name, role, expires=expires, actor=archive.default_actor())
    if as_json:
        _emit_json(new)
        return
    _out().print(f"token {new.name!r} ({new.role.value}" + (f", expires {new.expires_at}" if new.expires_at else "")
                 + "): copy it now, it is not shown again", highlight=False)
    sys.stdout.write(new.token + "\n")


@tokens_app.command("list")
def tokens_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every token: name, role, created, expiry, revocation (never the secrets)."""
    items = _open(store).tokens.all()
    if as_json:
        _emit_json(items)
        return
    out = _out()
    for t in items:
        state = "revoked " + (t.revoked_at or "") if t.revoked_at else ("expired" if t.expired() else "active")
        out.print(f"{t.name:<20} {t.role.value:<9} created {t.created_at}  "
                  f"{'expires ' + t.expires_at if t.expires_at else 'no expiry':<32} {state}", highlight=False)
    if not items:
        out.print("no tokens (`archiver tokens create NAME --role viewer`)")


@tokens_app.command("revoke")
def tokens_revoke(name: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a token at once (its browser sessions end too)."""
    archive = _open(store)
    info = archive.tokens.revoke(name, actor=archive.default_actor())
    if as_json:
        _emit_json(info)
        return
    _out().print(f"revoked {info.name!r} at {info.revoked_at}", highlight=False)


@app.command()
def serve(host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
          workers: Annotated[int, typer.Option("--workers", help="Capture jobs run at once.")] = 2,
          public_verify: Annotated[bool, typer.Option("--public-verify", help="Serve the verification page "
                                                      "to anyone, without login (and nothing else).")] = False,
          store: StoreOpt = None) -> None:
    """Serve the web app and HTTP API over this store (foreground; Ctrl-C lets running jobs finish)."""
    from archiver.extras import require

    require("web", "fastapi")
    archive = _open(store)  # a missing store is reported here, before the server starts
    args = [sys.executable, "-m", "archiver.web", "--store", str(archive.root), "--host", host, "--port", str(port),
            "--workers", str(workers), *(["--public-verify"] if public_verify else [])]
    sys.stdout.flush()
    os.execv(sys.executable, args)  # noqa: S606 - the server is a front-end of its own; signals go straight to it
