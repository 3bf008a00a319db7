"""Evidence archival and provenance toolkit.

Capture a web document into a signed, content-addressed evidence record (WARC + manifest),
then verify, look up and extract it later, offline. The public API is :class:`Archive`;
heavy modules load on first use so the CLI starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archiver._version import __version__

__all__ = [
    "Addendum",
    "Archive",
    "ArchiverError",
    "Artifact",
    "ArtifactMatch",
    "BatchItem",
    "Check",
    "CitationData",
    "Digest",
    "Manifest",
    "RecordSummary",
    "StampResult",
    "Status",
    "TimestampEvidence",
    "Verification",
    "WaybackEvidence",
    "__version__",
    "citation_data",
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
    "Addendum": "archiver.records",
    "StampResult": "archiver.records",
    "TimestampEvidence": "archiver.records",
    "WaybackEvidence": "archiver.records",
    "CitationData": "archiver.cite.styles",
    "citation_data": "archiver.cite",
}

if TYPE_CHECKING:
    from archiver.api import Archive, default_store_path
    from archiver.cite import citation_data
    from archiver.cite.styles import CitationData
    from archiver.errors import ArchiverError
    from archiver.records import (
        Addendum,
        Artifact,
        ArtifactMatch,
        BatchItem,
        Check,
        Digest,
        Manifest,
        RecordSummary,
        StampResult,
        Status,
        TimestampEvidence,
        Verification,
        WaybackEvidence,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archiver' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
