"""Content-addressed, immutable blobs on a local directory: ``objects/sha256/ab/cd/<hex>``.

A blob's name is the SHA-256 of its bytes, so storing twice is a no-op and any later change to
the bytes is detectable by re-hashing. Blobs are made read-only once in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from archiver.errors import NotFoundError, StoreError, store_write_error
from store.fsutil import TMP_PREFIX, atomic_writer, ensure_dir, fsync_dir, new_temp_in, remove_stale_temps

CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

#: the check a delete runs under (``store.holds.guard`` bound to the store's catalog, installed by the
#: store core): a context manager per blob that raises ``HoldError`` when a held record needs it
HoldGuard = Callable[[str], "contextlib.AbstractContextManager[Any]"]


def no_guard(hexdigest: str) -> contextlib.AbstractContextManager[Any]:
    """A blob store nobody told about holds deletes nothing: deleting without the check is a bug."""
    raise StoreError(f"refusing to delete sha256:{hexdigest}: this blob store has no legal-hold check",
                     hint="open the store through archiver (StoreCore installs the check)")


def hash_stream(fh: IO[bytes]) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := fh.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def hash_file(path: Path) -> tuple[str, int]:
    with open(path, "rb") as fh:
        return hash_stream(fh)


def put_concurrently(put: Callable[[bytes], str], datas: list[bytes]) -> list[str]:
    """Several small objects at once (a batch's addenda). Each is still written, fsynced and renamed
    on its own (or uploaded), but from a few threads: the file system commits their fsyncs together
    and S3 requests overlap. Names come back in order."""
    if len(datas) < 4:
        return [put(d) for d in datas]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(put, datas))


def _touch(path: Path) -> None:
    """A blob stored again is young again: garbage collection spares blobs younger than its ``min_age``,
    so an orphan that a capture in progress is about to name (the same bytes) is not taken from it."""
    with contextlib.suppress(OSError):
        os.utime(path)


class BlobStore:
    """Local-directory backend. Temp files live in ``tmp/`` on the same file system, so the final
    rename is atomic and a half-written object is never visible under its content name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects" / "sha256"
        self.tmp = root / "tmp"
        self.hold_guard: HoldGuard = no_guard

    def ensure(self) -> None:
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, hexdigest: str) -> Path:
        if not _HEX64.match(hexdigest):
            raise StoreError(f"not a blob name: {hexdigest!r}")
        return self.objects / hexdigest[:2] / hexdigest[2:4] / hexdigest

    def exists(self, hexdigest: str) -> bool:
        return self.path(hexdigest).is_file()

    def size(self, hexdigest: str) -> int:
        try:
            return self.path(hexdigest).stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob sha256:{hexdigest} is missing from the store") from exc

    def new_temp(self, suffix: str = "") -> tuple[BinaryIO, Path]:
        """A temp file to stream into; pass its path to :meth:`adopt` once complete."""
        return new_temp_in(self.tmp, suffix)

    def adopt(self, temp_path: Path, hexdigest: str | None = None) -> tuple[str, int]:
        """Move a finished temp file into place under its hash (computed if not given)."""
        if hexdigest is None:
            hexdigest, size = hash_file(temp_path)
        else:
            size = temp_path.stat().st_size
        final = self.path(hexdigest)
        if final.exists():
            temp_path.unlink(missing_ok=True)
            _touch(final)
            return hexdigest, size
        ensure_dir(final.parent)
        with open(temp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(temp_path, 0o444)
        os.replace(temp_path, final)
        fsync_dir(final.parent)
        return hexdigest, size

    def put_bytes(self, data: bytes) -> str:
        hexdigest = hashlib.sha256(data).hexdigest()
        final = self.path(hexdigest)
        if not final.exists():
            with atomic_writer(final, mode=0o444) as fh:
                fh.write(data)
        else:
            _touch(final)
        return hexdigest

    def put_many(self, datas: list[bytes]) -> list[str]:
        return put_concurrently(self.put_bytes, datas)

    def read_bytes(self, hexdigest: str) -> bytes:
        try:
            return self.path(hexdigest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob sha256:{hexdigest} is missing from the store") from exc

    @contextlib.contextmanager
    def open(self, hexdigest: str) -> Iterator[BinaryIO]:
        try:
            fh = open(self.path(hexdigest), "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob sha256:{hexdigest} is missing from the store") from exc
        with fh:
            yield fh

    def rehash(self, hexdigest: str) -> tuple[str, int]:
        """Hash what is actually on disk, so a caller can compare it with the name."""
        return hash_file(self.path(hexdigest))

    def modified(self, hexdigest: str) -> float:
        """When the blob was last written or re-adopted (epoch seconds): garbage collection spares young
        blobs, which a capture in progress may be about to name."""
        try:
            return self.path(hexdigest).stat().st_mtime
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob sha256:{hexdigest} is missing from the store") from exc

    def delete(self, hexdigest: str, still: Callable[[Any], bool] | None = None) -> bool:
        """Remove one blob (garbage collection of orphans): refused with ``HoldError`` when a held record
        needs it, checked under the catalog's write lock by the store's hold guard. ``still(d)``, run under
        that lock, says whether the blob is still garbage (a record committed since the caller decided
        names it: then it is kept). False if absent or kept."""
        final = self.path(hexdigest)
        with self.hold_guard(hexdigest) as d:
            if still is not None and not still(d):
                return False
            try:
                final.unlink()
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise store_write_error(exc, f"deleting blob sha256:{hexdigest}") from exc
            fsync_dir(final.parent)
        return True

    def iter_all(self) -> Iterator[str]:
        if not self.objects.is_dir():
            return
        for p in sorted(self.objects.glob("*/*/*")):
            if p.is_file() and not p.name.startswith(TMP_PREFIX) and _HEX64.match(p.name):
                yield p.name

    def clean_temps(self, older_than_s: float = 3600.0) -> int:
        """Remove temp files left by killed processes; young ones may belong to a live capture."""
        return remove_stale_temps((self.tmp, self.objects), older_than_s)
