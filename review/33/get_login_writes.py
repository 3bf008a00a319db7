"""Finding: `GET /login?once=CODE` writes the catalog (DELETE FROM web_login_codes), against the rule
"no GET writes the catalog" (docs/architecture.md, Reads are pure). The old code popped the code from
a dict in memory; now a GET deletes a row. Consequence beyond the rule: anything that fetches the
printed link (a chat/mail link preview, a browser prefetch) uses the code up.
Watches SQLite's PRAGMA data_version from a second connection, as tests/test_web_policy.py does."""
from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

from archiver.access import create_token, issue_login_code
from archiver.api import Archive
from archiver.web import create_app

with tempfile.TemporaryDirectory() as tmp:
    a, _ = Archive.init(Path(tmp) / "store", operator="Review")
    create_token(a, "admin", "admin", actor="tester")
    app = create_app(a, start_jobs=False)
    code = issue_login_code(a, "admin")
    db = sqlite3.connect(a.root / "catalog.sqlite3")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        before = db.execute("PRAGMA data_version").fetchone()[0]
        rows_before = db.execute("SELECT COUNT(*) FROM web_login_codes").fetchone()[0]
        r = c.get(f"/login?once={code}", follow_redirects=False)
        after = db.execute("PRAGMA data_version").fetchone()[0]
        rows_after = db.execute("SELECT COUNT(*) FROM web_login_codes").fetchone()[0]
    app.state.web.runner.shutdown()
    print(f"GET /login?once=… -> {r.status_code}; data_version {before} -> {after}; "
          f"web_login_codes rows {rows_before} -> {rows_after}")
    print("DEFECT: a GET wrote the catalog" if after != before else "ok: pure")
