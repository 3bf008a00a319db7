"""A store whose filesystem is full: the capture fails with a store error (exit 4), never a network
error (exit 3), and the store still verifies afterwards.

The full filesystem is real: a small tmpfs mounted for the test when we may mount (root in a
container or VM), filled with a filler file so the kernel itself answers ENOSPC partway through the
capture. Without mount rights the same capture runs under RLIMIT_FSIZE (SIGXFSZ ignored), so any
file the process grows past the limit gets EFBIG from the kernel: a different errno, the same path
through the code.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from archiver.demo.server import SampleSite

from .conftest import store_snapshot

BIG = "/big"  # 200 KB of HTML: more than the room left in every case below


def _cli(store: Path, *args: str, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARCHIVER_HOME": str(store), "ARCHIVER_KEY_PASSPHRASE": ""}
    return subprocess.run([sys.executable, "-m", "archiver.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False, preexec_fn=preexec)


@pytest.fixture()
def small_fs(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() == 0 and shutil.which("mount"):
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0755", "tmpfs", str(mnt)],
                           capture_output=True, text=True, check=False)
        if r.returncode == 0:
            try:
                yield mnt, "tmpfs"
            finally:
                subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
            return
    yield mnt, "rlimit"


def _fill(mnt: Path, leave: int) -> Path:
    """Fill the filesystem, then give back ``leave`` bytes."""
    filler = mnt / "filler"
    chunk = b"\0" * (1 << 16)
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("room", [0, 40_000, 150_000], ids=["full", "40KB-left", "150KB-left"])
def test_capture_onto_a_full_filesystem_exits_4_and_the_store_verifies(small_fs: tuple[Path, str], site: SampleSite,
                                                                       room: int) -> None:
    mnt, how = small_fs
    store = mnt / "store"
    assert _cli(store, "init", "--operator", "Disk Test").returncode == 0
    assert _cli(store, "config", "set", "capture.allow_private", "true").returncode == 0
    first = _cli(store, "capture", site.base_url + "/plain", "--json")
    assert first.returncode == 0, first.stderr
    rid = json.loads(first.stdout)["record_id"]
    before = store_snapshot(store)
    preexec = None
    if how == "tmpfs":
        filler = _fill(mnt, room)
    else:
        preexec = _limit_file_size(max(room, 4096))
    r = _cli(store, "capture", site.base_url + BIG, preexec=preexec)
    print(f"[{how}, {room} bytes left] exit {r.returncode}: {r.stderr.strip()}")
    assert r.returncode == 4, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: "), r.stderr
    reason = "No space left on device" if how == "tmpfs" else "File too large"
    assert reason in r.stderr and "fetching" not in r.stderr, r.stderr
    assert store_snapshot(store) == before  # nothing partial left: no temp file, no half record
    if how == "tmpfs":
        filler.unlink()
    v = _cli(store, "verify", "--all")
    assert v.returncode == 0, v.stdout + v.stderr
    assert "1 verified, 0 failed" in v.stdout
    listed = _cli(store, "list", "--json")
    assert [x["record_id"] for x in json.loads(listed.stdout)] == [rid]
    again = _cli(store, "capture", site.base_url + BIG)  # room again: the same capture succeeds
    assert again.returncode == 0, again.stderr
    assert _cli(store, "verify", "--all").returncode == 0
