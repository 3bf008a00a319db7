"""Atomic file writes: temp file in the target directory, fsync, rename, fsync the directory.

A reader (or a crash) therefore sees either no file or the whole file, never a partial one.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from archiver.errors import STORE_ERRNOS, StoreWriteError, store_write_error

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """``mkdir -p`` that makes what it creates durable: each new directory's entry is fsynced in its
    parent, so a blob renamed into a fresh fan-out directory cannot lose that directory in a crash.
    A stat first: the directory almost always exists, and a refused mkdir costs an exception."""
    if path.is_dir():
        return
    ensure_dir(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        pass  # another writer made it a moment ago: its fsync may not have happened yet, so sync too
    fsync_dir(path.parent)


class StoreFile(io.BufferedRandom):
    """A file in the store: a failed write, flush or close (disk full, quota, read-only, I/O error)
    raises :class:`StoreWriteError` (exit 4), so it cannot pass for whatever else was going on
    (a capture streaming from the network, say)."""

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            raise store_write_error(exc, f"writing {self.name}") from exc

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            raise store_write_error(exc, f"writing {self.name}") from exc

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:
            raise store_write_error(exc, f"writing {self.name}") from exc


def _store_file(fd: int, path: str) -> StoreFile:
    raw = io.FileIO(fd, "r+", closefd=True)
    raw.name = path
    return StoreFile(raw)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Yield a binary file; on clean exit it replaces ``path`` atomically, on error it vanishes.
    A local write failure (disk full, …) raises :class:`StoreWriteError`."""
    try:
        ensure_dir(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    except OSError as exc:
        raise store_write_error(exc, f"writing {path}") from exc
    try:
        with _store_file(fd, tmp) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise store_write_error(exc, f"writing {path}") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def store_writes(what: str) -> Iterator[None]:
    """Around code that commits to the store: an OSError that can only be local (disk full, quota,
    read-only, permissions, I/O) or SQLite refusing a write becomes :class:`StoreWriteError`."""
    import sqlite3

    try:
        yield
    except OSError as exc:
        if exc.errno in STORE_ERRNOS:
            raise store_write_error(exc, what) from exc
        raise
    except sqlite3.OperationalError as exc:
        raise StoreWriteError(f"{what} failed: the catalog refused the write ({exc})") from exc


def new_temp_in(directory: Path, suffix: str = "") -> tuple[BinaryIO, Path]:
    """A temp file to stream a blob into before its hash (its name) is known. Its write errors are
    :class:`StoreWriteError`."""
    try:
        ensure_dir(directory)
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=directory)
    except OSError as exc:
        raise store_write_error(exc, f"creating a temp file in {directory}") from exc
    return _store_file(fd, name), Path(name)


def remove_stale_temps(bases: tuple[Path, ...], older_than_s: float) -> int:
    """Remove temp files left by killed processes; young ones may belong to a live capture."""
    import time

    removed = 0
    now = time.time()
    for base in bases:
        if not base.is_dir():
            continue
        for p in base.rglob(f"{TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if now - p.stat().st_mtime >= older_than_s:
                    p.unlink()
                    removed += 1
    return removed


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_writer(path, mode) as fh:
        fh.write(data)
