"""Artifacts derived after the capture, from the record's stored content: ``archiver derive``.

A record captured before ``main-text`` existed (or without a declaration) gets its document text as
a signed addendum naming the manifest's hash: the manifest is never rewritten, and the text is made
by the very function a new capture uses (``archiver.capture.main_text_of``), from the content whose
hash the signed manifest already holds. So the old and new versions of a watched document compare
on the same footing, and ``verify`` can make the text again and compare.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archiver.errors import ArchiverError, NotFoundError
from archiver.records import Addendum, DerivedText
from archiver.schema import Report

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.ports import Store


@dataclass(frozen=True, slots=True)
class DeriveResult(Report):
    """What ``archiver derive`` did for one record."""

    record_id: str
    outcome: str  # "derived" | "present" (the record already has main-text) | "skipped" (with the reason)
    detail: str
    sha256: str | None = None
    size: int | None = None
    method: str | None = None  # "declared" | "automatic"
    addendum_sha256: str | None = None


def main_text_sha256(archive: Store, record_id: str) -> str | None:
    """The record's main-text, captured with it or derived later (both are catalog artifacts)."""
    return archive.catalog.record_blobs(record_id).get("main-text")


def derive_main_text(archive: Store, record_id: str, key: Ed25519PrivateKey, *, actor: str,
                     select: tuple[str, ...] = (), remove: tuple[str, ...] = (),
                     name: str = "main-text") -> DeriveResult:
    """Derive one record's main-text (declared rules, else automatic) as a signed addendum.

    ``name`` other than ``main-text`` is the same text under another declaration (``main-text.<rules
    id>``, see ``archiver.monitor.declarations``): when a watch's rules change, the previous version
    is made again under the new ones, beside its own main-text, so the next comparison is like for like."""
    from archiver.capture import main_text_of
    from archiver.capture.extract import sniff_kind
    from archiver.capture.warc import MAIN_TEXT_TYPE

    summary = archive.resolve(record_id)
    rid = summary.record_id
    existing = archive.catalog.record_blobs(rid).get(name)
    if existing is not None:
        return DeriveResult(rid, "present", f"the record already has a {name} artifact", sha256=existing)
    m = archive.manifest(rid)
    content = m.artifact("content")
    if content is None:
        return DeriveResult(rid, "skipped", "the record has no content artifact")
    if content.size > archive.config.int_("capture.max_text_bytes"):
        return DeriveResult(rid, "skipped", "the content is over capture.max_text_bytes")
    try:
        data = archive.blobs.read_bytes(content.sha256)
    except FileNotFoundError as exc:
        raise NotFoundError(f"the content of {rid} is missing from the store",
                            hint=f"run `archiver verify {rid}`") from exc
    kind = sniff_kind(data[:1024], content.media_type)  # as capture decides
    if kind not in ("html", "pdf"):
        return DeriveResult(rid, "skipped", f"main-text is made from HTML or PDF, not {content.media_type}")
    text, info = main_text_of(data, select=select, remove=remove, base_url=m.subject.final_url,
                              content_type=m.http.content_type, kind=kind)
    if not text.strip():
        return DeriveResult(rid, "skipped", "nothing left: the select rules matched nothing, or the page is empty")
    encoded = text.encode("utf-8")
    sha = archive.blobs.put_bytes(encoded)
    from archiver.provenance.signing import addendum_file_bytes, sign_addendum

    created = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    add = sign_addendum(Addendum(kind="derived", record_id=rid, manifest_sha256=summary.manifest_sha256,
                                 created_at=created,
                                 derived=DerivedText(name=name, sha256=sha, size=len(encoded),
                                                     media_type=MAIN_TEXT_TYPE, source_sha256=content.sha256,
                                                     main_text=info)), key)
    asha = archive.commit_addendum(add, addendum_file_bytes(add), actor=actor)
    return DeriveResult(rid, "derived", f"{info.method} main-text, {len(text):,} characters", sha256=sha,
                        size=len(encoded), method=info.method, addendum_sha256=asha)


def derive_records(archive: Store, record_ids: list[str], key: Ed25519PrivateKey, *, actor: str,
                   select: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> list[DeriveResult]:
    """``archiver derive``: the rules given, else the watch declaration that was in force when the record
    was captured (its history: ``watch update``, an OTA ``*.history.json``), else the watch's current
    one, else automatic."""
    import json

    from archiver.monitor.declarations import rules_at

    declared = {w["url"]: json.loads(w["options"]) for w in archive.catalog.watches()} if not select else {}
    out = []
    for rid in record_ids:
        summary = archive.resolve(rid)
        if select:
            rules = (select, remove)
        else:
            now = declared.get(summary.url, {})
            rules = rules_at(archive, summary.url, summary.captured_at) or \
                (tuple(now.get("select", ())), tuple(now.get("remove", ())))
        out.append(derive_main_text(archive, rid, key, actor=actor, select=rules[0], remove=rules[1]))
    return out


def derive_for_url(archive: Store, url: str, key: Ed25519PrivateKey, *, actor: str,
                   select: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> list[DeriveResult]:
    """Every record of a URL that has no main-text yet (a watch does this before comparing), each by
    the declaration in force when it was captured, as ``derive_records`` does (``select``/``remove``:
    the watch's current rules, for a record older than its declaration history): a record's own
    main-text must not depend on which command made it first."""
    from archiver.monitor.declarations import rules_at

    out = []
    for rid, captured_at, *_rest in archive.catalog.records_for_url(url):
        if main_text_sha256(archive, rid) is None:
            sel, rem = rules_at(archive, url, captured_at) or (select, remove)
            try:
                out.append(derive_main_text(archive, rid, key, actor=actor, select=sel, remove=rem))
            except ArchiverError as exc:
                out.append(DeriveResult(rid, "skipped", exc.message))
    return out


__all__ = ["DeriveResult", "derive_for_url", "derive_main_text", "derive_records", "main_text_sha256"]
