"""Finding (not fixed, low): the same query answers differently on the two catalogs. PostgreSQL's
'english' configuration drops stop words, so a query made of them ("terms of use" → "terms & use"
is fine, but "to be or not", "you may", "all of us") finds nothing there and finds the sections on
SQLite (FTS5 keeps every word); a phrase with a stop word also matches other words in its place."""

import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from _common import PAGE, page, site

from archiver.api import Archive, Backends
from tests.services import LocalPostgres

BODY = ("<h2>1. Accounts</h2><p>You may close it. It is all of us who decide.</p>"
        "<h2>2. Other</h2><p>You can close it. It is all but us who decide.</p>")
with LocalPostgres() as pg, site() as srv:
    PAGE["terms"] = page("doc", BODY)
    for name, backends in (("sqlite", None), ("postgresql", Backends(catalog=pg.database()))):
        a, _ = Archive.init(pathlib.Path(tempfile.mkdtemp(prefix="rev31-")) / "store", operator="R",
                            backends=backends)
        a.config.set("capture.allow_private", "true")
        a.capture(srv.base_url + "/terms")
        a.fulltext.sync()
        for q in ("you may", '"all of us"', "it is"):
            print(f"{name:<10} {q!r:<14}", [(h.section, h.snippet[:40]) for h in a.fulltext.search(q).hits])
