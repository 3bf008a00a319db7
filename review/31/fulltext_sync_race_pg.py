"""Finding: two `fulltext.sync` runs at once on a PostgreSQL catalog index the same records twice.

The position check inside the transaction is a plain SELECT under READ COMMITTED: while the first
sync's transaction is open, the second one still reads the old position, passes the check, and
inserts the same sections again; its UPDATE of fulltext_state then waits and adds its counts too.
(On SQLite, BEGIN IMMEDIATE serialises the two and the check works.) Here a barrier holds each sync
just after its check, as two servers' job pools (or a server and a CLI `search`) would by chance."""

import json
import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
import tempfile
import threading

from _common import PAGE, page, site

from archiver.api import Archive, Backends
from store import fulltext as ft
from tests.services import LocalPostgres

with LocalPostgres() as pg:
    a, _ = Archive.init(pathlib.Path(tempfile.mkdtemp(prefix="rev31-")) / "store", operator="Reviewer",
                        backends=Backends(catalog=pg.database()))
    a.config.set("capture.allow_private", "true")
    with site() as srv:
        PAGE["terms"] = page("doc", "<h2>1. Data</h2><p>We keep your data for training models.</p>")
        rid = a.capture(srv.base_url + "/terms", actor="rev").record_id if hasattr(a, "capture") else None
    barrier = threading.Barrier(2, timeout=5)
    real = ft.replace_record

    def slow(d, record_id, rows, postgres):  # type: ignore[no-untyped-def]
        try:
            barrier.wait()  # both syncs have passed their position check
        except threading.BrokenBarrierError:
            pass
        return real(d, record_id, rows, postgres)

    ft.replace_record = slow
    errors: list[BaseException] = []

    def go() -> None:
        try:
            Archive.open(a.root).fulltext.sync()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    ts = [threading.Thread(target=go) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    ft.replace_record = real
    print("errors:", errors)
    with a.catalog.db() as d:
        n = d.one("SELECT COUNT(*) FROM fulltext_sections WHERE record_id=?", (rid,))
        distinct = d.one("SELECT COUNT(DISTINCT section) FROM fulltext_sections WHERE record_id=?", (rid,))
        state = d.one("SELECT sections, records FROM fulltext_state")
    print(f"record {rid}: {n[0]} index rows for {distinct[0]} sections; fulltext_state sections/records = {state}")
    hits = a.fulltext.search("training").hits
    print("search 'training':", [(h.record_id, h.section, h.versions) for h in hits])
