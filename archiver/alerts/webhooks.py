"""Webhooks per the Standard Webhooks specification (standardwebhooks.com).

Each message carries ``webhook-id`` (the same on every retry of one message, so a receiver can drop
duplicates), ``webhook-timestamp`` (seconds since the epoch, of *this* attempt: receivers refuse old
ones) and ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256 over ``id.timestamp.body`` with the
key that the secret ``whsec_<base64>`` encodes. The body is the event as ``{"type", "timestamp",
"data"}``.

The secret is shown once, when the webhook is added, and kept as a 0600 file in the store
(``alerts/webhooks/<id>.secret``) like the other secrets (signing keys, the web session key): it must be
readable to sign, so it cannot be hashed like an access token, and it is never listed or logged.

Why the SSRF guard: a webhook URL is a request the server makes on someone's say-so, exactly like a
capture. The URL is refused when it resolves to a private, loopback or link-local address unless
private targets are allowed (the webhook's ``--allow-private``, ``capture.allow_private``,
``ARCHIVER_ALLOW_PRIVATE``), and every delivery goes through the capture transport's connection
classes (``capture/net.py``), which check every DNS answer and the connected peer again — a name
that resolved to a public address when it was added cannot be pointed at 127.0.0.1 later.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.alerts.events import check_filters, new_id
from archiver.errors import ArchiverError, BlockedAddressError, NotFoundError, UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Store

SECRET_PREFIX = "whsec_"  # noqa: S105  # the spec's prefix, not a secret
_ID = re.compile(r"wh_[0-9a-f]{24}")


@dataclass(frozen=True, slots=True)
class Webhook(Report):
    """A registered webhook: where events go and which ones (empty: all). Never its secret."""

    id: str
    url: str
    events: tuple[str, ...]
    allow_private: bool
    created_at: str
    created_by: str


@dataclass(frozen=True, slots=True)
class WebhookCreated(Report):
    """What ``alerts webhook add`` answers, once: the webhook's ID and its signing secret."""

    id: str
    secret: str
    url: str
    events: tuple[str, ...]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _secret_path(core: Store, webhook_id: str) -> Path:
    if not _ID.fullmatch(webhook_id):
        raise UsageError(f"not a webhook ID: {webhook_id!r}")
    return Path(core.root) / "alerts" / "webhooks" / f"{webhook_id}.secret"


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret.encode("ascii"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def secret_of(core: Store, webhook_id: str) -> str:
    try:
        return _secret_path(core, webhook_id).read_text("ascii").strip()
    except FileNotFoundError:
        raise NotFoundError(f"the signing secret of webhook {webhook_id} is not in this store",
                            hint="remove the webhook and add it again (a new secret)") from None


def check_target(core: Store, url: str, *, allow_private: bool = False) -> str:
    """Refuse a URL that cannot be a webhook: not http(s), or (unless private targets are allowed)
    resolving to a private, loopback or link-local address — as the capture SSRF guard does."""
    import socket

    from archiver.capture.fetch import validate_url
    from archiver.capture.net import address_is_public
    from archiver.errors import DNSError

    url = validate_url(url)
    if core.allow_private(allow_private):
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DNSError(f"cannot resolve the webhook's host {host!r}: {exc.strerror}") from exc
    for info in infos:
        ip = str(info[4][0])
        if not address_is_public(ip):
            raise BlockedAddressError(f"refusing webhook {url}: {host} is {ip}, not a public address",
                                      hint="private, loopback and link-local receivers are refused like capture "
                                           "targets; allow them with --allow-private or "
                                           "`archiver config set capture.allow_private true`")
    return url


def add(core: Store, url: str, *, events: tuple[str, ...] = (), allow_private: bool = False,
        actor: str) -> WebhookCreated:
    """Register a webhook and make its secret (returned once). Custody: ``webhook-add``."""
    from store.custody import Event

    url = check_target(core, url, allow_private=allow_private)
    filters = check_filters(events)
    webhook_id = new_id("wh")
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    _write_secret(_secret_path(core, webhook_id), secret)  # before the row: a listed webhook can always sign
    now = _now()

    def index(d: Any) -> None:
        d.run("INSERT INTO alert_webhooks (webhook_id, url, events, allow_private, created_at, created_by) "
              "VALUES (?,?,?,?,?,?)", (webhook_id, url, json.dumps(list(filters)), int(allow_private), now, actor))
    core.ledger.commit([Event("webhook-add", detail={"webhook": webhook_id, "url": url})], actor=actor, index=index)
    return WebhookCreated(id=webhook_id, secret=secret, url=url, events=filters)


def _webhook(row: tuple[Any, ...]) -> Webhook:
    return Webhook(id=str(row[0]), url=str(row[1]), events=tuple(json.loads(row[2])), allow_private=bool(row[3]),
                   created_at=str(row[4]), created_by=str(row[5]))


def list_all(core: Store) -> list[Webhook]:
    with core.catalog.db() as d:
        rows = d.rows("SELECT webhook_id, url, events, allow_private, created_at, created_by FROM alert_webhooks "
                      "WHERE removed_at IS NULL ORDER BY created_at, webhook_id")
    return [_webhook(r) for r in rows]


def get(core: Store, webhook_id: str) -> Webhook:
    with core.catalog.db() as d:
        row = d.one("SELECT webhook_id, url, events, allow_private, created_at, created_by FROM alert_webhooks "
                    "WHERE webhook_id=?", (webhook_id,))
    if row is None:
        raise NotFoundError(f"no webhook {webhook_id!r}", hint="`archiver alerts webhook list` shows them")
    return _webhook(row)


def remove(core: Store, webhook_id: str, *, actor: str) -> Webhook:
    """Stop sending to a webhook: its pending deliveries are cancelled (kept in the log), its secret
    deleted. Custody: ``webhook-remove``."""
    from store.custody import Event

    hook = get(core, webhook_id)
    now = _now()

    def prepare(d: Any) -> tuple[list[Event], None, None]:
        if d.run("UPDATE alert_webhooks SET removed_at=? WHERE webhook_id=? AND removed_at IS NULL",
                 (now, webhook_id)) != 1:
            raise NotFoundError(f"webhook {webhook_id} was removed already")
        d.run("UPDATE alert_deliveries SET status='cancelled', last_error=? WHERE channel='webhook' AND target=? "
              "AND status='pending'", ("webhook removed", webhook_id))
        return [Event("webhook-remove", detail={"webhook": webhook_id, "url": hook.url})], None, None
    core.ledger.run(prepare, actor=actor)
    _secret_path(core, webhook_id).unlink(missing_ok=True)
    return hook


# ---- the message -----------------------------------------------------------------------------------
def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64(HMAC-SHA256(key, id.timestamp.body))."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def headers(secret: str | None, message_id: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    ts = int(now if now is not None else time.time())
    out = {"webhook-id": message_id, "webhook-timestamp": str(ts), "content-type": "application/json",
           "user-agent": "archiver-alerts"}
    if secret:
        out["webhook-signature"] = sign(secret, message_id, ts, body)
    return out


@dataclass(frozen=True, slots=True)
class PostResult:
    ok: bool
    http_status: int | None
    error: str | None
    duration_ms: int


def post(core: Store, url: str, body: bytes, hdrs: dict[str, str], *, allow_private: bool = False) -> PostResult:
    """POST once through the capture transport (the SSRF guard on every DNS answer and on the peer);
    no redirect is followed (a receiver answers, it does not send us elsewhere). Never raises."""
    from archiver.capture.net import CaptureState, recording_session

    timeout = core.config.float_("alerts.timeout")
    started = time.monotonic()
    state = CaptureState(deadline=started + 3 * timeout, read_timeout=timeout, max_wire_bytes=1 << 20,
                         allow_private=core.allow_private(allow_private), verify_tls=True)
    session = recording_session(state)
    try:
        with session.post(url, data=body, headers=hdrs, timeout=timeout, allow_redirects=False, stream=True) as resp:
            code = resp.status_code
        ms = int((time.monotonic() - started) * 1000)
        if 200 <= code < 300:
            return PostResult(True, code, None, ms)
        return PostResult(False, code, f"HTTP {code}", ms)
    except ArchiverError as exc:  # the guard, the deadline, the size cap
        return PostResult(False, None, exc.message, int((time.monotonic() - started) * 1000))
    except Exception as exc:  # requests' and urllib3's errors: the receiver is down, slow or broken
        reason = type(exc).__name__
        text = str(exc)
        if "refused" in text.lower():
            reason += ": connection refused"
        return PostResult(False, None, reason, int((time.monotonic() - started) * 1000))
    finally:
        session.close()


__all__ = ["SECRET_PREFIX", "PostResult", "Webhook", "WebhookCreated", "add", "check_target", "get", "headers",
           "list_all", "post", "remove", "secret_of", "sign"]
