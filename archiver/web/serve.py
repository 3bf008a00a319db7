"""Run the web app: safe defaults first (loopback, a token before anything else), then uvicorn.

``python -m archiver.web`` is what ``archiver serve`` executes. On the first start on loopback with no
token, an admin token is made and a one-time login URL printed (as Jupyter does); a non-loopback
address is refused until a token exists. Ctrl-C stops taking requests and lets running capture jobs
finish before the process exits.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from archiver.errors import ArchiverError, UsageError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _first_admin_name(taken: set[str]) -> str:
    name, n = "admin", 2
    while name in taken:
        name, n = f"admin-{n}", n + 1
    return name


def stopping_server(config: Any, on_exit: Callable[[], object]) -> Any:
    """uvicorn's server, except that being told to stop (SIGTERM, Ctrl-C) first calls ``on_exit``: uvicorn
    waits for in-flight requests, and a bundle verification killed there answers 503 at once instead of
    holding the server until a hostile upload is done."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            on_exit()
            super().handle_exit(sig, frame)

    return Server(config)


def serve(store: Path | None, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 2,
          public_verify: bool = False, out: TextIO = sys.stdout) -> int:
    import uvicorn

    from archiver.api import Archive
    from archiver.web.app import create_app
    from archiver.web.deps import one_time_login

    archive = Archive.open(store)
    if not is_loopback(host) and archive.tokens.active() == 0:
        raise UsageError(f"refusing to listen on {host}: no access token exists, so anyone who can reach it could "
                         "use the store", hint="create one first: archiver tokens create NAME --role admin")
    app = create_app(archive, workers=workers, public_verify=public_verify)
    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    base = f"http://{shown}:{port}"
    login_name = None
    if archive.tokens.active() == 0:
        new = archive.tokens.create(_first_admin_name({t.name for t in archive.tokens.all()}), "admin",
                           actor=archive.default_actor())
        login_name = new.name
        out.write(f"No access token existed: made admin token {new.name!r} (shown once, stored hashed):\n"
                  f"  {new.token}\n")
    out.write(f"archiver serving {archive.root} at {base}/  (API docs {base}/api/docs)\n")
    if login_name:
        link = f"{base}/login?once={one_time_login(app.state.web, login_name)}"
        out.write(f"Open this one-time login link (valid 10 minutes):\n  {link}\n")
    if public_verify:
        out.write(f"Public verification page (no login): {base}/verify\n")
    out.flush()
    config = uvicorn.Config(app, host=host, port=port, log_level=os.environ.get("ARCHIVER_LOG_LEVEL", "warning"),
                            access_log=False, lifespan="off")
    server = stopping_server(config, app.state.web.verifier.cancel_all)
    try:
        server.run()
    finally:
        runner = app.state.web.runner
        running = runner.depth().get("running", 0)
        if running:
            out.write(f"stopping: letting {running} running capture job(s) finish\n")
            out.flush()
        runner.shutdown(wait=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archiver serve")
    parser.add_argument("--store", type=Path, default=os.environ.get("ARCHIVER_HOME") or None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--public-verify", action="store_true")
    args = parser.parse_args(argv)
    try:
        return serve(args.store, host=args.host, port=args.port, workers=args.workers,
                     public_verify=args.public_verify)
    except ArchiverError as exc:
        sys.stderr.write(f"error: {exc.diagnostics()}\n")
        return exc.exit_code


__all__ = ["is_loopback", "main", "serve"]
