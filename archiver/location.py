"""Where a store is and which backends it uses: the default location and the store marker file.

Written once by ``init`` (``archiver-store.json``, 0600 because a catalog URL may carry a password) and
read by every command that opens the store.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from archiver._version import __version__
from archiver.errors import StoreCorruptError
from store.catalog import redact_url
from store.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from store.s3 import S3Settings  # imported when a marker names S3: most stores never load it


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


STORE_MARKER = "archiver-store.json"
STORE_FORMAT = "archiver.store/v1"


def default_store_path() -> Path:
    env = os.environ.get("ARCHIVER_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "archiver"


@dataclasses.dataclass(frozen=True, slots=True)
class Backends:
    """Where a store keeps blobs and catalog; written once into the store marker at ``init``."""

    catalog: str | None = None  # postgresql://... ; None = catalog.sqlite3 in the store directory
    s3: S3Settings | None = None  # None = objects/ in the store directory

    def describe(self) -> str:
        cat = redact_url(self.catalog) if self.catalog else "SQLite catalog"
        blobs = self.s3.url if self.s3 else "local blobs"
        lock = ""
        if self.s3 and self.s3.object_lock:
            lock = f" (Object Lock {self.s3.object_lock}, retain {self.s3.retain})"
        return f"{cat}, {blobs}{lock}"


def read_marker(root: Path) -> Backends:
    marker = root / STORE_MARKER
    try:
        data = json.loads(marker.read_text("utf-8"))
        s3 = data.get("blobs")
        if s3:
            from store.s3 import S3Settings
        return Backends(catalog=data.get("catalog"), s3=S3Settings.from_dict(s3) if s3 else None)
    except (ValueError, AttributeError, TypeError) as exc:
        raise StoreCorruptError(f"store marker {marker} is unreadable") from exc


def write_marker(root: Path, backends: Backends) -> None:
    data: dict[str, object] = {"format": STORE_FORMAT, "created": _now_iso(), "tool": f"archiver/{__version__}"}
    marker = root / STORE_MARKER
    if marker.exists():
        data = json.loads(marker.read_text("utf-8"))
    data.pop("catalog", None)
    data.pop("blobs", None)
    if backends.catalog:
        data["catalog"] = backends.catalog
    if backends.s3:
        data["blobs"] = backends.s3.to_dict()
    atomic_write_bytes(marker, json.dumps(data, indent=2).encode("utf-8") + b"\n", mode=0o600)


__all__ = ["STORE_FORMAT", "STORE_MARKER", "Backends", "default_store_path", "read_marker", "write_marker"]
