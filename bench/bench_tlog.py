"""The transparency log's costs: append CPU per record, ``log prove`` and ``log verify --from`` at a
large size, and disk per entry.

1. Append, real records: BENCH_TLOG_RECORDS (1,000) real captures of a loopback page, one at a time
   through ``Archive.capture`` (the write path: manifest blob, ledger unit of work, outbox row). The
   log's append runs after each commit (``Ledger.on_commit`` → ``TransparencyLog.sync``); the bench
   wraps it and reads the CPU time (``time.process_time``) of each call: the log's share of a record.
   The peer, in the same run, is the rest of the capture's CPU.
2. Scale: BENCH_TLOG_ENTRIES (1,000,000) entries. A million real captures take hours, so the outbox
   rows are written directly (what the ledger writes for a capture: ``capture`` events naming a record
   and a SHA-256, in commit order; their documents do not exist, which neither proving nor consistency
   reads), then consumed by the real append path, ``TransparencyLog.sync`` — in chunks, tiles written
   as they fill — with a checkpoint signed half-way and one at the end. Then ``prove`` (the library call
   and the CLI) and ``verify_from`` (library and CLI) from the half-way checkpoint, median of 21.
3. Disk: catalog bytes (the tlog_* tables, by SQLite's dbstat) and tile files (bytes on disk) per entry.

Prints a table; asserts nothing. Writes nothing outside a temp directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archiver.api import Archive  # noqa: E402
from archiver.provenance.ids import ALPHABET  # noqa: E402

RECORDS = int(os.environ.get("BENCH_TLOG_RECORDS", "1000"))
ENTRIES = int(os.environ.get("BENCH_TLOG_ENTRIES", "1000000"))
ARCHIVER = [sys.executable, "-m", "archiver.cli"]


def ms(s: float) -> str:
    return f"{s * 1000:.2f} ms"


def append_real(tmp: Path) -> None:
    from tests.conftest import ROUTES, SampleSite

    a, _ = Archive.init(tmp / "real", operator="Bench")
    a.config.set("capture.allow_private", "true")
    log_cpu: list[float] = []
    sync = a.log.sync

    def timed() -> object:
        t = time.process_time()
        out = sync()
        log_cpu.append(time.process_time() - t)
        return out
    a.ledger.on_commit = timed
    whole: list[float] = []
    with SampleSite(ROUTES) as site:
        for i in range(RECORDS):
            t = time.process_time()
            a.capture(f"{site.base_url}/plain?bench={i}", passphrase=lambda: None, stamp=False)
            whole.append(time.process_time() - t)
    assert a.log.size() == RECORDS and len(log_cpu) == RECORDS
    print(f"append, {RECORDS} real captures one by one (the log's sync after each commit):")
    print(f"  log append CPU per record: median {ms(statistics.median(log_cpu))}, "
          f"p90 {ms(statistics.quantiles(log_cpu, n=10)[-1])}, max {ms(max(log_cpu))}")
    print(f"  peer, the whole capture's CPU per record: median {ms(statistics.median(whole))} "
          f"(the log's share {statistics.median(log_cpu) / statistics.median(whole):.1%})")


def rid(n: int) -> str:
    s = ""
    for _ in range(8):
        s += ALPHABET[n % 32]
        n //= 32
    return f"{s[:4]}-{s[4:]}"


def fill_outbox(a: Archive, start: int, count: int) -> None:
    rng = random.Random(start)
    with a.catalog.db() as d, d.tx():
        d.many("INSERT INTO outbox(event, record_id, subject_sha256, actor, time, detail) VALUES (?,?,?,?,?,?)",
               [("capture", rid(i), hashlib.sha256(rng.randbytes(16)).hexdigest(), "bench", "2026-12-06T00:00:00Z",
                 "{}") for i in range(start, start + count)])


def dbstat_bytes(path: Path) -> int | None:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'tlog%' OR name LIKE "
                           "'sqlite_autoindex_tlog%'").fetchone()
        return int(rows[0]) if rows and rows[0] is not None else None
    except sqlite3.OperationalError:  # SQLite built without dbstat
        return None
    finally:
        con.close()


def du(path: Path) -> tuple[int, int]:
    files = size = 0
    for p in path.rglob("*"):
        if p.is_file():
            files += 1
            size += p.stat().st_blocks * 512
    return files, size


def scale(tmp: Path) -> None:
    a, _ = Archive.init(tmp / "big", operator="Bench")
    a.config.set("log.origin", "bench.example/log")
    half = ENTRIES // 2
    old = tmp / "half.checkpoint"
    t0 = time.perf_counter()
    c0 = time.process_time()
    fill_seconds = 0.0
    step = 100_000
    done = 0
    while done < ENTRIES:
        n = min(step, ENTRIES - done, (half - done) if done < half else ENTRIES - done)
        f = time.perf_counter()
        fill_outbox(a, done, n)
        fill_seconds += time.perf_counter() - f
        a.log.sync()
        done += n
        if done == half:
            a.log.checkpoint(stamp=False)
            shutil.copyfile(a.root / "log" / "checkpoint", old)
        if time.perf_counter() - t0 > 300:
            print(f"  stopped at {done} entries after 5 minutes")
            break
    a.log.checkpoint(stamp=False)
    wall = time.perf_counter() - t0 - fill_seconds
    cpu = time.process_time() - c0
    size = a.log.size()
    print(f"scale: {size} entries appended by TransparencyLog.sync from the outbox in {wall:.1f} s "
          f"(outbox filled directly in {fill_seconds:.1f} s more); {wall / size * 1e6:.1f} us wall per entry, "
          f"process CPU {cpu:.1f} s in all")
    target = rid(size - 7)
    prove_t, verify_t = [], []
    for _ in range(21):
        t = time.perf_counter()
        a.log.prove(target, stamp=False)
        prove_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        rep = a.log.verify_from(old.read_bytes())
        verify_t.append(time.perf_counter() - t)
    assert rep.ok
    print(f"  prove (library, {size} entries): median {ms(statistics.median(prove_t))}; "
          f"verify --from {rep.old_size} to {rep.new_size} (library): median {ms(statistics.median(verify_t))}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli_p, cli_v = [], []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([*ARCHIVER, "log", "prove", target, "--store", str(a.root)], check=True,
                       capture_output=True, env=env)
        cli_p.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([*ARCHIVER, "log", "verify", "--from", str(old), "--store", str(a.root)], check=True,
                       capture_output=True, env=env)
        cli_v.append(time.perf_counter() - t)
    print(f"  the CLI, start-up included: `log prove` median {ms(statistics.median(cli_p))}, "
          f"`log verify --from` median {ms(statistics.median(cli_v))}")
    files, disk = du(a.root / "log")
    catalog = dbstat_bytes(a.root / "catalog.sqlite3")
    cat_file = (a.root / "catalog.sqlite3").stat().st_size
    print(f"  disk per entry: tiles and bundles {disk / size:.1f} B ({files} files, {disk / 1e6:.1f} MB); "
          + (f"catalog tlog tables {catalog / size:.1f} B" if catalog is not None
             else f"catalog file {cat_file / size:.1f} B (with the synthetic outbox; no dbstat)"))
    print("  " + json.dumps({"entries": size, "tiles": disk, "catalog_tlog": catalog}))


def main() -> None:
    import platform

    print(f"bench_tlog {time.strftime('%Y-%m-%d')}, {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-tlog-") as tmp:
        if RECORDS:
            append_real(Path(tmp))
        if ENTRIES:
            scale(Path(tmp))


if __name__ == "__main__":
    main()
