"""Pin, list, show, untrack and re-check provisions: the use cases over the catalog's two tables.

Pinning and untracking are custody entries (``provision-add``, ``provision-remove``) committed with
their rows in one unit of work of the write path; the record is named in the entry's detail, never as
the entry's record, so nothing about the record changes (its custody travels in its bundles).
Observations made by a watch run (:func:`recheck`) are catalog rows, like the watch run log: the
records they name are the evidence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from archiver.errors import NotFoundError, UsageError
from archiver.provisions.ids import new_provision_id, normalize_provision_id
from archiver.provisions.matching import Found, norm, refind, section_of
from archiver.provisions.model import ClauseEdit, Provision, ProvisionCheck, ProvisionReport, ProvisionVersion

if TYPE_CHECKING:
    from archiver.ports import Capturer, Store
    from archiver.textdiff import Section

#: A label is one line for lists and page titles; a clause is at most this long (a long article is a
#: section, which the watch's section diff already follows).
MAX_LABEL = 200
MAX_QUOTE = 10_000
#: The watch-run outcomes whose record is an observation of the document (a failed capture, or one
#: whose declaration matched nothing, says nothing about the clause).
OBSERVED = ("new", "changed", "unchanged")
FOUND = ("pinned", "unchanged", "changed", "moved")
_COLS = ("provision_id, url, entity, document, label, record_id, section, section_key, text, sha256, created_at, "
         "created_by, untracked_at, untracked_by")
_CHECK_COLS = "provision_id, record_id, captured_at, checked_at, status, section, text, sha256, similarity"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_label(label: str | None) -> str | None:
    if label is None:
        return None
    label = label.strip()
    if len(label) > MAX_LABEL:
        raise UsageError(f"the label is {len(label):,} characters long; a label is at most {MAX_LABEL}",
                         hint="give a short name (\"Model training opt-out\"); the clause text is kept in full")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in label):
        raise UsageError("the label must be one line without control characters")
    return label or None


def main_sections(core: Store, record_id: str) -> tuple[str, list[Section]]:
    """The record's main-text and its sections; a record without one cannot hold a provision."""
    from archiver.derive import main_text_sha256
    from archiver.monitor import record_sections

    summary = core.resolve(record_id)
    sha = main_text_sha256(core, summary.record_id)
    if sha is None:
        raise UsageError(f"record {summary.record_id} has no main-text (the document's own text)",
                         hint=f"`archiver derive {summary.record_id}` makes it from the capture")
    sections = record_sections(cast("Capturer", core), summary.record_id)  # reads only
    return core.blobs.read_bytes(sha).decode("utf-8"), sections


def add(core: Store, record_id: str, quote: str, *, label: str | None = None, actor: str) -> Provision:
    """Pin ``quote`` (matched as ``cite --quote`` matches, in the record's main-text) as a provision."""
    from archiver.cite.quote import find_quote, plain_markdown
    from store.custody import Event

    label = check_label(label)
    if len(quote) > MAX_QUOTE:
        raise UsageError(f"the quote is {len(quote):,} characters long; a provision is at most {MAX_QUOTE:,}")
    summary = core.resolve(record_id)
    main, sections = main_sections(core, summary.record_id)
    match = find_quote(plain_markdown(main), quote)  # QuoteNotFoundError names the closest sentence
    section = section_of(sections, match.excerpt)
    if section is None:
        raise UsageError("the quote runs across a section heading", hint="pin the part within one section")
    m = core.manifest(summary.record_id)
    pid, now, sha = new_provision_id(), _now(), _sha(match.excerpt)
    row = (pid, summary.url, m.subject.entity, m.subject.document, label, summary.record_id, section.heading,
           section.key, match.excerpt, sha, now, actor, None, None)

    def index(d: Any) -> None:
        d.run(f"INSERT INTO provisions ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)  # noqa: S608
        d.run(f"INSERT INTO provision_checks ({_CHECK_COLS}, section_key) VALUES (?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
              (pid, summary.record_id, summary.captured_at, now, "pinned", section.heading, match.excerpt, sha, 1.0,
               section.key))
    detail = {"provision_id": pid, "record_id": summary.record_id, "url": summary.url, "sha256": sha}
    if label:
        detail["label"] = label
    core.ledger.commit([Event("provision-add", detail=detail)], actor=actor, index=index)
    return get(core, pid)


def remove(core: Store, provision_id: str, *, actor: str) -> Provision:
    """Stop tracking a provision; its observations stay (append-only) and ``show`` still answers."""
    from store.custody import Event

    pid = normalize_provision_id(provision_id)

    def prepare(d: Any) -> tuple[list[Event], None, None]:
        row = d.one("SELECT untracked_at FROM provisions WHERE provision_id=?", (pid,))
        if row is None:
            raise _unknown(pid)
        if row[0] is not None:
            raise UsageError(f"provision {pid} is no longer tracked already (since {row[0]})")
        d.run("UPDATE provisions SET untracked_at=?, untracked_by=? WHERE provision_id=?", (_now(), actor, pid))
        return [Event("provision-remove", detail={"provision_id": pid})], None, None
    core.ledger.run(prepare, actor=actor)
    return get(core, pid)


def _unknown(pid: str) -> NotFoundError:
    return NotFoundError(f"no provision {pid} in this store", hint="`archiver provision list` shows the provisions")


# ---- reading -------------------------------------------------------------------------------------
def _checks(d: Any, pids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in pids}
    for i in range(0, len(pids), 500):
        part = pids[i:i + 500]
        marks = ",".join("?" * len(part))
        for r in d.dicts(f"SELECT seq, {_CHECK_COLS}, section_key FROM provision_checks "  # noqa: S608
                         f"WHERE provision_id IN ({marks}) ORDER BY seq", part):
            out[r["provision_id"]].append(r)
    return out


def _versions(checks: list[dict[str, Any]]) -> list[ProvisionVersion]:
    """Distinct texts in the order first seen (compared as quotes are: whitespace and quote shapes aside)."""
    from archiver.textdiff import word_ops

    found: dict[str, dict[str, Any]] = {}
    for c in checks:
        if c["status"] not in FOUND or c["text"] is None:
            continue
        key = norm(c["text"])
        v = found.get(key)
        if v is None:
            found[key] = {"first": c, "last": c}
        else:
            v["last"] = c
    out: list[ProvisionVersion] = []
    for n, v in enumerate(found.values(), 1):
        first, last = v["first"], v["last"]
        edits = tuple(ClauseEdit(**op) for op in word_ops(out[-1].text, first["text"])) if out else ()
        out.append(ProvisionVersion(number=n, text=first["text"], sha256=first["sha256"], section=last["section"],
                                    record_id=first["record_id"], first_seen=first["captured_at"],
                                    last_record_id=last["record_id"], last_seen=last["captured_at"], edits=edits))
    return out


def _provision(row: dict[str, Any], checks: list[dict[str, Any]]) -> Provision:
    seen = [c for c in checks if c["status"] in FOUND and c["text"] is not None]
    current = seen[-1] if seen else None
    latest = checks[-1] if checks else None
    return Provision(provision_id=row["provision_id"], label=row["label"], url=row["url"], entity=row["entity"],
                     document=row["document"],
                     section=current["section"] if current else row["section"],
                     text=current["text"] if current else row["text"],
                     sha256=current["sha256"] if current else row["sha256"],
                     record_id=current["record_id"] if current else row["record_id"],
                     pinned_record_id=row["record_id"], first_tracked=row["created_at"],
                     last_verified=current["captured_at"] if current else row["created_at"],
                     status=latest["status"] if latest else "pinned", versions=len({norm(c["text"]) for c in seen}),
                     active=row["untracked_at"] is None, untracked_at=row["untracked_at"])


def _rows(core: Store, where: str = "", args: Iterable[Any] = ()) -> list[Provision]:
    with core.catalog.db() as d:
        rows = d.dicts(f"SELECT {_COLS} FROM provisions {where} ORDER BY created_at, provision_id",  # noqa: S608
                       list(args))
        checks = _checks(d, [r["provision_id"] for r in rows])
    return [_provision(r, checks[r["provision_id"]]) for r in rows]


def get(core: Store, provision_id: str) -> Provision:
    pid = normalize_provision_id(provision_id)
    found = _rows(core, "WHERE provision_id=?", (pid,))
    if not found:
        raise _unknown(pid)
    return found[0]


def list_all(core: Store, *, entity: str | None = None, url: str | None = None,
             include_untracked: bool = False) -> list[Provision]:
    """Provisions pinned in this store, oldest first, filtered by entity (case-insensitive) or URL."""
    where, args = [], []
    if entity:
        where.append("LOWER(entity) = LOWER(?)")
        args.append(entity)
    if url:
        where.append("url = ?")
        args.append(url)
    if not include_untracked:
        where.append("untracked_at IS NULL")
    return _rows(core, ("WHERE " + " AND ".join(where)) if where else "", args)


def show(core: Store, provision_id: str) -> ProvisionReport:
    """Every version of the clause's text with the records holding it, and every observation."""
    from archiver.monitor import versions

    p = get(core, provision_id)
    with core.catalog.db() as d:
        checks = _checks(d, [p.provision_id])[p.provision_id]
    try:
        doc_versions = len(versions(cast("Capturer", core), p.url))  # reads only
    except NotFoundError:
        doc_versions = 0
    return ProvisionReport(provision=p, versions=tuple(_versions(checks)),
                           checks=tuple(ProvisionCheck(provision_id=c["provision_id"], record_id=c["record_id"],
                                                       captured_at=c["captured_at"], checked_at=c["checked_at"],
                                                       status=c["status"], section=c["section"], text=c["text"],
                                                       sha256=c["sha256"], similarity=float(c["similarity"]))
                                        for c in checks),
                           document_versions=doc_versions)


# ---- re-finding on a watch run -----------------------------------------------------------------------
def check_record(core: Store, record_id: str) -> list[ProvisionCheck]:
    """Look for every tracked provision of the record's URL in it, and append one observation each
    (a provision already observed in this record is left as it was: calling this twice is harmless)."""
    summary = core.resolve(record_id)
    provisions = list_all(core, url=summary.url)
    if not provisions:
        return []
    try:
        main, sections = main_sections(core, summary.record_id)
    except UsageError:
        return []  # no main-text: nothing to say about a clause of the document
    if not main.strip():
        return []
    with core.catalog.db() as d:
        checks = _checks(d, [p.provision_id for p in provisions])
    now, out, rows = _now(), [], []
    for p in provisions:
        if any(c["record_id"] == summary.record_id for c in checks[p.provision_id]):
            continue
        seen = [c for c in checks[p.provision_id] if c["status"] in FOUND]
        key = seen[-1]["section_key"] if seen else None
        f: Found = refind(p.text, key, sections)
        sha = _sha(f.text) if f.text is not None else None
        out.append(ProvisionCheck(provision_id=p.provision_id, record_id=summary.record_id,
                                  captured_at=summary.captured_at, checked_at=now, status=f.status,
                                  section=f.section, text=f.text, sha256=sha, similarity=f.similarity))
        rows.append((p.provision_id, summary.record_id, summary.captured_at, now, f.status, f.section, f.text, sha,
                     f.similarity, f.section_key))
    if rows:
        with core.catalog.db() as d, d.tx():
            d.many(f"INSERT INTO provision_checks ({_CHECK_COLS}, section_key) VALUES (?,?,?,?,?,?,?,?,?,?) "  # noqa: S608
                   "ON CONFLICT (provision_id, record_id) DO NOTHING", rows)
    return out


def recheck(core: Store, summary: Any, *, actor: str) -> list[ProvisionCheck]:
    """Re-find every provision of each URL of a watch run (``monitor.RunSummary``) that got a record of
    the document (outcome new, changed or unchanged), in that record. ``actor`` is who ran the watch;
    observations are catalog rows, not custody entries (the records are the evidence)."""
    del actor  # kept for the call's shape: every act of a run names who ran it
    out: list[ProvisionCheck] = []
    for result in summary.results:
        if result.outcome in OBSERVED and result.record_id:
            out += check_record(core, result.record_id)
    return out


__all__ = ["MAX_LABEL", "MAX_QUOTE", "add", "check_label", "check_record", "get", "list_all", "main_sections",
           "recheck", "remove", "show"]
