"""Which signed document a stored object is: one registry, keyed by ``schema`` (and an addendum's ``kind``).

Why a registry: readers used to tell a manifest from an addendum by the first key of its canonical JSON
(``{"artifacts":`` or ``{"created_at":``), so a member that sorted first would have made records vanish
from ``rebuild-index`` without a word. Every reader (rebuild-index, the write path's crash recovery,
import, verification) now asks :func:`classify`, which looks only at ``schema`` and ``kind`` and says one
of four things: a manifest, an addendum (of a kind this release knows), a document of *ours* that is
newer than this release (reported, never skipped), or not one of ours at all (a WARC, a PNG, a key).

How formats grow is written down in docs/formats.md: a new member or a new meaning is a new schema
version or a new addendum kind, never a silent change to an existing one, because a signature covers
exactly the members its signer wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from archiver.errors import ArchiverError, UnknownFormatError
from archiver.records import ADDENDUM_KINDS, ADDENDUM_SCHEMA, MANIFEST_SCHEMA, Addendum, Manifest

Role = Literal["manifest", "addendum", "newer", "other"]

#: the families of signed JSON documents this project writes; a schema in one of them that this
#: release does not know was written by a newer release
FAMILIES = ("archiver.manifest/", "archiver.addendum/", "archiver.key-rotation/")

@dataclass(frozen=True, slots=True)
class Kind:
    """An addendum kind: what it records, and what the detail of the custody entry that commits it
    says (the entry's event is the kind's name)."""

    name: str
    description: str
    detail: Callable[[Addendum], dict[str, str]]


def _timestamp_detail(a: Addendum) -> dict[str, str]:
    assert a.timestamp is not None
    return {"tsa": a.timestamp.tsa_url, "gen_time": a.timestamp.gen_time}


def _wayback_detail(a: Addendum) -> dict[str, str]:
    assert a.wayback is not None
    return {"verdict": a.wayback.verdict}


def _derived_detail(a: Addendum) -> dict[str, str]:
    assert a.derived is not None
    return {"artifact": a.derived.name, "sha256": a.derived.sha256}


def _publication_detail(a: Addendum) -> dict[str, str]:
    assert a.publication is not None
    return {"reason": a.publication.reason} if a.publication.reason else {}


#: every addendum kind this release reads; a kind not here is from a newer release
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("timestamp", "an RFC 3161 token over the manifest hash (alone or as a Merkle batch leaf)",
         _timestamp_detail),
    Kind("wayback", "a Wayback Machine cross-link: snapshot URL, time and CDX digest comparison", _wayback_detail),
    Kind("derived", "an artifact derived after the capture (main-text under declared rules)", _derived_detail),
    Kind("publish", "the record made public: its permalink answers anyone", _publication_detail),
    Kind("unpublish", "the record made private again, with the reason", _publication_detail),
)}
assert tuple(KINDS) == ADDENDUM_KINDS


def custody_detail(addendum: Addendum, sha256: str) -> dict[str, str]:
    """The detail of the custody entry that commits ``addendum`` (stored as blob ``sha256``)."""
    return {"addendum_sha256": sha256, "manifest_sha256": addendum.manifest_sha256,
            **KINDS[addendum.kind].detail(addendum)}

#: a signed document is small; anything larger is not one of ours (a WARC, a PDF)
MAX_DOCUMENT_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Classified:
    """What a stored object is. ``manifest``/``addendum`` hold the parsed record; ``reason`` says why
    a ``newer`` or malformed document could not be read."""

    role: Role
    schema: str = ""
    kind: str = ""
    manifest: Manifest | None = None
    addendum: Addendum | None = None
    reason: str = ""


def looks_like_document(head: bytes) -> bool:
    """Cheap pre-filter on the first bytes of a blob: canonical JSON objects start with ``{"``."""
    return head.startswith(b'{"')


def classify(data: bytes) -> Classified:
    """Parse ``data`` by its ``schema``; never raises for bytes that are not ours."""
    if len(data) > MAX_DOCUMENT_BYTES or not looks_like_document(data[:2]):
        return Classified("other")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return Classified("other")
    if not isinstance(doc, dict) or not isinstance(doc.get("schema"), str):
        return Classified("other")
    schema: str = doc["schema"]
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else ""
    try:
        if schema == MANIFEST_SCHEMA:
            return Classified("manifest", schema, manifest=Manifest.from_dict(doc))
        if schema == ADDENDUM_SCHEMA:
            return Classified("addendum", schema, str(kind), addendum=Addendum.from_dict(doc))
    except UnknownFormatError as exc:
        return Classified("newer", schema, str(kind), reason=exc.message)
    except ArchiverError as exc:
        return Classified("other", schema, str(kind), reason=exc.message)
    if schema.startswith(FAMILIES):
        return Classified("newer", schema, str(kind),
                          reason=f"{schema} is newer than this release (upgrade archiver to read it)")
    return Classified("other", schema, str(kind))


__all__ = ["FAMILIES", "KINDS", "Classified", "Kind", "classify", "custody_detail", "looks_like_document"]
