"""Evidence archival and provenance toolkit.

Capture a web document into a signed, content-addressed evidence record (WARC + manifest),
then verify, look up and extract it later, offline. The public API is :class:`Archive`;
heavy modules load on first use so the CLI starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Archive",
    "ArchiverError",
    "Artifact",
    "ArtifactMatch",
    "BatchItem",
    "Check",
    "Digest",
    "Manifest",
    "RecordSummary",
    "Status",
    "Verification",
    "__version__",
    "default_store_path",
]

_LAZY = {
    "Archive": "archiver.api",
    "default_store_path": "archiver.api",
    "ArchiverError": "archiver.errors",
    "Artifact": "archiver.records",
    "ArtifactMatch": "archiver.records",
    "BatchItem": "archiver.records",
    "Check": "archiver.records",
    "Digest": "archiver.records",
    "Manifest": "archiver.records",
    "RecordSummary": "archiver.records",
    "Status": "archiver.records",
    "Verification": "archiver.records",
}

if TYPE_CHECKING:
    from archiver.api import Archive, default_store_path
    from archiver.errors import ArchiverError
    from archiver.records import (
        Artifact,
        ArtifactMatch,
        BatchItem,
        Check,
        Digest,
        Manifest,
        RecordSummary,
        Status,
        Verification,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archiver' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
