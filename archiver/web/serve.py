"""Run the web app: safe defaults first (loopback, a token before anything else), then uvicorn.

``python -m archiver.web`` is what ``archiver serve`` executes. Beside the app it runs the replay origin
(``archiver/web/replay.py``) on ``--replay-port`` (default: the app's port + 1) when ReplayWeb.page is
set up, and warns when the two share a site (fine on a laptop, not on a public server).

On the first start on loopback with no token, an admin token is made and a one-time login URL printed
(as Jupyter does); a non-loopback address is refused until a token exists. Ctrl-C stops taking
requests and lets running capture jobs finish before the process exits.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from archiver.errors import ArchiverError, UsageError

if TYPE_CHECKING:
    from archiver.api import Archive


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


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What the replay origin will be: where it listens, the base the public pages frame, the app
    origins it lets frame it and read its bundles, and a warning when it shares the app's site."""

    port: int
    base: str
    app_origins: tuple[str, ...]
    warning: str | None


def plan_replay(archive: Archive, host: str, port: int, replay_port: int) -> ReplayPlan:
    from archiver.web.replay import origin_of, replay_base, same_site

    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    public = archive.config.str_("web.public_url")
    app_base = public or f"http://{shown}:{port}"
    base = replay_base(archive.config.str_("web.replay_url"), host, replay_port)
    origins = [origin_of(app_base)]
    if not public and is_loopback(host):  # a laptop: the app may be opened by either loopback name
        origins += [f"http://{name}:{port}" for name in ("localhost", "127.0.0.1")]  # CSP cannot name [::1]
    warning = None
    if origin_of(base) in origins:
        raise UsageError(f"the replay origin {base} is the app's own origin: captured pages would run with the "
                         "app's rights", hint="unset web.replay_url or point it at another host")
    if same_site(app_base, base):
        warning = (f"warning: the app ({app_base}) and the replay origin ({base}) are the same site, so browsers "
                   "send the app's cookies to both: this suits a laptop only; a public server needs web.replay_url "
                   "on another registrable domain")
    return ReplayPlan(replay_port, base, tuple(dict.fromkeys(origins)), warning)


def _listen(host: str, port: int) -> socket.socket:
    """Bind the replay origin's socket before anything starts, so a port in use is one clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} for the replay origin: {exc.strerror or exc}",
                         hint="choose another --replay-port (0 turns replay off)") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(store: Path | None, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 2,
          public_verify: bool = False, replay_port: int | None = None, out: TextIO = sys.stdout) -> int:
    """Run the app on ``port`` and, when ReplayWeb.page is set up and ``replay_port`` is not 0, the
    replay origin on ``replay_port`` (default ``port + 1``) in the same process."""
    import uvicorn

    from archiver import replayassets
    from archiver.api import Archive
    from archiver.web.app import create_app
    from archiver.web.deps import one_time_login

    archive = Archive.open(store)
    if not is_loopback(host) and archive.tokens.active() == 0:
        raise UsageError(f"refusing to listen on {host}: no access token exists, so anyone who can reach it could "
                         "use the store", hint="create one first: archiver tokens create NAME --role admin")
    chosen = replay_port is not None
    replay_port = port + 1 if replay_port is None else replay_port
    assets = replayassets.installed(replayassets.cache_dir(archive.config)) if replay_port else None
    plan = plan_replay(archive, host, port, replay_port) if assets is not None else None
    replay_server = None
    busy = None
    sock = None
    if plan is not None:
        try:
            sock = _listen(host, plan.port)
        except UsageError as exc:
            if chosen:  # asked for: an error; the default port taken: serve without replay, and say so
                raise
            busy, plan = exc.message, None
    if plan is not None and assets is not None and sock is not None:
        from archiver.web.replay import create_replay_app

        replay_app = create_replay_app(archive, list(plan.app_origins), assets=assets)
        replay_server = (uvicorn.Server(uvicorn.Config(replay_app, log_level=os.environ.get(
            "ARCHIVER_LOG_LEVEL", "warning"), access_log=False, lifespan="off")), sock)
    app = create_app(archive, workers=workers, public_verify=public_verify,
                     replay_url=plan.base if plan is not None else None)
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
    if plan is not None:
        out.write(f"Replay origin (public records only, no cookies): {plan.base}/ on port {plan.port}\n")
        if plan.warning:
            out.write(plan.warning + "\n")
    elif busy:
        out.write(f"Replay is off: {busy} (choose a free one with --replay-port)\n")
    elif replay_port:
        out.write("Replay is off: ReplayWeb.page is not set up (run `archiver replay setup`); public pages show "
                  "the screenshot\n")
    out.flush()
    config = uvicorn.Config(app, host=host, port=port, log_level=os.environ.get("ARCHIVER_LOG_LEVEL", "warning"),
                            access_log=False, lifespan="off")
    server = stopping_server(config, app.state.web.verifier.cancel_all)
    replay_thread = None
    if replay_server is not None:
        # its own event loop in a thread: signals stay with the app's server (uvicorn listens for them
        # only on the main thread), which stops the replay origin when it stops
        rs, sock = replay_server
        replay_thread = threading.Thread(target=rs.run, kwargs={"sockets": [sock]}, name="replay-origin",
                                         daemon=True)
        replay_thread.start()
    try:
        server.run()
    finally:
        if replay_server is not None and replay_thread is not None:
            replay_server[0].should_exit = True
            replay_thread.join(timeout=10)
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
    parser.add_argument("--replay-port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        return serve(args.store, host=args.host, port=args.port, workers=args.workers,
                     public_verify=args.public_verify, replay_port=args.replay_port)
    except ArchiverError as exc:
        sys.stderr.write(f"error: {exc.diagnostics()}\n")
        return exc.exit_code


__all__ = ["ReplayPlan", "is_loopback", "main", "plan_replay", "serve"]
