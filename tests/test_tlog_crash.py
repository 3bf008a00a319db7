"""kill -9 at random moments of a 200-page stamped batch (worker processes, syncs after every commit,
tile writes, the checkpoint and its TSA stamp at the end): afterwards ``log audit`` passes, every
committed manifest and addendum is in the log exactly once, and every checkpoint signed before a
kill is consistent with the last one (``log verify --from`` and Go's CheckTree): the log only grew.

``ARCHIVER_CRASH_TRIALS`` sets the trials (2 in the suite; the issue's check ran 20).
tests/test_crash_consistency.py checks the log too, after its own kills.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

from archiver.api import Archive
from tests.test_crash_consistency import _kill_at_random
from tests.test_processes import _archiver, _env
from tests.test_tlog_verifiers import build_tlogcheck, run_go

TRIALS = int(os.environ.get("ARCHIVER_CRASH_TRIALS", "2"))
PAGES = 200


def log_agrees(root: Path) -> Archive:
    proc = subprocess.run(_archiver("log", "audit", "--json", "--store", str(root)), capture_output=True, text=True,
                          env=_env(), check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    a = Archive.open(root)
    with a.catalog.db() as d:
        logged = [str(r[0]) for r in d.rows("SELECT sha256 FROM tlog_leaves")]
        documents = {str(r[0]) for r in d.rows("SELECT manifest_sha256 FROM records UNION ALL "
                                               "SELECT sha256 FROM addenda")}
    assert len(logged) == len(set(logged)), "a document is in the log twice"
    assert set(logged) == documents
    assert json.loads(proc.stdout)["size"] == len(logged)
    return a


def test_kill_9_during_200_page_batches_leaves_the_log_whole(stamped: Archive, site, tmp_path: Path) -> None:
    rng = random.Random(30)
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"{site.base_url}/plain?crash={i}\n" for i in range(PAGES)))
    cmd = _archiver("capture", "-i", str(urls), "-j", "6", "--json", "--store", str(stamped.root))
    started = time.monotonic()
    assert subprocess.run(cmd, capture_output=True, env=_env(), check=False, timeout=600).returncode == 0
    whole = time.monotonic() - started
    kept: list[Path] = []
    for trial in range(TRIALS):
        keep = tmp_path / f"checkpoint.{trial}"
        shutil.copyfile(stamped.root / "log" / "checkpoint", keep)
        kept.append(keep)
        _kill_at_random(cmd, rng, whole)
        log_agrees(stamped.root)
    a = log_agrees(stamped.root)
    a.log.checkpoint()
    for keep in kept:  # every checkpoint seen before a kill is a prefix of the log now
        r = subprocess.run(_archiver("log", "verify", "--from", str(keep), "--store", str(a.root)),
                           capture_output=True, text=True, env=_env(), check=False, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    go = build_tlogcheck(tmp_path / "go")
    args = ["-dir", str(a.root / "log"), "-vkey", a.log.vkey(), "-entries"]
    for keep in kept:
        proc = run_go(go, *args, "-old", str(keep))
        assert proc.returncode == 0, proc.stdout
