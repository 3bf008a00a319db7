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
from typing import IO, BinaryIO

from archiver.errors import NotFoundError, StoreError
from store.fsutil import TMP_PREFIX, atomic_writer, ensure_dir, fsync_dir, new_temp_in, remove_stale_temps

CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


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


class BlobStore:
    """Local-directory backend. Temp files live in ``tmp/`` on the same file system, so the final
    rename is atomic and a half-written object is never visible under its content name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects" / "sha256"
        self.tmp = root / "tmp"

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

    def iter_all(self) -> Iterator[str]:
        if not self.objects.is_dir():
            return
        for p in sorted(self.objects.glob("*/*/*")):
            if p.is_file() and not p.name.startswith(TMP_PREFIX) and _HEX64.match(p.name):
                yield p.name

    def clean_temps(self, older_than_s: float = 3600.0) -> int:
        """Remove temp files left by killed processes; young ones may belong to a live capture."""
        return remove_stale_temps((self.tmp, self.objects), older_than_s)
