"""A stand-in for the Internet Archive on 127.0.0.1, speaking its real API formats.

Availability JSON (``/wayback/available``), CDX (``/cdx/search/cdx``: space-separated text, or
``output=json`` arrays with a header row), Save Page Now 2 (``POST /save`` → job JSON,
``/save/status/<job>``), legacy ``GET /save/<url>`` answering with a ``Content-Location`` to the new
snapshot, and ``/web/<ts>/<url>`` replays. A save really fetches the page (loopback only) and
indexes the SHA-1 of its payload, as the Archive's crawler would. Knobs let tests make it fail the
ways the real one does (5xx, 429, slowness, malformed answers, exclusions, SPN jobs that error or
never finish).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import requests

from archiver.demo.server import LoopbackService

BLOCKED_TEXT = ("org.archive.util.io.RuntimeIOException: org.archive.wayback.exception."
                "AdministrativeAccessControlException: Blocked Site Error")


@dataclass
class Snapshot:
    timestamp: str
    url: str
    digest: str
    mimetype: str = "text/html"
    status: str = "200"
    length: str = "1000"
    body: bytes = b""

    def urlkey(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        host = ",".join(reversed((parts.hostname or "").split(".")))
        port = f":{parts.port}" if parts.port else ""
        return f"{host}{port}){parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


@dataclass
class Knobs:
    mode: str = "ok"  # ok | http500 | slow | malformed | blocked
    delay: float = 5.0
    rate_limit_next: int = 0  # answer this many requests with 429 first
    job_outcome: str = "success"  # success | error | never
    polls_until_done: int = 2
    keys: tuple[str, str] = ("demo-access", "demo-secret")
    fetch_on_save: bool = True
    # which digest a save indexes: "payload" (de-chunked, as the Archive's WARCs define it) or
    # "as-sent" (the body with chunk framing, as heritrix3 over HTTP/1.1 digests it: issue #769)
    digest_form: str = "payload"
    counts: dict[str, int] = field(default_factory=dict)
    inflight: int = 0
    max_inflight_saves: int = 0


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "application/json",
          extra: dict[str, str] | None = None) -> None:
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (extra or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def sha1_b32(data: bytes) -> str:
    return base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")  # noqa: S324 - the CDX digest format


class LocalWayback(LoopbackService):
    """Use as a context manager; ``base_url`` goes into ``wayback.base_url``."""

    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []
        self.knobs = Knobs()
        self.jobs: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()
        wb = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                wb._handle(self, "GET", b"")

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                wb._handle(self, "POST", self.rfile.read(min(n, 1 << 16)))

            def log_message(self, format: str, *args: object) -> None:
                return

        self._serve(Handler)

    @property
    def availability_url(self) -> str:
        return self.base_url + "/wayback/available"

    def add(self, url: str, timestamp: str, body: bytes, **kw: str) -> Snapshot:
        snap = Snapshot(timestamp=timestamp, url=url, digest=sha1_b32(body), body=body, length=str(len(body)), **kw)
        with self._lock:
            self.snapshots.append(snap)
        return snap

    def count(self, what: str) -> int:
        return self.knobs.counts.get(what, 0)

    # ---- request handling --------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        parts = urllib.parse.urlsplit(h.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
        path = parts.path
        kind = ("available" if path == "/wayback/available" else "cdx" if path == "/cdx/search/cdx"
                else "save-status" if path.startswith("/save/status/") else "save" if path.startswith("/save")
                else "replay" if path.startswith("/web/") else "other")
        with self._lock:
            self.knobs.counts[kind] = self.knobs.counts.get(kind, 0) + 1
            limited = self.knobs.rate_limit_next > 0
            if limited:
                self.knobs.rate_limit_next -= 1
        k = self.knobs
        if kind == "save" and method == "POST":
            with self._lock:
                k.inflight += 1
                k.max_inflight_saves = max(k.max_inflight_saves, k.inflight)
            try:
                return self._dispatch(h, method, body, kind, path, q, limited)
            finally:
                with self._lock:
                    k.inflight -= 1
        return self._dispatch(h, method, body, kind, path, q, limited)

    def _dispatch(self, h: BaseHTTPRequestHandler, method: str, body: bytes, kind: str, path: str,
                  q: dict[str, str], limited: bool) -> None:
        send = _send
        k = self.knobs
        if limited:
            return send(h, 429, b'{"message": "Too Many Requests"}', extra={"Retry-After": "0"})
        if k.mode == "http500":
            return send(h, 503, b"Service Unavailable", "text/plain")
        if k.mode == "slow":
            time.sleep(k.delay)
        if kind == "available":
            return self._available(h, q)
        if kind == "cdx":
            return self._cdx(h, q)
        if kind == "save-status":
            return self._save_status(h, path.rsplit("/", 1)[1])
        if kind == "save" and method == "POST" and path == "/save":
            return self._spn2(h, body)
        if kind == "save" and method == "GET":
            return self._legacy_save(h, h.path[len("/save/"):])
        if kind == "replay":
            ts, _, url = path[len("/web/"):].partition("/")
            snap = next((s for s in self.snapshots if s.timestamp == ts[:14] and s.url == url), None)
            return send(h, 200, snap.body, snap.mimetype) if snap else send(h, 404, b"not archived", "text/plain")
        return send(h, 404, b"not found", "text/plain")

    def _matching(self, url: str) -> list[Snapshot]:
        with self._lock:
            return [s for s in self.snapshots if s.url == url]

    def _available(self, h: BaseHTTPRequestHandler, q: dict[str, str]) -> None:
        send = _send
        if self.knobs.mode == "malformed":
            return send(h, 200, b'{"archived_snapshots": {"closest": ')
        url, ts = q.get("url", ""), q.get("timestamp", "")
        snaps = self._matching(url)
        closest: dict[str, object] = {}
        if snaps:
            s = min(snaps, key=lambda x: abs(_secs(x.timestamp) - _secs(ts or x.timestamp)))
            closest = {"closest": {"status": s.status, "available": True, "timestamp": s.timestamp,
                                   "url": f"http://web.archive.org/web/{s.timestamp}/{s.url}"}}
        return send(h, 200, json.dumps({"url": url, "archived_snapshots": closest, "timestamp": ts}).encode())

    def _cdx(self, h: BaseHTTPRequestHandler, q: dict[str, str]) -> None:
        send = _send
        if self.knobs.mode == "blocked":
            return send(h, 403, BLOCKED_TEXT.encode(), "text/plain")
        if self.knobs.mode == "malformed":
            return send(h, 200, b"com,example)/ not-a-timestamp\n", "text/plain")
        snaps = self._matching(q.get("url", ""))
        closest = q.get("closest")
        if q.get("sort") == "closest" and closest:
            snaps.sort(key=lambda s: (abs(_secs(s.timestamp) - _secs(closest)), s.timestamp))
        else:
            snaps.sort(key=lambda s: s.timestamp)
        limit = int(q.get("limit", "25000") or 25000)
        snaps = snaps[:limit]
        rows = [[s.urlkey(), s.timestamp, s.url, s.mimetype, s.status, s.digest, s.length] for s in snaps]
        if q.get("output") == "json":
            header = ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]
            return send(h, 200, json.dumps([header, *rows] if rows else []).encode())
        return send(h, 200, "".join(" ".join(r) + "\n" for r in rows).encode(), "text/plain")

    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        a, s = self.knobs.keys
        return h.headers.get("Authorization") == f"LOW {a}:{s}"

    def _spn2(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        send = _send
        if not self._authorized(h):
            return send(h, 401, b'{"status": "error", "status_ext": "error:unauthorized", '
                                b'"message": "You need to be logged in to use Save Page Now."}')
        if self.knobs.mode == "blocked":
            return send(h, 200, b'{"status": "error", "status_ext": "error:blocked-url", '
                                b'"message": "This URL is in the Wayback Machine exclusion list."}')
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        url = form.get("url", "")
        within = form.get("if_not_archived_within")
        if within and self._matching(url):
            recent = max(self._matching(url), key=lambda s: s.timestamp)
            if time.time() - _secs(recent.timestamp) < _duration(within):
                job_id = f"spn2-cached-{len(self.jobs)}"
                self.jobs[job_id] = {"url": url, "polls": 0, "cached": recent.timestamp}
                return send(h, 200, json.dumps({"url": url, "job_id": job_id}).encode())
        job_id = f"spn2-{hashlib.sha1(f'{url}{len(self.jobs)}'.encode()).hexdigest()[:24]}"  # noqa: S324
        self.jobs[job_id] = {"url": url, "polls": 0}
        return send(h, 200, json.dumps({"url": url, "job_id": job_id}).encode())

    def _save_status(self, h: BaseHTTPRequestHandler, job_id: str) -> None:
        send = _send
        job = self.jobs.get(job_id)
        if job is None:
            return send(h, 404, b'{"status": "error", "message": "job not found"}')
        job["polls"] = int(job["polls"]) + 1  # type: ignore[call-overload]
        url = str(job["url"])
        if "cached" in job:
            return send(h, 200, json.dumps({"status": "success", "job_id": job_id, "original_url": url,
                                            "timestamp": job["cached"]}).encode())
        if self.knobs.job_outcome == "never" or int(job["polls"]) < self.knobs.polls_until_done:  # type: ignore[call-overload]
            return send(h, 200, json.dumps({"status": "pending", "job_id": job_id,
                                            "resources": [url]}).encode())
        if self.knobs.job_outcome == "error":
            return send(h, 200, json.dumps({"status": "error", "job_id": job_id, "status_ext": "error:not-found",
                                            "message": "The server cannot find the requested resource."}).encode())
        snap = self._archive_now(url)
        return send(h, 200, json.dumps({"status": "success", "job_id": job_id, "original_url": url,
                                        "timestamp": snap.timestamp, "duration_sec": 1.2}).encode())

    def _legacy_save(self, h: BaseHTTPRequestHandler, url: str) -> None:
        send = _send
        if self.knobs.mode == "blocked":
            return send(h, 403, BLOCKED_TEXT.encode(), "text/plain")
        snap = self._archive_now(url)
        # the Archive's Link header names mementos by absolute web.archive.org URLs (waybackpy parses them)
        memento = f"<http://web.archive.org/web/{snap.timestamp}/{url}>"
        link = (f'<{url}>; rel="original", {memento}; rel="memento"; datetime="{snap.timestamp}", '
                f'{memento}; rel="last memento"; datetime="{snap.timestamp}"')
        return send(h, 200, b"<html>saved</html>", "text/html",
                    {"Content-Location": f"/web/{snap.timestamp}/{url}", "Link": link})

    def _archive_now(self, url: str) -> Snapshot:
        """Fetch the page like the Archive's crawler (loopback only) and index the digest of its
        payload, or of the body as sent (chunk framing included) with ``knobs.digest_form="as-sent"``."""
        body = b""
        if self.knobs.fetch_on_save and urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            if self.knobs.digest_form == "as-sent":
                body = _body_as_sent(url)
            else:
                with requests.get(url, stream=True, timeout=10, headers={"Accept-Encoding": "gzip"}) as r:
                    body = r.raw.read(decode_content=False)  # de-chunked, still content-encoded: the payload
        ts = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        return self.add(url, ts, body)


def _body_as_sent(url: str) -> bytes:
    """GET over a plain socket (HTTP/1.1, loopback only) and keep the body exactly as it arrived:
    a chunked response keeps its chunk framing, as a crawler that does not de-chunk would digest it."""
    import socket

    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or "127.0.0.1"
    with socket.create_connection((host, parts.port or 80), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept-Encoding: gzip\r\n"
                     "Connection: close\r\nUser-Agent: demo-crawler\r\n\r\n".encode("ascii"))
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""



def _secs(ts: str) -> float:
    ts = (ts + "00000000000000")[:14]
    try:
        return dt.datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return 0.0


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 31536000}
    total = 0.0
    num = ""
    for ch in text.replace(" ", ""):
        if ch.isdigit():
            num += ch
        elif ch in units and num:
            total += int(num) * units[ch]
            num = ""
    return total + (int(num) if num else 0)
