"""Finding: a request in flight when a token is revoked through this process caches the token's
pre-revocation row *after* the revocation cleared the cache (archiver/access.py: authenticate reads
the row, revoke_token -> forget_cached() runs, then _remember stores the stale row). The token is then
accepted for another web.token_cache_seconds, though the docs promise "a revocation made through this
process forgets every cached check at once". The interleaving is forced with a pause hook (no timing luck)."""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import archiver.access as access
from archiver.api import Archive
from archiver.errors import AuthenticationError

with tempfile.TemporaryDirectory() as tmp:
    a, _ = Archive.init(Path(tmp) / "store", operator="Review")
    secret = access.create_token(a, "alice", "viewer", actor="tester").token
    read, go = threading.Event(), threading.Event()
    real = access._still_valid

    def paused(info: access.TokenInfo) -> access.TokenInfo:  # runs between the SELECT and _remember
        if threading.current_thread().name == "request":
            read.set()
            go.wait(10)
        return real(info)

    access._still_valid = paused  # type: ignore[assignment]
    t = threading.Thread(target=access.authenticate, args=(a, secret), kwargs={"ttl": 30.0}, name="request")
    t.start()
    assert read.wait(10)
    access.revoke_token(a, "alice", actor="admin")  # revoked here: the cache is cleared "at once"
    go.set()
    t.join(10)
    access._still_valid = real  # type: ignore[assignment]
    try:
        info = access.authenticate(a, secret, ttl=30.0)
        print(f"after revocation through this process: authenticate -> accepted {info.name!r} "
              f"(revoked_at in cache: {info.revoked_at})")
        print("DEFECT: revoked token served from the cache")
    except AuthenticationError as exc:
        print("after revocation: refused:", exc.message)
        print("ok")
