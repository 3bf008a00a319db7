"""Sessions, CSRF, rate limits and security headers for ``archiver serve``.

API clients send ``Authorization: Bearer <token>``. Browsers post a token to ``/login`` and get a
signed session cookie (``HttpOnly``, ``SameSite=Strict``); the token behind it is re-checked on
every request, so a revoked token ends its sessions at once. A cookie is ambient, so every
state-changing request made with one must also carry the session's CSRF token (a form field or the
``X-CSRF-Token`` header); a Bearer request carries no ambient credential and needs none.

Every process of a site shares what a request may meet on another one: the cookie key is a row of
the catalog (``web_secrets``), so a session issued by one process (or machine) is read by every
other, and the capture limiter counts in the catalog (``web_rate``), so N processes allow a token
``web.captures_per_minute`` in all, not N times it. The anonymous lookup limiter stays in each
process's memory: it guards GETs, and a GET never writes the catalog (reads are pure), so on N
processes an address gets up to N times its limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.access import TokenInfo
from archiver.errors import AuthenticationError, RateLimitError

if TYPE_CHECKING:
    from store.catalog import Catalog

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


def _legacy_secret(root: Path) -> bytes | None:
    """The key a server of the release before shared secrets kept in the store (``web-secret.key``):
    the catalog adopts it, so sessions issued before the upgrade stay valid."""
    try:
        return (root / "web-secret.key").read_bytes()
    except FileNotFoundError:
        return None


#: the environment variable that gives every server of a site the same local half of the session key
SITE_SECRET_ENV = "ARCHIVER_WEB_SECRET"  # noqa: S105  # a variable name, not a secret


def local_secret(root: Path) -> bytes:
    """The half of the session key that is never in the catalog, so that a copy of the catalog (a dump,
    a read-only role, a backup) cannot mint a session cookie: ``$ARCHIVER_WEB_SECRET`` when set — what
    every server of a multi-machine site is given, so that a cookie from one works on the others — else
    ``keys/web-session.key`` in this store directory (0600, made once; shared by this machine's server
    processes)."""
    import os

    from archiver.errors import UsageError

    env = os.environ.get(SITE_SECRET_ENV, "")
    if env:
        if len(env) < 32:
            raise UsageError(f"{SITE_SECRET_ENV} must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return env.encode()
    path = root / "keys" / "web-session.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    # made whole beside it, then linked into place: link() refuses an existing name, so processes that
    # start together all end up with the first one's key, and none ever reads a half-written file
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".web-session.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
    return path.read_bytes()


def server_secret(root: Path, catalog: Catalog) -> bytes:
    """The key that signs session cookies: HMAC of the catalog's random half (``web_secrets``, so that
    every process serving the store signs and reads the same cookies) with the local half
    (:func:`local_secret`, never in the catalog). The first process to start writes the catalog's
    half (INSERT … ON CONFLICT DO NOTHING: concurrent starts agree on the winner's key), adopting the
    store's old ``web-secret.key`` if it has one."""
    import datetime as dt

    with catalog.db() as d:
        row = d.one("SELECT value FROM web_secrets WHERE name='session'")
        if row is None:
            key = _legacy_secret(root) or secrets.token_bytes(32)
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            with d.tx():
                d.run("INSERT INTO web_secrets VALUES ('session', ?, ?) ON CONFLICT (name) DO NOTHING",
                      (base64.b64encode(key).decode(), now))
            row = d.one("SELECT value FROM web_secrets WHERE name='session'")
    assert row is not None
    return hmac.new(local_secret(root), base64.b64decode(str(row[0])), hashlib.sha256).digest()


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



#: refill = min(capacity, tokens + elapsed * rate); a take spends one token when refill >= 1. Constant
#: text: every value is a bound parameter.
_REFILL = ("(CASE WHEN web_rate.tokens + (? - web_rate.at) * ? > ? THEN ? "
           "ELSE web_rate.tokens + (? - web_rate.at) * ? END)")
_TAKE_SQL = ("INSERT INTO web_rate (bucket, tokens, at, granted) VALUES (?, ?, ?, 1) "  # noqa: S608
             f"ON CONFLICT (bucket) DO UPDATE SET tokens = CASE WHEN {_REFILL} >= 1 THEN {_REFILL} - 1 "
             f"ELSE {_REFILL} END, granted = CASE WHEN {_REFILL} >= 1 THEN 1 ELSE 0 END, at = ? "
             "RETURNING tokens, granted")


class SharedRateLimiter:
    """The capture limiter of every process of a site: one token bucket per key in the catalog
    (``web_rate``), refilled continuously as :class:`RateLimiter` does, taken in one atomic upsert so
    two processes (or machines) never both spend the last token. Times are wall-clock seconds, so the
    servers' clocks must agree (NTP) to within a fraction of a refill."""

    #: One take in this many sweeps the rows whose buckets have refilled (they hold nothing).
    SWEEP_EVERY = 200

    def __init__(self, catalog: Catalog, per_minute: int, what: str = "captures") -> None:
        self.catalog = catalog
        self.what = what
        self.rate = max(1, per_minute) / 60.0
        self.capacity = float(max(1, per_minute))
        self._n = 0

    def take(self, key: str) -> None:
        now = time.time()
        bucket = f"{self.what}:{key}"
        r = (now, self.rate, self.capacity, self.capacity, now, self.rate)
        args = (bucket, self.capacity - 1.0, now, *r, *r, *r, *r, now)
        with self.catalog.db() as d:
            with d.tx():
                row = d.one(_TAKE_SQL, args)
            self._n += 1
            if self._n % self.SWEEP_EVERY == 0:
                with d.tx():
                    d.run("DELETE FROM web_rate WHERE at < ?", (now - self.capacity / self.rate,))
        assert row is not None
        tokens, granted = float(row[0]), int(row[1])
        if not granted:
            wait = int((1.0 - tokens) / self.rate) + 1
            raise RateLimitError(f"too many {self.what} requested by {key!r}; try again in {wait} s",
                                 retry_after=wait)

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
    "SharedRateLimiter",
    "csrf_ok",
    "local_secret",
    "page_csp",
    "server_secret",
]
