"""Run the web app: safe defaults first (loopback, a token before anything else), then uvicorn.

``python -m archiver.web`` is what ``archiver serve`` executes. Beside the app it runs the replay origin
(``archiver/web/replay.py``) on ``--replay-port`` (default: the app's port + 1) when ReplayWeb.page is
set up, and warns when the two share a site (fine on a laptop, not on a public server).

On the first start on loopback with no token, an admin token is made and a one-time login URL printed
(as Jupyter does); a non-loopback address is refused until a token exists. Ctrl-C stops taking
requests and lets running capture jobs finish before the process exits.

``--http-workers N`` (default: the number of cores) runs the app in N processes on one port, a
pre-fork: this process binds the socket, starts N children (``python -m archiver.web --worker-fd``)
that inherit it and each open their own ``Archive`` and app, and supervises them: a child that dies
is started again, and SIGINT/SIGTERM is passed to each so they drain as one server does. Every
child takes connections from the same socket (the kernel hands each to one of them), so killing one
loses only the requests and capture jobs it held; the jobs are claimed by the others once their
leases run out (``jobs.JobRunner``). A child whose parent dies (kill -9) kills itself: it reads a
pipe whose other end only the parent holds. The replay origin stays one server, in this process.
Why our own pre-fork and not uvicorn's ``workers``: ours keeps ``stopping_server`` (bundle
verifications killed at once on shutdown) and the capture-job drain in every child, and keeps the
replay origin's thread out of the children. With N = 1 the app runs in this process, as before.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
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


def _listen(host: str, port: int, *, what: str = "the replay origin",
            hint: str = "choose another --replay-port (0 turns replay off)", listen: bool = True) -> socket.socket:
    """Bind a socket before anything starts, so a port in use is one clear error. Without ``listen``
    connections are refused until a server calls ``listen`` on it (asyncio does when it starts
    serving): the app's workers then take their first connection only once they are ready."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}", hint=hint) from exc
    if listen:
        sock.listen(128)
    sock.set_inheritable(True)
    return sock


def default_http_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def serve(store: Path | None, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 2,
          public_verify: bool = False, replay_port: int | None = None, http_workers: int | None = None,
          out: TextIO = sys.stdout) -> int:
    """Run the app on ``port`` (in ``http_workers`` processes; default: one per core) and, when
    ReplayWeb.page is set up and ``replay_port`` is not 0, the replay origin on ``replay_port``
    (default ``port + 1``) in this process."""
    import uvicorn

    from archiver import replayassets
    from archiver.access import issue_login_code
    from archiver.api import Archive

    n_http = default_http_workers() if http_workers is None else http_workers
    if n_http < 1:
        raise UsageError(f"--http-workers must be at least 1, not {n_http}")
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
    app_sock = None
    if n_http > 1:  # bound now (a port in use is one clear error), listened on by the workers when ready
        app_sock = _listen(host, port, what="the app", hint="choose another --port", listen=False)
    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    base = f"http://{shown}:{port}"
    login_name = None
    if archive.tokens.active() == 0:
        new = archive.tokens.create(_first_admin_name({t.name for t in archive.tokens.all()}), "admin",
                           actor=archive.default_actor())
        login_name = new.name
        out.write(f"No access token existed: made admin token {new.name!r} (shown once, stored hashed):\n"
                  f"  {new.token}\n")
    out.write(f"archiver serving {archive.root} at {base}/  (API docs {base}/api/docs)"
              + (f", {n_http} HTTP worker processes" if n_http > 1 else "") + "\n")
    if login_name:
        link = f"{base}/login?once={issue_login_code(archive, login_name)}"
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
    replay_thread = None
    if replay_server is not None:
        # its own event loop in a thread: signals stay with the app's server (uvicorn listens for them
        # only on the main thread), which stops the replay origin when it stops
        rs, sock = replay_server
        replay_thread = threading.Thread(target=rs.run, kwargs={"sockets": [sock]}, name="replay-origin",
                                         daemon=True)
        replay_thread.start()
    replay_url = plan.base if plan is not None else None
    try:
        if app_sock is not None:
            return _supervise(app_sock, n_http, archive.root, workers=workers, public_verify=public_verify,
                              replay_url=replay_url, out=out)
        _serve_app(archive, host=host, port=port, sock=None, workers=workers,
                   public_verify=public_verify, replay_url=replay_url, out=out)
    finally:
        if replay_server is not None and replay_thread is not None:
            replay_server[0].should_exit = True
            replay_thread.join(timeout=10)
    return 0


def _serve_app(archive: Archive, *, host: str, port: int, sock: socket.socket | None, workers: int,
               public_verify: bool, replay_url: str | None, out: TextIO) -> None:
    """One server process of the app: on ``host:port``, or on ``sock`` (a worker of a pre-fork), until
    told to stop; then let the capture jobs it runs finish."""
    import uvicorn

    from archiver.web.app import create_app

    app = create_app(archive, workers=workers, public_verify=public_verify, replay_url=replay_url)
    config = uvicorn.Config(app, host=host, port=port, log_level=os.environ.get("ARCHIVER_LOG_LEVEL", "warning"),
                            access_log=False, lifespan="off")
    server = stopping_server(config, app.state.web.verifier.cancel_all)
    previous = _drain_first(server) if threading.current_thread() is threading.main_thread() else {}
    try:
        server.run(sockets=[sock] if sock is not None else None)
    finally:
        runner = app.state.web.runner
        running = runner.held()
        if running:
            out.write(f"stopping: letting {running} running capture job(s) finish\n")
            out.flush()
        try:
            runner.shutdown(wait=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _drain_first(server: Any) -> dict[int, Any]:
    """Handlers for SIGINT and SIGTERM under uvicorn's own: uvicorn, once stopped, raises again the
    signal that stopped it, with the handler it found. The default SIGTERM action would end the
    process there, before its running capture jobs finish; this handler lets the first signal pass
    (the drain follows) and makes a second one a KeyboardInterrupt (stop without waiting). A first
    signal that comes before uvicorn took the signals over tells ``server`` to stop, or it would be lost."""
    seen: list[int] = []

    def handler(sig: int, frame: FrameType | None) -> None:
        seen.append(sig)
        if len(seen) > 1:
            raise KeyboardInterrupt
        server.should_exit = True  # uvicorn checks it once started; after its own stop it changes nothing

    return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


#: A worker that dies this soon after its start counts as failing to start; this many in a row end the server.
_FAST_DEATH = 5.0
_FAST_DEATHS = 5


def _supervise(sock: socket.socket, n: int, root: Path, *, workers: int, public_verify: bool,
               replay_url: str | None, out: TextIO) -> int:
    """Start ``n`` workers on ``sock`` and keep ``n`` running until SIGINT/SIGTERM; then pass the signal
    on and wait for them to drain. Returns the exit code."""
    death_r, death_w = os.pipe()  # the workers hold the read end; EOF there means this process is gone
    os.set_inheritable(death_r, True)
    args = [sys.executable, "-m", "archiver.web", "--worker-fd", str(sock.fileno()), "--parent-fd", str(death_r),
            "--store", str(root), "--workers", str(workers), "--replay-url", replay_url or "",
            *(["--public-verify"] if public_verify else [])]

    def spawn() -> subprocess.Popen[bytes]:
        # its own session: a terminal's Ctrl-C reaches this process only, which passes it on once
        return subprocess.Popen(args, pass_fds=(sock.fileno(), death_r), start_new_session=True)

    stop = threading.Event()
    got: list[int] = []
    told: set[int] = set()  # the workers a stop signal was passed to

    def on_signal(sig: int, frame: FrameType | None) -> None:
        got.append(sig)
        stop.set()
        for p in procs:
            if p.poll() is None:
                told.add(p.pid)
                p.send_signal(signal.SIGINT if sig == signal.SIGINT else signal.SIGTERM)

    procs: list[subprocess.Popen[bytes]] = []
    started: list[float] = []
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    fast = 0
    code = 0
    try:
        for _ in range(n):
            procs.append(spawn())
            started.append(time.monotonic())
        while not stop.wait(0.2):
            for i, p in enumerate(procs):
                rc = p.poll()
                if rc is None or stop.is_set():
                    continue
                lived = time.monotonic() - started[i]
                fast = fast + 1 if lived < _FAST_DEATH else 0
                if fast >= _FAST_DEATHS:
                    out.write(f"error: HTTP workers keep exiting at start (last: exit {rc}); stopping\n")
                    out.flush()
                    code = rc if rc > 0 else 4
                    stop.set()
                    break
                out.write(f"HTTP worker {p.pid} exited ({'signal ' + str(-rc) if rc < 0 else 'exit ' + str(rc)}); "
                          "starting another\n")
                out.flush()
                procs[i] = spawn()
                started[i] = time.monotonic()
        for p in procs:  # a worker started while a signal was being passed on has not had it yet
            if p.poll() is None and p.pid not in told:
                p.send_signal(signal.SIGINT if got[:1] == [signal.SIGINT] else signal.SIGTERM)
        for p in procs:
            p.wait()  # a worker drains its running capture jobs first, as one server does
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        os.close(death_w)
        os.close(death_r)
        sock.close()
    return code


def _die_with_parent(fd: int) -> None:
    """A worker of a pre-fork ends when its parent does, however the parent ended (kill -9 included):
    the parent holds the only write end of this pipe, so a read returns EOF once it is gone."""

    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def serve_worker(store: Path | None, fd: int, parent_fd: int, *, workers: int, public_verify: bool,
                 replay_url: str | None) -> int:
    """One worker of ``serve --http-workers N``: the app on the inherited socket ``fd``."""
    from archiver.api import Archive

    _die_with_parent(parent_fd)
    sock = socket.socket(fileno=fd)
    _serve_app(Archive.open(store), host="", port=0, sock=sock, workers=workers, public_verify=public_verify,
               replay_url=replay_url or None, out=sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archiver serve")
    parser.add_argument("--store", type=Path, default=os.environ.get("ARCHIVER_HOME") or None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--public-verify", action="store_true")
    parser.add_argument("--replay-port", type=int, default=None)
    parser.add_argument("--http-workers", type=int, default=None)
    parser.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parent-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--replay-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.worker_fd is not None and args.parent_fd is not None:
            return serve_worker(args.store, args.worker_fd, args.parent_fd, workers=args.workers,
                                public_verify=args.public_verify, replay_url=args.replay_url)
        return serve(args.store, host=args.host, port=args.port, workers=args.workers,
                     public_verify=args.public_verify, replay_port=args.replay_port,
                     http_workers=args.http_workers)
    except ArchiverError as exc:
        sys.stderr.write(f"error: {exc.diagnostics()}\n")
        return exc.exit_code


__all__ = ["ReplayPlan", "default_http_workers", "is_loopback", "main", "plan_replay", "serve", "serve_worker"]
