"""Who may use the server: named access tokens with a role, stored hashed, shown once.

A token is 32 random bytes (256 bits) in URL-safe base64 behind the prefix ``arch_``; the catalog
keeps only its SHA-256, so a copy of the store cannot be used to log in. Roles nest:
``viewer`` reads, cites and verifies; ``capturer`` also captures, watches and exports; ``admin``
also manages tokens and settings. Creating and revoking a token are custody events.

A server may reuse a successful check for a few seconds (``ttl``: ``archiver serve`` passes
``web.token_cache_seconds``, 5 s by default) instead of a catalog query per request. The price is
stated: a token revoked by *another* process (the CLI, another server) is still accepted by this one
for at most ``ttl`` seconds; a revocation made through this process forgets every cached check at
once, and an expiry is checked on every use. Failures are never cached.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from archiver.errors import AuthenticationError, NotFoundError, PermissionDeniedError, StoreConflictError, UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Store

PREFIX = "arch_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([hdwy])\s*$")
_UNIT_S = {"h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class Role(str, Enum):
    VIEWER = "viewer"
    CAPTURER = "capturer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "capturer": 1, "admin": 2}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class TokenInfo(Report):
    """A token as listed: never its secret, which exists only in the answer to ``create``."""

    name: str
    role: Role
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.expired()

    def expired(self, now: dt.datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or _now()) >= dt.datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class NewToken(Report):
    """The answer to ``tokens create``: the only time the secret is shown."""

    name: str
    role: Role
    token: str
    expires_at: str | None


#: Successful checks this process may reuse: (store root, "secret:"+digest | "name:"+name) ->
#: (monotonic time of the check, the token). Bounded: cleared whole when full (a refill costs one query each).
_CACHE: dict[tuple[str, str], tuple[float, TokenInfo]] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 4096
#: Bumped by every forget_cached(): a check that read the catalog before a revocation made here must
#: not be remembered after it (it would bring the revoked token back for ``ttl`` seconds).
_CACHE_GEN = [0]


def _cached(store: Store, key: str, ttl: float) -> TokenInfo | None:
    if ttl <= 0:
        return None
    with _CACHE_LOCK:
        hit = _CACHE.get((str(store.root), key))
    if hit is None or time.monotonic() - hit[0] > ttl:
        return None
    return hit[1]


def _generation() -> int:
    with _CACHE_LOCK:
        return _CACHE_GEN[0]


def _remember(store: Store, key: str, info: TokenInfo, ttl: float, gen: int) -> None:
    """Cache ``info`` read while the cache was at generation ``gen``, unless a revocation came since."""
    if ttl <= 0:
        return
    with _CACHE_LOCK:
        if _CACHE_GEN[0] != gen:
            return
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[(str(store.root), key)] = (time.monotonic(), info)


def forget_cached() -> None:
    """Drop every cached check of this process (a revocation made here takes effect at once)."""
    with _CACHE_LOCK:
        _CACHE_GEN[0] += 1
        _CACHE.clear()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_expiry(text: str | None, now: dt.datetime | None = None) -> str | None:
    """``90d``, ``12h``, ``2w``, ``1y`` or ``YYYY-MM-DD`` → an ISO time; None for no expiry."""
    if text is None:
        return None
    start = now or _now()
    m = _DURATION.match(text.lower())
    if m and int(m.group(1)) > 0:
        return _iso(start + dt.timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)]))
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--expires takes 90d, 12h, 2w, 1y or YYYY-MM-DD, not {text!r}") from None
    when = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    if when <= start:
        raise UsageError(f"--expires {text} is in the past")
    return _iso(when)


def _info(row: tuple[object, ...]) -> TokenInfo:
    return TokenInfo(name=str(row[0]), role=Role(str(row[1])), created_at=str(row[2]),
                     expires_at=str(row[3]) if row[3] else None, revoked_at=str(row[4]) if row[4] else None)


def create_token(store: Store, name: str, role: str, *, actor: str, expires: str | None = None) -> NewToken:
    """A new token (its secret shown once): the row and the ``token-create`` entry in one unit of work."""
    if not _NAME.match(name):
        raise UsageError(f"token name {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    try:
        r = Role(role)
    except ValueError:
        raise UsageError(f"unknown role {role!r}", hint="viewer, capturer or admin") from None
    expires_at = parse_expiry(expires)
    secret = PREFIX + secrets.token_urlsafe(32)
    from store.custody import Event

    def index(d: Any) -> None:
        d.run("INSERT INTO tokens VALUES (?,?,?,?,?,?)",
              (name, r.value, digest(secret), _iso(_now()), expires_at, None))
    try:
        store.ledger.commit([Event("token-create", detail={"name": name, "role": r.value,
                                                           "expires_at": expires_at or ""})],
                            actor=actor, index=index)
    except StoreConflictError as exc:
        raise UsageError(f"a token named {name!r} exists already",
                         hint=f"`archiver tokens revoke {name}` first, or choose another name") from exc
    return NewToken(name=name, role=r, token=secret, expires_at=expires_at)


def list_tokens(store: Store) -> list[TokenInfo]:
    with store.catalog.db() as d:
        rows = d.rows("SELECT name, role, created_at, expires_at, revoked_at FROM tokens ORDER BY created_at, name")
    return [_info(r) for r in rows]


def active_tokens(store: Store) -> int:
    return sum(1 for t in list_tokens(store) if t.active)


def revoke_token(store: Store, name: str, *, actor: str) -> TokenInfo:
    """Revoke a token (idempotent: revoking a revoked token changes and logs nothing)."""
    from store.custody import Event

    def prepare(d: Any) -> tuple[list[Event], None, tuple[object, ...] | None]:
        row = d.one("SELECT name, role, created_at, expires_at, revoked_at FROM tokens WHERE name=?", (name,))
        if row is None:
            raise NotFoundError(f"no token named {name!r}", hint="see `archiver tokens list`")
        if row[4] is not None:
            return [], None, row
        d.run("UPDATE tokens SET revoked_at=? WHERE name=? AND revoked_at IS NULL", (_iso(_now()), name))
        return ([Event("token-revoke", detail={"name": name})], None,
                d.one("SELECT name, role, created_at, expires_at, revoked_at FROM tokens WHERE name=?", (name,)))
    _, row = store.ledger.run(prepare, actor=actor)
    forget_cached()
    assert row is not None
    return _info(row)


def _still_valid(info: TokenInfo) -> TokenInfo:
    if info.revoked_at is not None:
        raise AuthenticationError(f"token {info.name!r} was revoked at {info.revoked_at}")
    if info.expired():
        raise AuthenticationError(f"token {info.name!r} expired at {info.expires_at}")
    return info


def authenticate(store: Store, secret: str | None, *, ttl: float = 0.0) -> TokenInfo:
    """The token a secret belongs to, if it is active; AuthenticationError otherwise. With ``ttl`` a
    success of the last ``ttl`` seconds is reused without a query (see the module docstring)."""
    if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
        raise AuthenticationError("no valid access token")
    want = digest(secret)
    hit = _cached(store, "secret:" + want, ttl)
    if hit is not None:
        return _still_valid(hit)
    gen = _generation()
    with store.catalog.db() as d:
        row = d.one("SELECT name, role, created_at, expires_at, revoked_at, token_sha256 FROM tokens "
                    "WHERE token_sha256=?", (want,))
    if row is None or not hmac.compare_digest(str(row[5]), want):
        raise AuthenticationError("unknown access token")
    info = _still_valid(_info(row[:5]))
    _remember(store, "secret:" + want, info, ttl, gen)
    return info


def require(info: TokenInfo, needed: Role) -> None:
    if not info.role.allows(needed):
        raise PermissionDeniedError(f"token {info.name!r} has role {info.role.value}; this needs {needed.value}")


def token_by_name(store: Store, name: str, *, ttl: float = 0.0) -> TokenInfo:
    """An active token by name (browser sessions re-check it on every request, or every ``ttl`` seconds
    at most on a server: see the module docstring)."""
    hit = _cached(store, "name:" + name, ttl)
    if hit is not None and hit.active:
        return hit
    gen = _generation()
    with store.catalog.db() as d:
        row = d.one("SELECT name, role, created_at, expires_at, revoked_at FROM tokens WHERE name=?", (name,))
    if row is None:
        raise AuthenticationError("the session's token no longer exists; log in again")
    info = _info(row)
    if not info.active:
        raise AuthenticationError(f"token {name!r} is revoked or expired; log in again")
    _remember(store, "name:" + name, info, ttl, gen)
    return info


def issue_login_code(store: Store, token_name: str, ttl: float = 600.0) -> str:
    """A one-time login code for ``token_name`` (``archiver serve`` prints it in a link on first start),
    valid ``ttl`` seconds. Kept in the catalog, hashed like a token, so whichever process or machine
    of the site the link reaches can take it, once."""
    code = secrets.token_urlsafe(24)
    now = time.time()
    with store.catalog.db() as d, d.tx():
        d.run("DELETE FROM web_login_codes WHERE expires_at < ?", (now,))
        d.run("INSERT INTO web_login_codes VALUES (?,?,?)", (digest(code), token_name, now + ttl))
    return code


def take_login_code(store: Store, code: str) -> str | None:
    """The token name of a valid code, used up (one DELETE: two processes cannot both take it); None for
    a used, expired or unknown one."""
    if not code or len(code) > 200:
        return None
    with store.catalog.db() as d, d.tx():
        row = d.one("DELETE FROM web_login_codes WHERE code_sha256=? RETURNING token_name, expires_at",
                    (digest(code),))
    if row is None or float(row[1]) <= time.time():
        return None
    return str(row[0])


class Tokens:
    """Access tokens of one store (``archive.tokens``): create, list, revoke, authenticate."""

    def __init__(self, core: Store) -> None:
        self.core = core

    def create(self, name: str, role: str, *, actor: str, expires: str | None = None) -> NewToken:
        return create_token(self.core, name, role, actor=actor, expires=expires)

    def all(self) -> list[TokenInfo]:
        return list_tokens(self.core)

    def active(self) -> int:
        return active_tokens(self.core)

    def revoke(self, name: str, *, actor: str) -> TokenInfo:
        return revoke_token(self.core, name, actor=actor)

    def authenticate(self, secret: str | None) -> TokenInfo:
        return authenticate(self.core, secret)


__all__ = [
    "NewToken",
    "Role",
    "TokenInfo",
    "Tokens",
    "active_tokens",
    "authenticate",
    "create_token",
    "forget_cached",
    "issue_login_code",
    "list_tokens",
    "parse_expiry",
    "require",
    "revoke_token",
    "take_login_code",
    "token_by_name",
]

