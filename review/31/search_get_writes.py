"""Finding (pre-existing on main 6c87349, seen in tests/test_fulltext.py's own "writes nothing" test,
which fails there): a viewer's GET /api/v1/search and /search write to the catalog. Which table?"""

import sqlite3
import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
from _common import PAGE, page, site, store

from fastapi.testclient import TestClient

from archiver.access import create_token
from archiver.options import CaptureOptions
from archiver.web import create_app

a = store()
with site() as srv:
    PAGE["terms"] = page("doc", "<h2>2. Personal data</h2><p>We process personal data.</p>")
    a.capture(srv.base_url + "/terms", CaptureOptions(entity="Example"))
a.fulltext.sync()
viewer = create_token(a, "v", "viewer", actor="tester").token
db = sqlite3.connect(a.root / "catalog.sqlite3")
tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'fulltext_%'")]


def snap() -> dict[str, list[tuple]]:
    return {t: db.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables if t != "fulltext"}


before = snap()
with TestClient(create_app(a, start_jobs=False)) as c:
    start = snap()
    print("app start-up wrote:", {t: (len(before[t]), len(start[t])) for t in start if before[t] != start[t]})
    h = {"Authorization": f"Bearer {viewer}"}
    for path in ("/api/v1/search", "/search", "/api/v1/provisions", "/provisions"):
        b = snap()
        r = c.get(path, params={"q": "personal data"}, headers=h)
        after = snap()
        print(path, r.status_code, "tables written:", {t: (len(b[t]), len(after[t])) for t in tables
                                                       if t in b and b[t] != after[t]})
