"""Sessions, CSRF, rate limits and security headers for ``archiver serve``.

API clients send ``Authorization: Bearer <token>``. Browsers post a token to ``/login`` and get a
signed session cookie (``HttpOnly``, ``SameSite=Strict``); the token behind it is re-checked on
every request, so a revoked token ends its sessions at once. A cookie is ambient, so every
state-changing request made with one must also carry the session's CSRF token (a form field or the
``X-CSRF-Token`` header); a Bearer request carries no ambient credential and needs none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from archiver.access import TokenInfo
from archiver.errors import AuthenticationError, RateLimitError

COOKIE = "archiver_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Every response. Pages load only our own script and stylesheet; nothing may frame us.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def page_csp(frame_origin: str | None) -> str:
    """Our page CSP, allowing frames from exactly ``frame_origin`` (the replay origin) and nothing else
    (``frame-src``; without it the page may frame nothing but itself, as ``default-src 'self'`` says).
    The public record page frames its replay this way; captured bytes then run there, never here."""
    if not frame_origin:
        return CSP
    from urllib.parse import urlsplit

    parts = urlsplit(frame_origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in frame_origin for c in " ;,'\"\n"):
        raise ValueError(f"not an origin to frame: {frame_origin!r}")
    return CSP + f"; frame-src {parts.scheme}://{parts.netloc}"


#: JSON and text for programs: nothing in them is ever a document to render.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: Captured bytes: never a document of this origin, even if a browser were talked into rendering one.
CAPTURED_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True, slots=True)
class Session:
    token_name: str
    csrf: str
    expires: int


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the token, and whether it came as a Bearer header or a browser session."""

    token: TokenInfo
    session: Session | None = None


def server_secret(root: Path) -> bytes:
    """The key that signs session cookies: random, 0600, kept in the store, never sent anywhere."""
    path = root / "web-secret.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    tmp = root / f".web-secret.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # first writer wins; a concurrent start reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


class SessionSigner:
    def __init__(self, secret: bytes, hours: int) -> None:
        self._key = hashlib.sha256(b"archiver-session\0" + secret).digest()
        self.lifetime = max(1, hours) * 3600

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, payload, hashlib.sha256).digest()).decode().rstrip("=")

    def issue(self, token_name: str) -> tuple[str, Session]:
        sess = Session(token_name=token_name, csrf=secrets.token_urlsafe(24), expires=int(time.time()) + self.lifetime)
        payload = base64.urlsafe_b64encode(json.dumps({"n": sess.token_name, "c": sess.csrf, "e": sess.expires},
                                                      separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{payload}.{self._mac(payload.encode())}", sess

    def load(self, cookie: str) -> Session:
        payload, _, mac = cookie.partition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload.encode())):
            raise AuthenticationError("the session cookie is not valid; log in again")
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            sess = Session(token_name=str(data["n"]), csrf=str(data["c"]), expires=int(data["e"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthenticationError("the session cookie is not valid; log in again") from exc
        if sess.expires < time.time():
            raise AuthenticationError("the session has expired; log in again")
        return sess


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")


class RateLimiter:
    """A token bucket per key (a token name, or a client address for anonymous lookups): ``per_minute``
    requests, refilled continuously."""

    #: Keys kept at most: anonymous lookups are keyed by client address, which a client can vary.
    MAX_KEYS = 10_000

    def __init__(self, per_minute: int, what: str = "captures") -> None:
        self.what = what
        self.rate = max(1, per_minute) / 60.0
        self.capacity = float(max(1, per_minute))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if key not in self._buckets and len(self._buckets) >= self.MAX_KEYS:
                # forget the buckets that have refilled (they hold nothing); if none has, the oldest
                full = [k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.capacity]
                for k in full or sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self.MAX_KEYS // 10]:
                    del self._buckets[k]
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = int((1.0 - tokens) / self.rate) + 1
                self._buckets[key] = (tokens, now)
                raise RateLimitError(f"too many {self.what} requested by {key!r}; try again in {wait} s",
                                     retry_after=wait)
            self._buckets[key] = (tokens - 1.0, now)


__all__ = [
    "API_CSP",
    "CAPTURED_CSP",
    "COOKIE",
    "CSP",
    "HEADERS",
    "SAFE_METHODS",
    "Principal",
    "RateLimiter",
    "Session",
    "SessionSigner",
    "csrf_ok",
    "page_csp",
    "server_secret",
]
