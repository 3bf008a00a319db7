"""c2sp.org/tlog-tiles: tile paths, entry bundles, and where a store keeps its log's files.

Paths are the spec's: ``tile/<L>/<N>[.p/<W>]`` for hash tiles, ``tile/entries/<N>[.p/<W>]`` for entry
bundles, ``<N>`` in zero-padded 3-digit elements, all but the last prefixed ``x`` (1234067 →
``x001/x234/067``), and ``checkpoint`` for the latest signed checkpoint. A directory laid out so is
what ``tlog-scales``, Go's ``sumdb/tlog`` (through the path mapping in tests/tlogcheck) and any static
web server can read.

Why a port of its own and not the blob store: blobs are named by their SHA-256 and never change,
while the log's files are named by position (``tile/0/x001/234``) and ``checkpoint`` is replaced at
every signing. :class:`FsTileStore` keeps them under the store's ``log/`` directory (each write a temp
file, fsync, rename); :class:`S3TileStore` under ``<prefix>log/`` in the store's bucket, next to the
blobs, when blobs go to S3.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from archiver.errors import IntegrityError, StoreError
from archiver.tlog.hashing import HASH_SIZE, TILE_WIDTH

if TYPE_CHECKING:
    from store.s3 import S3BlobStore

ENTRIES = -1  # the "level" of entry bundles


def encode_index(n: int) -> str:
    """``1234067`` → ``x001/x234/067`` (tlog-tiles ``<N>``)."""
    if n < 0:
        raise ValueError("negative tile index")
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def tile_path(level: int, n: int, width: int = TILE_WIDTH) -> str:
    """The path of hash tile ``level``/``n`` (``level`` :data:`ENTRIES` for an entry bundle), partial
    (``.p/<W>``) when ``width`` is below 256."""
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} outside 1..256")
    if not ENTRIES <= level <= 63:
        raise ValueError(f"tile level {level} outside 0..63")
    name = f"tile/{'entries' if level == ENTRIES else level}/{encode_index(n)}"
    return name if width == TILE_WIDTH else f"{name}.p/{width}"


def bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its bytes."""
    out = bytearray()
    for e in entries:
        if len(e) > 0xFFFF:
            raise ValueError("a log entry is longer than 65535 bytes")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def unbundle(data: bytes) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise IntegrityError("an entry bundle ends inside a length prefix")
        n = int.from_bytes(data[pos:pos + 2], "big")
        if pos + 2 + n > len(data):
            raise IntegrityError("an entry bundle ends inside an entry")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def split_hashes(data: bytes) -> list[bytes]:
    if len(data) % HASH_SIZE:
        raise IntegrityError(f"a hash tile of {len(data)} bytes is not whole hashes")
    return [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


class TileStore(Protocol):
    """Where the log's files live, by path (relative, ``/``-separated)."""

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""

    def write(self, path: str, data: bytes) -> None:
        """Write (or replace) the file atomically: a reader sees the old bytes or the new, never half."""

    def list(self, prefix: str) -> list[str]:
        """Paths under ``prefix`` (a directory path ending in ``/``), sorted."""

    def describe(self) -> str: ...


class FsTileStore:
    """The log's files under a local directory (``<store>/log``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        parts = path.split("/")
        if not path or any(p in ("", ".", "..") for p in parts) or "\\" in path:
            raise StoreError(f"not a log file path: {path!r}")
        return self.root.joinpath(*parts)

    def read(self, path: str) -> bytes | None:
        try:
            return self._path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, path: str, data: bytes) -> None:
        from store.fsutil import atomic_write_bytes

        atomic_write_bytes(self._path(path), data)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if not f.startswith("."):  # temp files of a write in progress (store.fsutil's .tmp-)
                    out.append(Path(dirpath, f).relative_to(self.root).as_posix())
        return sorted(out)

    def describe(self) -> str:
        return str(self.root)


class S3TileStore:
    """The log's files in the bucket of a store whose blobs are on S3 (``<prefix>log/<path>``).

    Tiles are immutable by path, so a rewrite puts the same bytes; with Object Lock a rewrite makes a
    new version and the first stays. ``checkpoint`` is replaced at every signing (a new version)."""

    def __init__(self, blobs: S3BlobStore) -> None:
        self.blobs = blobs
        self.base = f"{blobs.settings.prefix}log/"

    def _key(self, path: str) -> str:
        if not path or ".." in path.split("/") or path.startswith("/"):
            raise StoreError(f"not a log file path: {path!r}")
        return self.base + path

    def read(self, path: str) -> bytes | None:
        from botocore.exceptions import ClientError

        key = self._key(path)
        with self.blobs._errors(f"get {key}"):
            try:
                body: Any = self.blobs.client.get_object(Bucket=self.blobs.settings.bucket, Key=key)["Body"]
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("404", "NoSuchKey"):
                    return None
                raise
            with contextlib.closing(body):
                data: bytes = body.read()
                return data

    def write(self, path: str, data: bytes) -> None:
        key = self._key(path)
        kw: dict[str, Any] = {"Bucket": self.blobs.settings.bucket, "Key": key, "Body": data,
                              "ContentType": "text/plain; charset=utf-8" if path == "checkpoint"
                              else "application/octet-stream"}
        with self.blobs._errors(f"put {key}"):
            self.blobs.client.put_object(**kw)

    def list(self, prefix: str) -> list[str]:
        base = self._key(prefix)
        with self.blobs._errors(f"list {base}"):
            pages = self.blobs.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.blobs.settings.bucket, Prefix=base)
            return sorted(obj["Key"][len(self.base):] for page in pages for obj in page.get("Contents", []))

    def describe(self) -> str:
        return f"{self.blobs.settings.url}log/"


def walk_tiles(size: int, done: int = 0) -> Iterator[tuple[int, int]]:
    """(level, index) of every full hash tile a tree of ``size`` has and a tree of ``done`` lacks."""
    level = 0
    while size // TILE_WIDTH ** level >= TILE_WIDTH:
        full_now = size // TILE_WIDTH ** (level + 1)
        full_before = done // TILE_WIDTH ** (level + 1)
        for n in range(full_before, full_now):
            yield level, n
        level += 1


def partial_tiles(size: int) -> Iterator[tuple[int, int, int]]:
    """(level, index, width) of the partial tiles of a tree of ``size`` (tlog-tiles "Partial Tiles")."""
    level = 0
    while (count := size // TILE_WIDTH ** level) > 0:
        if count % TILE_WIDTH:
            yield level, count // TILE_WIDTH, count % TILE_WIDTH
        level += 1


__all__ = ["ENTRIES", "FsTileStore", "S3TileStore", "TileStore", "bundle", "encode_index", "partial_tiles",
           "split_hashes", "tile_path", "unbundle", "walk_tiles"]
