"""Declarations that stay true: a watch's extraction rules, their history, and like-for-like texts.

A watch's *declaration* is what it extracts (Open Terms Archive ``select``/``remove`` rules, or
nothing: automatic) and how it is labelled and scheduled. It changes (``watch update``, an OTA
``*.history.json``), and each version is kept in ``watch_declarations`` with when it took effect,
until when, who made it and where it came from, beside a custody entry.

Why texts are named by their rules: a record's own ``main-text`` was made by the rules in force when
it was captured. When the rules change, the previous version's text is made again from its stored
content under the new rules, as a signed ``derived`` addendum named ``main-text.<rules id>`` (the
record keeps its own ``main-text``: evidence is never replaced), and every comparison of two records
reads the older one *under the newer one's rules*. So a change of rules alone is never a new
version, and a change of the document under new rules is.

A declared ``select`` rule that matches nothing on a capture (or a range with a missing end) means
the declaration no longer describes the page: what it extracts is not the document. Such a capture
is kept as evidence but is never a version (``selector-missed`` in the watch's run log).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.derive import derive_main_text, main_text_sha256
from archiver.errors import ArchiverError, UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.ports import Store
    from archiver.records import MainTextInfo
    from store.catalog import _Db

Rules = tuple[tuple[str, ...], tuple[str, ...]]  # (select, remove)
MISSED = "selector-missed"


@dataclass(frozen=True, slots=True)
class DeclarationVersion(Report):
    """One version of a watch's declaration: its rules, labels and interval, in force from
    ``valid_from`` until ``valid_until`` (open: in force now), made by ``actor``; ``source`` is
    ``watch-add``, ``watch-update``, ``ota`` (an imported declaration) or ``ota-history`` (an entry of
    an OTA ``*.history.json``: the rules that applied before)."""

    url: str
    version: int
    select: tuple[str, ...]
    remove: tuple[str, ...]
    entity: str | None
    document: str | None
    interval_s: int
    valid_from: str | None
    valid_until: str | None
    actor: str
    source: str


@dataclass(frozen=True, slots=True)
class PastRules:
    """An OTA history entry: rules that applied until ``valid_until``."""

    select: tuple[str, ...]
    remove: tuple[str, ...]
    valid_until: str


def canonical_rules(rules: tuple[str, ...]) -> tuple[str, ...]:
    """Rules as stored: a range rule as its sorted-key JSON, so two spellings compare equal."""
    from archiver.capture.maintext import parse_rule

    out = []
    for r in rules:
        rule = parse_rule(r)
        out.append(rule if isinstance(rule, str) else json.dumps(rule, sort_keys=True))
    return tuple(out)


def rules_id(select: tuple[str, ...], remove: tuple[str, ...]) -> str:
    """A short stable name for a set of rules (12 hex of the SHA-256 of their canonical JSON)."""
    doc = json.dumps({"remove": list(remove), "select": list(select)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()[:12]


def text_name(select: tuple[str, ...], remove: tuple[str, ...]) -> str:
    """The artifact name of a main-text made again under other rules (``archiver get ID NAME``)."""
    return f"main-text.{rules_id(select, remove)}"


# ---- the declaration table ------------------------------------------------------------------------
def rules_json(select: tuple[str, ...], remove: tuple[str, ...]) -> str:
    return json.dumps({"remove": list(remove), "select": list(select)}, sort_keys=True)


def insert_version(d: _Db, url: str, *, select: tuple[str, ...], remove: tuple[str, ...], entity: str | None,
                   document: str | None, interval_s: int, valid_from: str | None, valid_until: str | None,
                   actor: str, source: str) -> int:
    """Append a version inside the caller's transaction; the open one before it ends where it begins."""
    row = d.one("SELECT MAX(version) FROM watch_declarations WHERE url=?", (url,))
    version = int(row[0]) + 1 if row and row[0] is not None else 1
    if valid_from is not None:
        d.run("UPDATE watch_declarations SET valid_until=? WHERE url=? AND valid_until IS NULL", (valid_from, url))
    d.run("INSERT INTO watch_declarations (url, version, rules, entity, document, interval_s, valid_from, "
          "valid_until, actor, source) VALUES (?,?,?,?,?,?,?,?,?,?)",
          (url, version, rules_json(select, remove), entity, document, interval_s, valid_from, valid_until, actor,
           source))
    return version


def close_current(d: _Db, url: str, when: str) -> None:
    d.run("UPDATE watch_declarations SET valid_until=? WHERE url=? AND valid_until IS NULL", (when, url))


def update_row(d: _Db, url: str, *, entity: str | None, document: str | None, interval_s: int, options: str) -> None:
    d.run("UPDATE watches SET entity=?, document=?, interval_s=?, options=? WHERE url=?",
          (entity, document, interval_s, options, url))


def declaration_history(archive: Store, url: str) -> list[DeclarationVersion]:
    """Every version of ``url``'s declaration, oldest first (empty: never watched)."""
    with archive.catalog.db() as d:
        rows = d.dicts("SELECT * FROM watch_declarations WHERE url=? ORDER BY version", (url,))
    out = []
    for r in rows:
        rules: dict[str, Any] = json.loads(r["rules"])  # a row from before versions holds the watch's options
        out.append(DeclarationVersion(url=r["url"], version=int(r["version"]), select=tuple(rules.get("select", ())),
                                      remove=tuple(rules.get("remove", ())), entity=r["entity"],
                                      document=r["document"], interval_s=int(r["interval_s"]),
                                      valid_from=r["valid_from"], valid_until=r["valid_until"], actor=r["actor"],
                                      source=r["source"]))
    return out


def rules_at(archive: Store, url: str, when: str) -> Rules | None:
    """The rules of ``url``'s declaration in force at ``when`` (None: no version covers it)."""
    from archiver.monitor.watches import _parse

    t = _parse(when)
    for v in reversed(declaration_history(archive, url)):
        if (v.valid_from is None or _parse(v.valid_from) <= t) and (v.valid_until is None or t < _parse(v.valid_until)):
            return (v.select, v.remove)
    return None


def ota_history(history: Any, document: str, url: str) -> tuple[PastRules, ...]:
    """The entries of an OTA ``*.history.json`` (``{"<terms type>": [{"fetch", "select", "remove",
    "validUntil"}, …]}``) for one document at one URL, oldest first. An entry for another URL (the
    document moved) belongs to another watch and is left out."""
    if history is None:
        return ()
    if not isinstance(history, dict):
        raise UsageError("not an Open Terms Archive history: the top level must be an object of terms types")
    entries = history.get(document, [])
    if not isinstance(entries, list):
        raise UsageError(f"history of {document!r} is not a list of declarations")
    out = []
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("validUntil"), str) or not isinstance(e.get("fetch"), str):
            raise UsageError(f"history entry of {document!r} without fetch and validUntil: {str(e)[:120]}")
        if e["fetch"] != url:
            continue
        out.append(PastRules(select=canonical_rules(ota_rules(e.get("select"))),
                             remove=canonical_rules(ota_rules(e.get("remove"))),
                             valid_until=_instant(e["validUntil"], document)))
    return tuple(sorted(out, key=lambda p: p.valid_until))


def _instant(value: str, document: str) -> str:
    """A ``validUntil`` as the store writes times (UTC, ``…Z``): it bounds the rules ``rules_at`` picks
    for a capture, so a value that is no instant (or a date without a zone) is bad input here, not a
    crash of every later ``derive`` of that URL. A time without a zone (a plain date: its start) is UTC."""
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"history entry of {document!r}: validUntil {value[:40]!r} is not an ISO 8601 time",
                         hint='OTA writes it as "2024-01-12T10:00:00Z"') from None
    if t.tzinfo is not None:
        return value.strip()
    return t.replace(tzinfo=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ota_rules(value: Any) -> tuple[str, ...]:
    """OTA's rule value (a selector, a range object, or a list of those) as stored rules."""
    items = value if isinstance(value, list) else ([value] if value else [])
    out = []
    for r in items:
        if not isinstance(r, str | dict):
            raise UsageError(f"unsupported selector rule {r!r}")
        out.append(r if isinstance(r, str) else json.dumps(r, sort_keys=True))
    return tuple(out)


# ---- like-for-like texts ----------------------------------------------------------------------------
def own_info(archive: Store, record_id: str) -> MainTextInfo | None:
    """The rules that made the record's own ``main-text`` (captured with it, or derived later)."""
    m = archive.manifest(record_id)
    if m.artifact("main-text") is not None:
        return m.capture.main_text
    for _sha, add in archive.addenda(record_id, "derived"):
        if add is not None and add.derived is not None and add.derived.name == "main-text":
            return add.derived.main_text
    return None


def _rules_of(info: MainTextInfo | None) -> Rules | None:
    """None when rules do not apply to how the text was made (a PDF's text has no selectors)."""
    from archiver.capture.maintext import PDF_EXTRACTOR

    if info is None or info.extractor == PDF_EXTRACTOR:
        return None
    return (info.select, info.remove)


def text_under(archive: Store, record_id: str, rules: Rules) -> str | None:
    """SHA-256 of the record's main-text under ``rules``: its own when they made it (or it is a PDF's),
    else one made again under them; None when neither exists."""
    blobs = archive.catalog.record_blobs(record_id)
    own = blobs.get("main-text")
    if own is not None:
        info = own_info(archive, record_id)
        if info is None or _rules_of(info) in (None, rules):
            return own
    return blobs.get(text_name(*rules))


def ensure_text_under(archive: Store, record_id: str, rules: Rules, key: Callable[[], Ed25519PrivateKey], *,
                      actor: str) -> str | None:
    """``text_under``, making it (a signed ``derived`` addendum) when it does not exist yet; None when
    the rules extract nothing from that record's content (it cannot be compared like for like)."""
    got = text_under(archive, record_id, rules)
    if got is not None:
        return got
    try:
        res = derive_main_text(archive, record_id, key(), actor=actor, select=rules[0], remove=rules[1],
                               name=text_name(*rules))
    except ArchiverError:
        return None
    return res.sha256 if res.outcome in ("derived", "present") else None


def comparable_pair(archive: Store, a: str, b: str, *, key: Callable[[], Ed25519PrivateKey] | None = None,
                    actor: str = "") -> tuple[str, str] | None:
    """(a's main-text, b's main-text) read under b's rules, when both records have main-text; a's own
    when no text of a exists under b's rules (and ``key`` is None, or the rules extract nothing from a)."""
    sha_b, sha_a = main_text_sha256(archive, b), main_text_sha256(archive, a)
    if sha_a is None or sha_b is None:
        return None
    rules = _rules_of(own_info(archive, b))
    if rules is None:
        return sha_a, sha_b
    got = text_under(archive, a, rules)
    if got is None and key is not None:
        got = ensure_text_under(archive, a, rules, key, actor=actor)
    return got or sha_a, sha_b


# ---- a declaration that no longer matches ------------------------------------------------------------
def missed_selectors(archive: Store, record_id: str, select: tuple[str, ...]) -> list[tuple[str, str]]:
    """(rule, CSS selector) of each declared select rule that finds nothing in the record's HTML."""
    from archiver.capture.extract import sniff_kind
    from archiver.capture.maintext import unmatched_selectors

    if not select:
        return []
    m = archive.manifest(record_id)
    content = m.artifact("content")
    if content is None:
        return []
    data = archive.blobs.read_bytes(content.sha256)
    if sniff_kind(data[:1024], content.media_type) != "html":
        return []  # rules apply to HTML; a PDF's text is all of it
    return unmatched_selectors(data, select, content_type=m.http.content_type)


def missed_records(archive: Store, url: str) -> set[str]:
    """Records of ``url`` whose declaration matched nothing: evidence, never versions."""
    return {r["record_id"] for r in archive.catalog.watch_runs(url) if r["outcome"] == MISSED and r["record_id"]}


__all__ = ["MISSED", "DeclarationVersion", "PastRules", "canonical_rules", "comparable_pair", "declaration_history",
           "ensure_text_under", "missed_records", "missed_selectors", "ota_history", "ota_rules", "own_info",
           "rules_at", "rules_id", "text_name", "text_under"]
