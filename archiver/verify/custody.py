"""The custody check of one record: where did this manifest come from?

A record's origin in a store is its ``capture`` entry, or the ``import`` entry that brought it in
(``import-forced`` when imported past failed checks). An import keeps the source bundle's custody
lines for the record as a blob and names its sha256 in the entry's detail
(``source_custody_sha256``); an export writes those lines back, first, before the local entries.
So a record's custody is a nesting of segments — the capture, then each import that carried it —
and every carried segment is held to the same rules: each entry matches its own hash, every
origin entry names this manifest, and the carried segment an import names is there, byte-exact.
"""

from __future__ import annotations

import hashlib

from archiver.records import Category, Check, Status
from archiver.verify.artifacts import Absent
from archiver.verify.source import EvidenceSource, parse_custody
from store.custody import CustodyEntry

ORIGIN_EVENTS = ("capture", "import", "import-forced")
SOURCE_CUSTODY = "source_custody_sha256"
_MAX_DEPTH = 16


class _Failed(Exception):
    def __init__(self, category: Category, detail: str) -> None:
        super().__init__(detail)
        self.category = category
        self.detail = detail


def custody_record_check(src: EvidenceSource, manifest_sha256: str) -> Check:
    entries = src.custody_entries()
    if isinstance(entries, Absent):
        return Check("custody.record", Status.FAIL, entries.category, f"the custody entries {entries.why}")
    try:
        detail = _origin(src, entries, manifest_sha256, 0, src.custody_file())
    except _Failed as exc:
        return Check("custody.record", Status.FAIL, exc.category, exc.detail)
    return Check("custody.record", Status.PASS, Category.INTEGRITY, detail)


def _prefixes(data: bytes) -> list[bytes]:
    out = []
    end = 0
    while (nl := data.find(b"\n", end)) >= 0:
        end = nl + 1
        out.append(data[:end])
    return out


def _carried(src: EvidenceSource, sha: str, segment: bytes | None) -> bytes | Absent:
    """The carried custody an import names: inside a carried segment (or a bundle's custody file) it is
    a prefix of those bytes, byte for byte (each export writes the kept lines first); at the top of a
    store it is the blob the import kept."""
    if segment is not None:
        for prefix in _prefixes(segment):
            if hashlib.sha256(prefix).hexdigest() == sha:
                return prefix
    return src.carried_custody(sha)


def _origin(src: EvidenceSource, entries: list[CustodyEntry], msha: str, depth: int, segment: bytes | None) -> str:
    """Describe the record's origin in ``entries``; raise _Failed saying what is wrong."""
    for e in entries:
        if e.compute_hash() != e.hash:
            raise _Failed(Category.INTEGRITY, f"custody entry {e.seq} ({e.event}) does not match its own hash")
    origins = [e for e in entries if e.record_id == src.record_id and e.event in ORIGIN_EVENTS]
    if any(e.subject_sha256 != msha for e in origins):
        raise _Failed(Category.INTEGRITY, "the custody log names a different manifest for this record")
    if not origins:
        raise _Failed(Category.COMPLETENESS, "no capture or import entry for this manifest in the custody "
                                             "entries")
    carried_from = ""
    for e in origins:
        sha = e.detail.get(SOURCE_CUSTODY)
        if sha is None or e.event == "capture":
            continue
        if depth >= _MAX_DEPTH:
            raise _Failed(Category.INTEGRITY, "the carried custody nests deeper than any export makes it")
        carried = _carried(src, sha, segment)
        if isinstance(carried, Absent):
            raise _Failed(carried.category, f"the source custody the import of {e.time} names (sha256:{sha[:16]}…) "
                                            f"{carried.why}")
        parsed = parse_custody(carried)
        if isinstance(parsed, Absent):
            raise _Failed(parsed.category, f"the source custody the import of {e.time} names {parsed.why}")
        try:
            inner = _origin(src, parsed, msha, depth + 1, carried)
        except _Failed as exc:
            raise _Failed(exc.category, f"in the custody carried from the source bundle: {exc.detail}") from None
        if e is origins[0] or not carried_from:
            carried_from = inner
    first = origins[0]
    if first.event == "capture":
        said = f"captured {first.time} by {first.actor}"
    else:
        forced = " (FORCED past failed checks)" if first.event == "import-forced" else ""
        said = f"imported {first.time} by {first.actor} from {first.detail.get('bundle', 'a bundle')}{forced}"
        if carried_from:
            said += f"; its source custody: {carried_from}"
    later = len(origins) - 1
    return said + (f"; then {later} import(s) that carried it" if later else "")
