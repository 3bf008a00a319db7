"""Citations for legal filings and research, built from a stored record (see ``styles`` for formats)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from archiver.cite.quote import QuoteMatch, find_quote, in_main_text
from archiver.cite.styles import STYLES, CitationData, common_name, host_of, render

if TYPE_CHECKING:
    from archiver.ports import Store
    from archiver.records import Verification


_SEPARATORS = (" — ", " – ", " - ", " | ", " · ", ": ")


def clean_title(title: str, site: str) -> str:
    """``Privacy Policy — Example Inc.`` → ``Privacy Policy`` when the site is cited anyway."""
    for sep in _SEPARATORS:
        for cand in (sep + site, site + sep):
            if title.endswith(cand) and cand.startswith(sep):
                return title[: -len(cand)].strip() or title
            if title.startswith(cand) and cand.endswith(sep):
                return title[len(cand):].strip() or title
    return title


def citation_data(archive: Store, record_id: str, *, quote: str | None = None,
                  report: Verification | None = None) -> CitationData:
    """Assemble what the styles need; every field has a sensible fallback, never "None"."""
    summary = archive.resolve(record_id)
    m = archive.manifest(summary.record_id)
    s = m.subject
    host = host_of(s.final_url)
    entity = s.entity or host
    title = clean_title(s.title or s.document or s.final_url, entity)
    document = s.document or s.title or "Web page"
    captured = dt.datetime.fromisoformat(m.captured_at.replace("Z", "+00:00")).astimezone(dt.UTC)
    doc_date = None
    if s.document_date:
        try:
            doc_date = dt.date.fromisoformat(s.document_date)
        except ValueError:
            doc_date = None
    wayback = None
    tsa_name = gen_time = None
    for _sha, add in archive.addenda(summary.record_id):
        if add is None:
            continue
        if add.wayback is not None and add.wayback.snapshot_url:
            wayback = add.wayback
        if add.timestamp is not None and tsa_name is None:
            tsa_name, gen_time = common_name(add.timestamp.tsa_name), add.timestamp.gen_time
    base = archive.config.str_("cite.archive_base_url").rstrip("/")
    archive_url = archive_name = None
    archive_date = None
    link = _public_permalink(archive, summary.record_id)
    if link:  # the record's own public page: what a court can open
        org = archive.config.str_("operator.organization") or host_of(link)
        archive_url, archive_name, archive_date = link, org, captured.date()
    elif base:
        archive_url, archive_name, archive_date = f"{base}/{summary.record_id}", host_of(base), captured.date()
    elif wayback is not None and wayback.snapshot_url:
        archive_url, archive_name = wayback.snapshot_url, "Wayback Machine"
        if wayback.snapshot_timestamp:
            archive_date = dt.datetime.strptime(wayback.snapshot_timestamp, "%Y%m%d%H%M%S").date()
    verified = detail = None
    if report is not None:
        verified = report.ok
        passed = sum(1 for c in report.checks if c.status.value == "PASS")
        detail = (f"{passed} checks, `archiver verify` on {dt.datetime.now(dt.UTC).date().isoformat()}"
                  if report.ok else "; ".join(f"{c.name}: {c.detail}" for c in report.failures))
    match: QuoteMatch | None = None
    if quote is not None:
        from archiver.errors import NotFoundError

        try:
            text_sha = archive.artifact_sha256(summary.record_id, "text")
        except NotFoundError as exc:
            raise NotFoundError(f"record {summary.record_id} has no extracted text to quote from") from exc
        match = find_quote(archive.blobs.read_bytes(text_sha).decode("utf-8"), quote)
        main_sha = archive.catalog.record_blobs(summary.record_id).get("main-text")
        if main_sha is not None:
            match = in_main_text(match, archive.blobs.read_bytes(main_sha).decode("utf-8"), quote)
    return CitationData(record_id=summary.record_id, entity=entity, document=document, title=title, site=entity,
                        url=s.url, final_url=s.final_url, captured=captured, content_sha256=m.digests.content_sha256,
                        key_id=m.signature.key_id if m.signature else "unsigned", document_date=doc_date,
                        archive_url=archive_url, archive_name=archive_name, archive_date=archive_date,
                        wayback_url=wayback.snapshot_url if wayback else None,
                        wayback_timestamp=wayback.snapshot_timestamp if wayback else None,
                        wayback_verdict=wayback.verdict if wayback else None, tsa_name=tsa_name, gen_time=gen_time,
                        verified=verified, verify_detail=detail or "", quote=match, permalink=link,
                        on_file_with=(archive.config.str_("operator.organization")
                                      or archive.config.str_("operator.name") or None))


def _public_permalink(archive: Store, record_id: str) -> str | None:
    """The permalink while the record is public and ``web.public_url`` is set; else None (a private
    record's link would answer "not found" to the reader of the filing)."""
    from archiver.publication import is_public, permalink

    if not archive.config.str_("web.public_url"):
        return None
    return permalink(archive, record_id) if is_public(archive, record_id) else None




def provision_citation_data(archive: Store, provision_id: str, *,
                            report: Verification | None = None) -> CitationData:
    """A provision's citation: its current text pinned as the quote, in the record that holds it (the
    latest record in which a watch run found it), with its ID and tracking facts. The excerpt is
    located in the record's text as ``cite --quote`` does; a clause the page text writes otherwise
    (whitespace aside) is located in the document's own text instead."""
    import dataclasses

    from archiver.cite.styles import ProvisionRef
    from archiver.errors import QuoteNotFoundError
    from archiver.provisions import get

    p = get(archive, provision_id)
    try:
        data = citation_data(archive, p.record_id, quote=p.text, report=report)
    except QuoteNotFoundError:
        from archiver.cite.quote import plain_markdown

        data = citation_data(archive, p.record_id, report=report)
        main_sha = archive.catalog.record_blobs(data.record_id).get("main-text")
        if main_sha is None:
            raise
        match = find_quote(plain_markdown(archive.blobs.read_bytes(main_sha).decode("utf-8")), p.text)
        data = dataclasses.replace(data, quote=dataclasses.replace(match, in_document=True, section=p.section))

    def when(t: str) -> dt.datetime:
        return dt.datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(dt.UTC)

    ref = ProvisionRef(provision_id=p.provision_id, label=p.label, first_tracked=when(p.first_tracked),
                       last_verified=when(p.last_verified), status=p.status)
    return dataclasses.replace(data, provision=ref)


__all__ = ["STYLES", "CitationData", "citation_data", "provision_citation_data", "render"]
