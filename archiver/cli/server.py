"""The web app: access tokens, and ``archiver serve`` (run as its own process, like the demo)."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from archiver.cli._common import JsonOpt, StoreOpt, _emit_json, _open, _out, app, safe

tokens_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                         help="Access tokens for `archiver serve` (stored hashed; a secret is shown once).")
app.add_typer(tokens_app, name="tokens")
replay_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                         help="ReplayWeb.page for the replay origin of `archiver serve` (fetched, never shipped).")
app.add_typer(replay_app, name="replay")


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


@replay_app.command("setup")
def replay_setup(cache: Annotated[Path | None, typer.Option("--cache", help="Directory for the files (default: the "
                                                            "store's replay.cache_dir, else ~/.cache/archiver/"
                                                            "replaywebpage).")] = None,
                 store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Fetch ReplayWeb.page (AGPL-3.0) with `npm pack` at the pinned version, check its SHA-512 and
    unpack what replay needs into a cache outside the store; `archiver serve` then replays public
    records on its replay origin."""
    from archiver import replayassets

    where = cache if cache is not None else replayassets.cache_dir(_open(store).config)
    assets = replayassets.setup(where)
    if as_json:
        _emit_json(assets)
        return
    _out().print(f"ReplayWeb.page {assets.version} ({assets.license}, source {assets.source}) ready in "
                 f"{safe(assets.directory)}", highlight=False)


@app.command()
def serve(host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
          workers: Annotated[int, typer.Option("--workers", help="Capture jobs run at once by each server "
                                               "process.")] = 2,
          public_verify: Annotated[bool, typer.Option("--public-verify", help="Serve the verification page "
                                                      "to anyone, without login (and nothing else).")] = False,
          replay_port: Annotated[int | None, typer.Option("--replay-port", help="Port of the replay origin where "
                                                          "public records replay (default: --port + 1; 0: off). "
                                                          "Needs `archiver replay setup`.")] = None,
          http_workers: Annotated[int | None, typer.Option("--http-workers", help="Server processes answering on "
                                                           "--port (default: the number of cores); each runs "
                                                           "--workers capture jobs.")] = None,
          store: StoreOpt = None) -> None:
    """Serve the web app and HTTP API over this store, and the replay origin beside it (foreground;
    Ctrl-C lets running jobs finish)."""
    from archiver.extras import require

    require("web", "fastapi")
    archive = _open(store)  # a missing store is reported here, before the server starts
    args = [sys.executable, "-m", "archiver.web", "--store", str(archive.root), "--host", host, "--port", str(port),
            "--workers", str(workers), *(["--public-verify"] if public_verify else []),
            *(["--replay-port", str(replay_port)] if replay_port is not None else []),
            *(["--http-workers", str(http_workers)] if http_workers is not None else [])]
    sys.stdout.flush()
    os.execv(sys.executable, args)  # noqa: S606 - the server is a front-end of its own; signals go straight to it
