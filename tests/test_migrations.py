"""Schema migrations: a store made by the release before them (tests/data/store-v1, made by commit
ec710c2) upgrades in place and every record and bundle still verifies; a store upgraded by a newer
archiver is refused; concurrent opens apply each migration once; ``store migrate --to`` carries the
tables the migrations create, on a real local PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from archiver.api import Archive, Backends
from store.catalog import PostgresCatalog
from store.migrations import copied_tables, known, registry
from store.migrations.base import Migration
from tests.services import LocalPostgres

FIXTURE = Path(__file__).resolve().parent / "data" / "store-v1"
RECORDS = json.loads((FIXTURE / "records.json").read_text("utf-8"))["records"]
KEY_ID = "sha256:d67ad2a7af6c2e621ea35b23774054c24b6b8d253d33603e2291c35cce2a52a3"
#: The tables the release before migrations copied in `store migrate` (its hand-kept TABLES list).
OLD_COPIED = ["documents", "records", "artifacts", "addenda", "watches", "watch_runs", "signer_keys", "job_records",
              "tokens", "web_jobs", "verifications"]
#: the subsystems the release before migrations had (their version 1 is a baseline), and the tables of
#: those added since (the transparency log's, collections)
OLD_SUBSYSTEMS = frozenset({"core", "custody", "watches", "access", "queue", "search"})
TLOG_TABLES = frozenset({"tlog_leaves", "tlog_nodes", "tlog_state", "tlog_checkpoints", "tlog_witnesses"})
COLLECTION_TABLES = frozenset({"collections", "collection_items"})
PROVISION_TABLES = frozenset({"provisions", "provision_checks"})
EXHIBIT_TABLES = frozenset({"exhibits", "productions"})
WATCH_TABLES = frozenset({"watch_declarations"})  # watches/2: each watch's declaration versions
MATTER_TABLES = {"matters", "matter_notes", "matter_tags", "legal_holds"}
#: the web tier's shared state; only the session key is copied by `store migrate`
WEB_TABLES = frozenset({"web_secrets", "web_login_codes", "web_rate", "web_leases"})
ALERT_TABLES = frozenset({"alert_events", "alert_webhooks", "alert_deliveries", "alert_attempts"})


def old_store(tmp_path: Path, name: str = "store") -> Path:
    """A private copy of the fixture store, as the old release left it (git keeps no 0600 modes)."""
    root = tmp_path / name
    shutil.copytree(FIXTURE / "store", root)
    for key in (root / "keys").iterdir():
        key.chmod(0o600)
    shutil.copy(FIXTURE / "tsa-ca.crt", tmp_path / "tsa-ca.crt")
    return root


def sqlite_rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(root / "catalog.sqlite3")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def trust_tsa(cli, root: Path) -> None:  # type: ignore[no-untyped-def]
    """The fixture names its TSA root by the path it had when it was made; point it at our copy."""
    assert cli("config", "set", "--store", str(root), "tsa.certs", str(root.parent / "tsa-ca.crt")).code == 0


def test_old_store_is_migrated_at_open_and_verify_all_passes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = old_store(tmp_path)
    # the fixture is what the old release left: schema version 1, its tables, no migrations table
    tables = {r[0] for r in sqlite_rows(root, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert sqlite_rows(root, "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    assert "schema_migrations" not in tables and "outbox" not in tables and "journal" not in tables
    assert set(OLD_COPIED) <= tables
    custody_before = (root / "custody.log").read_bytes()
    rows_before = {t: sqlite_rows(root, f"SELECT * FROM {t} ORDER BY 1") for t in OLD_COPIED}

    archive = Archive.open(root)
    applied = [(m.subsystem, m.version, m.baseline) for m in archive.catalog.migrated_at_open]
    # version 1 of each subsystem the old release had is its baseline; a later subsystem (tlog) starts new
    assert applied == [(m.subsystem, m.version, m.version == 1 and m.subsystem in OLD_SUBSYSTEMS)
                       for m in registry("sqlite")]
    assert ("core", 2, False) in applied
    recorded = sqlite_rows(root, "SELECT subsystem, version, name FROM schema_migrations ORDER BY applied_at")
    assert sorted(recorded) == sorted((m.subsystem, m.version, m.name) for m in registry("sqlite"))
    assert sqlite_rows(root, "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    outbox = sqlite_rows(root, "PRAGMA table_info(outbox)")
    assert [(c[1], c[2], c[3], c[5]) for c in outbox] == [
        ("seq", "INTEGER", 0, 1), ("event", "TEXT", 1, 0), ("record_id", "TEXT", 0, 0),
        ("subject_sha256", "TEXT", 0, 0), ("actor", "TEXT", 1, 0), ("time", "TEXT", 1, 0), ("detail", "TEXT", 1, 0)]
    assert "AUTOINCREMENT" in sqlite_rows(root, "SELECT sql FROM sqlite_master WHERE name='outbox'")[0][0]
    assert [(c[1], c[2], c[5]) for c in sqlite_rows(root, "PRAGMA table_info(journal)")] == [
        ("name", "TEXT", 1), ("position", "BIGINT", 0), ("last_hash", "TEXT", 0)]
    # the old rows are untouched: a baseline records what is there, it rewrites nothing
    assert {t: sqlite_rows(root, f"SELECT * FROM {t} ORDER BY 1") for t in OLD_COPIED} == rows_before
    assert Archive.open(root).catalog.migrated_at_open == ()  # applied once

    trust_tsa(cli, root)
    r = cli("verify", "--store", str(root), "--all", "--json")
    assert r.code == 0, r.out
    reports = json.loads(r.out)
    assert sorted(v["subject"] for v in reports) == sorted(RECORDS) and all(v["ok"] for v in reports)
    assert any(c["name"].startswith("timestamp") and c["status"] == "PASS" for c in reports[0]["checks"])
    assert (root / "custody.log").read_bytes().startswith(custody_before)  # history carried, chain intact
    assert Archive.open(root).custody.verify_chain().ok


def test_bundles_exported_before_and_after_the_upgrade_verify(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = old_store(tmp_path)
    old_bundle = tmp_path / "bundle-v1.wacz"
    shutil.copy(FIXTURE / "bundle-v1.wacz", old_bundle)
    trust_tsa(cli, root)  # the first open: the store is migrated here
    assert sqlite_rows(root, "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    new_bundle = tmp_path / "bundle-v2.wacz"
    r = cli("export", "--store", str(root), "-o", str(new_bundle), *RECORDS)
    assert r.code == 0, r.err
    for bundle in (old_bundle, new_bundle):
        r = cli("verify", "--store", str(root), str(bundle), "--json")  # the store that made it
        assert r.code == 0, r.out
        assert json.loads(r.out)["verdict"] == "verified"
        # and a machine that never saw the store, trusting the signer's key and the TSA root it was given
        monkeypatch.setenv("ARCHIVER_HOME", str(tmp_path / "elsewhere"))
        r = cli("verify", str(bundle), "--trust-key", KEY_ID, "--tsa-certs", str(tmp_path / "tsa-ca.crt"), "--json")
        monkeypatch.delenv("ARCHIVER_HOME")
        assert r.code == 0, r.out
        assert json.loads(r.out)["verdict"] == "verified"


def test_store_migrate_applies_pending_and_reports_them(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = old_store(tmp_path)
    r = cli("store", "migrate", "--store", str(root), "--json")
    assert r.code == 0, r.err
    rep = json.loads(r.out)
    keys = [(m.subsystem, m.version) for m in registry("sqlite")]
    assert [(m["subsystem"], m["version"]) for m in rep["applied"]] == keys
    assert {(m["subsystem"], m["version"]) for m in rep["applied"] if m["baseline"]} == {
        k for k in keys if k[1] == 1 and k[0] in OLD_SUBSYSTEMS}
    assert [(m["subsystem"], m["version"]) for m in rep["migrations"]] == keys
    assert all(m["applied_at"] for m in rep["migrations"])
    r = cli("store", "migrate", "--store", str(root))
    assert r.code == 0 and "up to date" in r.out and "outbox and journal" in r.out, r.out
    again = json.loads(cli("store", "migrate", "--store", str(root), "--json").out)
    assert again["applied"] == [] and again["migrations"] == rep["migrations"]


@pytest.mark.parametrize("future", [
    "INSERT INTO schema_migrations VALUES ('core', 99, 'from a newer archiver', '2030-01-01T00:00:00.000Z')",
    "INSERT INTO schema_migrations VALUES ('log', 1, 'a subsystem we do not have', '2030-01-01T00:00:00.000Z')",
    "UPDATE meta SET value = '3' WHERE key = 'schema_version'",
])
def test_a_store_from_a_newer_archiver_is_refused(cli, tmp_path: Path, future: str) -> None:  # type: ignore[no-untyped-def]
    root = old_store(tmp_path)
    Archive.open(root)
    conn = sqlite3.connect(root / "catalog.sqlite3")
    with conn:
        conn.execute(future)
    conn.close()
    before = (root / "catalog.sqlite3").read_bytes()
    for args in (("list",), ("store", "migrate"), ("verify", "--all"), ("init",)):
        r = cli(*args, "--store", str(root))
        assert r.code == 4, (args, r.out, r.err)
        assert "newer archiver" in r.err and "upgrade archiver" in r.err, r.err
    assert (root / "catalog.sqlite3").read_bytes() == before  # refused before writing anything


def test_a_failing_migration_leaves_the_store_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All of a run's migrations commit together or not at all (DDL is transactional on both backends):
    here the last one fails, and the old store is left exactly as the old release made it."""
    from archiver.errors import StoreError
    from store.migrations import runner

    root = old_store(tmp_path)
    broken = Migration("search", 2, "fails: its table exists", sqlite=("CREATE TABLE records (x TEXT)",),
                       postgresql=None)
    monkeypatch.setattr(runner, "registry", lambda backend: (*registry(backend), broken))
    monkeypatch.setattr(runner, "known", lambda: {**known(), ("search", 2): broken})
    with pytest.raises(StoreError, match="already exists"):
        Archive.open(root)
    tables = {r[0] for r in sqlite_rows(root, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert "schema_migrations" not in tables and "outbox" not in tables and "journal" not in tables
    assert sqlite_rows(root, "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    monkeypatch.undo()
    assert len(Archive.open(root).catalog.migrated_at_open) == len(registry("sqlite"))


def _open_at(root: str, start: float) -> list[str]:
    """A process that opens the store at ``start`` (wall clock) and says which migrations it applied."""
    while time.time() < start:
        time.sleep(0.001)
    return [f"{m.subsystem}/{m.version}" for m in Archive.open(Path(root)).catalog.migrated_at_open]


def test_processes_opening_an_old_store_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    root = old_store(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        start = time.time() + 4.0  # after every worker has imported archiver
        result = pool.starmap_async(_open_at, [(str(root), start)] * 4)
        applied = result.get(timeout=120)
    everything = [m.key for m in registry("sqlite")]
    assert sorted(len(a) for a in applied) == [0, 0, 0, len(everything)], applied
    assert sqlite_rows(root, "SELECT COUNT(*) FROM schema_migrations") == [(len(everything),)]


def test_the_copied_tables_come_from_the_migrations() -> None:
    tables = copied_tables("sqlite", "postgresql")
    assert set(tables) == set(OLD_COPIED) | {"outbox", "journal"} | TLOG_TABLES | COLLECTION_TABLES | PROVISION_TABLES \
        | EXHIBIT_TABLES | WATCH_TABLES | MATTER_TABLES | {"web_secrets"} | ALERT_TABLES
    for parent, child in (("documents", "records"), ("records", "artifacts")):
        assert tables.index(parent) < tables.index(child)
    assert "custody" not in tables  # the SQLite custody chain is a file, copied by its own step
    with pytest.raises(ValueError, match="IF NOT EXISTS"):
        Migration("core", 1, "a baseline that would fail on an old store", sqlite=("CREATE TABLE t (x TEXT)",),
                  postgresql=None, baseline=True)
    assert all(m.version == n for sub in {m.subsystem for m in known().values()}
               for n, m in enumerate((m for m in known().values() if m.subsystem == sub), 1))


# ---- PostgreSQL ----------------------------------------------------------------------------------

def test_migrated_old_store_moves_to_postgresql_with_outbox_and_journal(  # type: ignore[no-untyped-def]
        cli, postgres: LocalPostgres, tmp_path: Path) -> None:
    root = old_store(tmp_path)
    trust_tsa(cli, root)  # opens (and migrates) the store
    conn = sqlite3.connect(root / "catalog.sqlite3")
    # the upgrade filled the outbox from the custody log, one row per evidence entry (3 captures, their
    # 3 timestamps, a derived addendum); then rows the write path will leave: a gap in seq must survive
    backfilled = conn.execute("SELECT seq, event, record_id FROM outbox ORDER BY seq").fetchall()
    assert [e for _, e, _ in backfilled].count("capture") == 3 and len(backfilled) == 7
    with conn:
        conn.execute("INSERT INTO outbox (seq, event, record_id, actor, time) VALUES (15, 'capture', ?, 'op', 't1')",
                     (RECORDS[0],))
        conn.execute("INSERT INTO outbox (seq, event, actor, time, detail) VALUES (19, 'export', 'op', 't2', '{}')")
        conn.execute("INSERT INTO journal VALUES ('transparency-log', 9, 'ab12')")
    conn.close()
    url = postgres.database()
    r = cli("store", "migrate", "--store", str(root), "--to", url, "--json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)["rows"]
    assert rows["records"] == 3 and rows["outbox"] == 9 and rows["journal"] == 2 and rows["tokens"] == 1
    moved = Archive.open(root)
    assert isinstance(moved.catalog, PostgresCatalog)
    with moved.catalog.db() as d:
        assert d.rows("SELECT seq, event, record_id FROM outbox ORDER BY seq") == [
            *[tuple(r) for r in backfilled], (15, "capture", RECORDS[0]), (19, "export", None)]
        assert ("transparency-log", 9, "ab12") in d.rows("SELECT * FROM journal")
        assert d.one("INSERT INTO outbox (event, actor, time) VALUES ('x', 'op', 't3') RETURNING seq") == (20,)
        keys = {(str(s), int(v)) for s, v in d.rows("SELECT subsystem, version FROM schema_migrations")}
    assert keys == {(m.subsystem, m.version) for m in registry("postgresql")}
    assert ("custody", 1) in keys and ("queue", 1) in keys
    r = cli("verify", "--store", str(root), "--all", "--json")
    assert r.code == 0, r.out
    assert len(json.loads(r.out)) == 3


def _as_old_release(url: str) -> None:
    """Put a PostgreSQL catalog back into the shape the release before migrations left it in: its
    tables, ``meta.schema_version`` 1, no ``schema_migrations``, no outbox or journal, and neither
    of the two things that release made only when used (the search index, ``queue_failures``)."""
    cat = PostgresCatalog(url)
    with cat.db() as d, d.tx():
        for stmt in ("DROP TABLE schema_migrations", "DROP TABLE outbox", "DROP TABLE journal",
                     "DROP TABLE queue_failures", "DROP INDEX records_captured",
                     *(f"DROP TABLE {t}" for t in sorted(TLOG_TABLES)),
                     "DROP TABLE fulltext_sections", "DROP TABLE fulltext_state",
                     "DROP TABLE provision_checks", "DROP TABLE provisions",
                     *(f"DROP TABLE {t}" for t in sorted(EXHIBIT_TABLES)),
                     "DROP TABLE watch_declarations",
                     "DROP TABLE legal_holds", "DROP TABLE matter_tags", "DROP TABLE matter_notes",
                     "DROP TABLE legal_hold_state",
                     "DROP TABLE matters", "DROP TABLE collection_items", "DROP TABLE collections",
                     *(f"DROP TABLE {t}" for t in sorted(WEB_TABLES)),
                     "ALTER TABLE web_jobs DROP COLUMN owner", "ALTER TABLE web_jobs DROP COLUMN lease_until",
                     *(f"DROP TABLE {t}" for t in sorted(ALERT_TABLES)),
                     "DROP INDEX records_final_url", "DROP INDEX records_text_trgm",
                     "UPDATE meta SET value = '1' WHERE key = 'schema_version'"):
            d.run(stmt)
    cat.close()


def test_pending_migrations_on_an_old_postgresql_catalog_apply_once(  # type: ignore[no-untyped-def]
        cli, postgres: LocalPostgres, site, tmp_path: Path) -> None:
    url = postgres.database()
    a, _ = Archive.init(tmp_path / "s", operator="Old Operator", backends=Backends(catalog=url))
    a.config.set("capture.allow_private", "true")
    rid = a.capture(site.base_url + "/policy").record_id
    a.catalog.close()  # type: ignore[attr-defined]
    _as_old_release(url)

    applied: list[list[str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def open_store() -> None:
        barrier.wait(timeout=30)
        got = Archive.open(tmp_path / "s")
        with lock:
            applied.append([f"{m.subsystem}/{m.version}" for m in got.catalog.migrated_at_open])
        got.catalog.close()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(len(x) for x in applied) == [0, 0, 0, len(registry("postgresql"))], applied
    b = Archive.open(tmp_path / "s")
    with b.catalog.db() as d:
        assert d.one("SELECT value FROM meta WHERE key='schema_version'") == ("2",)
        assert d.one("SELECT COUNT(*) FROM schema_migrations") == (len(registry("postgresql")),)
        # the records made before the upgrade reach the outbox once (a transparency log must see them)
        evidence = [e for e in b.custody.entries() if e.event in ("capture", "timestamp", "derived", "import")]
        assert d.one("SELECT COUNT(*) FROM outbox") == (len(evidence),) and evidence
        assert d.one("SELECT 1 FROM pg_indexes WHERE indexname = 'records_captured'") == (1,)
    assert [s.record_id for s in b.list()] == [rid] and b.custody.verify_chain().ok
    rep = json.loads(cli("store", "migrate", "--store", str(tmp_path / "s"), "--json").out)
    assert rep["applied"] == [] and all(m["applied_at"] for m in rep["migrations"])
    assert cli("verify", "--store", str(tmp_path / "s"), rid).code == 0


def test_a_capture_racing_store_migrate_to_is_kept_or_refused(  # type: ignore[no-untyped-def]
        postgres: LocalPostgres, site, tmp_path: Path) -> None:
    """A process that opened the store before ``store migrate --to`` either commits before the copy (and
    is copied) or waits for it and is then refused with a clear error: never a record left in the old
    catalog only (before, a capture committing during the copy was in the moved custody log but not in
    the moved catalog, and verify --all passed)."""
    from archiver.errors import StoreError
    from archiver.migrate import migrate_catalog

    a, _ = Archive.init(tmp_path / "s", operator="Mover")
    a.config.set("capture.allow_private", "true")
    url = site.base_url + "/plain"
    a.capture(url, passphrase=lambda: None)
    other = Archive.open(tmp_path / "s")  # a long-running process (a web server, a worker)
    copying = threading.Event()
    original = a.catalog.dump

    def slow_dump(table: str, columns: Any) -> Any:
        copying.set()
        time.sleep(0.05)
        return original(table, columns)

    a.catalog.dump = slow_dump  # type: ignore[method-assign]
    outcome: list[object] = []

    def capture() -> None:
        assert copying.wait(30)
        try:
            outcome.append(other.capture(url, passphrase=lambda: None).record_id)
        except StoreError as exc:
            outcome.append(exc)

    t = threading.Thread(target=capture)
    t.start()
    migrate_catalog(a, postgres.database())
    t.join(60)
    assert len(outcome) == 1
    assert isinstance(outcome[0], StoreError) and "moved to" in outcome[0].message, outcome
    moved = Archive.open(tmp_path / "s")
    assert moved.catalog.backend == "postgresql" and moved.catalog.count() == 1
    assert len([e for e in moved.custody.entries() if e.event == "capture"]) == 1
    again = moved.capture(url, passphrase=lambda: None)  # run again: it goes to the new catalog, chained
    assert again.previous is not None
    assert all(v.ok for v in moved.verify_all())
    moved.catalog.close()  # type: ignore[attr-defined]
