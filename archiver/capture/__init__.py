"""The capture orchestrator. Its steps run in this order, each a small named unit:

1. ``fetch``    — every hop, byte-exact, into temp files (nothing in the store yet);
2. ``status``   — refuse non-2xx unless ``allow_status`` (the status is in the manifest either way);
3. ``decode``   — undo Content-Encoding into the ``content`` artifact, with the bomb cap;
4. ``extract``  — normalised text from HTML/PDF/plain text (skipped, with the reason, otherwise);
5. ``warc``     — the WARC/1.1 file of the whole exchange;
6. ``blobs``    — every artifact moved into the content-addressed store (atomic renames);
7. ``sign``     — the manifest, Ed25519 over its canonical JSON, stored as a blob;
8. ``custody``  — a hash-chained custody entry naming the manifest's hash;
9. ``catalog``  — one SQLite transaction: the record becomes visible.

A kill at any point leaves either no catalog row or a complete record; blobs written before a
crash are complete (renamed into place) and, if unreferenced, harmless. Because the manifest is
stored before the catalog row, ``archiver store rebuild-index`` recovers a record whose custody
entry was written but whose catalog commit was not.
"""

from __future__ import annotations

import dataclasses
import platform
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from archiver._version import __version__
from archiver.capture.extract import Extracted, extract, sniff_kind
from archiver.capture.fetch import FetchOptions, FetchResult, fetch
from archiver.capture.warc import MAIN_TEXT_TYPE, chain_pem, hop_metadata, write_capture_warc
from archiver.decode import decode_stream, encodings
from archiver.errors import ArchiverError, HTTPStatusError
from archiver.options import CaptureOptions
from archiver.provenance.keys import PassphraseSource
from archiver.provenance.signing import sign_manifest_file
from archiver.records import (
    Artifact,
    BrowserInfo,
    CaptureInfo,
    Digests,
    HTTPInfo,
    MainTextInfo,
    Manifest,
    PreviousRef,
    StepOutcome,
    Subject,
    TLSInfo,
    Tool,
    sha1_b32,
)

if TYPE_CHECKING:
    from archiver.core import StoreCore

__all__ = ["CaptureOptions", "Rendered", "capture_url", "default_user_agent", "main_text_of"]


def default_user_agent() -> str:
    return f"archiver/{__version__} (evidence capture; python-requests)"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _media_type(content_type: str | None) -> str:
    return (content_type or "application/octet-stream").split(";", 1)[0].strip().lower() or \
        "application/octet-stream"


def _tool() -> Tool:
    return Tool(name="archiver", version=__version__, python=platform.python_version(),
                platform=platform.platform())


def fetch_options(archive: StoreCore, opts: CaptureOptions) -> FetchOptions:
    cfg = archive.config
    return FetchOptions(
        user_agent=cfg.str_("capture.user_agent") or default_user_agent(),
        timeout=cfg.float_("capture.timeout"), deadline=cfg.float_("capture.deadline"),
        max_bytes=cfg.int_("capture.max_bytes"), max_redirects=cfg.int_("capture.max_redirects"),
        allow_private=archive.allow_private(opts.allow_private), insecure=opts.insecure,
        ca_bundle=cfg.str_("capture.ca_bundle") or None)


@dataclass(slots=True)
class Rendered:
    """What a browser capture adds: the page's own fetch and its sub-resources (recorded by our
    fetcher, so byte-exact), the rendered text, and the screenshot/PDF/DOM artifacts."""

    main: FetchResult
    subresources: list[FetchResult]
    captured: float
    text: str | None
    title: str | None
    artifacts: list[tuple[str, str, bytes, str]]  # (name, file name, bytes, media type)
    browser: BrowserInfo
    steps: list[StepOutcome]


def capture_url(archive: StoreCore, url: str, opts: CaptureOptions, passphrase: PassphraseSource, *,
                actor: str, rendered: Rendered | None = None) -> Manifest:
    """Run the steps above for one URL and return the signed manifest of the new record.

    The manifest is signed inside the store's unit of work (``StoreCore.commit_record``), once its
    ``previous`` is decided under the write lock: concurrent captures of one URL make one chain.

    With ``rendered`` (a browser capture) the fetch step has already happened inside the browser's
    request interception; everything from ``status`` on is the same code."""
    signing_key = archive.keys.load_private(passphrase)  # fail on a wrong passphrase before fetching
    fopts = fetch_options(archive, opts)
    temps: list[Path] = []
    steps: list[StepOutcome] = list(rendered.steps) if rendered else []
    result = FetchResult()
    extra: list[FetchResult] = list(rendered.subresources) if rendered else []
    try:
        if rendered is None:
            captured = time.time()
            result = fetch(url, fopts, archive.blobs.new_temp)
        else:
            captured, result = rendered.captured, rendered.main
        if opts.on_fetched is not None:
            opts.on_fetched()
        final = result.final
        steps.append(StepOutcome("fetch", "ok", f"{len(result.hops)} exchange(s), {final.payload_size:,} bytes"
                                 + (f", {len(extra)} sub-resource(s)" if rendered else "")))
        if not 200 <= final.status < 300:
            if not opts.allow_status:
                raise HTTPStatusError(f"{final.url} answered HTTP {final.status} {final.reason}".rstrip())
            steps.append(StepOutcome("status", "ok", f"HTTP {final.status} kept as evidence (--allow-status)"))
        else:
            steps.append(StepOutcome("status", "ok", f"HTTP {final.status}"))

        max_decoded = archive.config.int_("capture.max_decoded_bytes")
        if not encodings(final.header("Content-Encoding")) and final.payload_size <= max_decoded:
            # the content is the payload: the same file becomes the content blob once the WARC is
            # written (a new file costs more than the copy itself on some file systems)
            content_path = final.body_path
            content_sha, content_size = final.payload_sha256, final.payload_size
        else:
            content_fh, content_path = archive.blobs.new_temp(".content")
            temps.append(content_path)
            with content_fh, open(final.body_path, "rb") as body:
                content_sha, content_size = decode_stream(body, content_fh, final.header("Content-Encoding"),
                                                          max_decoded)
        enc = final.header("Content-Encoding")
        steps.append(StepOutcome("decode", "ok", f"Content-Encoding {enc}" if enc else "identity"))

        content_type = final.header("Content-Type")
        media_type = _media_type(content_type)
        extracted: Extracted | None = None
        max_text = archive.config.int_("capture.max_text_bytes")
        if rendered is not None and rendered.text is not None:
            from archiver.capture.extract import find_document_date, normalize_text

            text = normalize_text(rendered.text)
            extracted = Extracted(text=text, title=rendered.title, document_date=find_document_date(text),
                                  kind="rendered")
            steps.append(StepOutcome("extract", "ok", f"rendered DOM, {len(text):,} characters"))
        elif content_size > max_text:
            steps.append(StepOutcome("extract", "skipped",
                                     f"decoded body of {content_size:,} bytes is over capture.max_text_bytes"))
        elif sniff_kind(_head(content_path), media_type) is None:
            steps.append(StepOutcome("extract", "skipped", f"no text extractor for {media_type}"))
        else:  # only a document we can read is loaded into memory (bounded by capture.max_text_bytes)
            try:
                extracted = extract(content_path.read_bytes(), media_type, content_type)
            except ArchiverError as exc:
                steps.append(StepOutcome("extract", "failed", exc.message))
            else:
                if extracted is None:
                    steps.append(StepOutcome("extract", "skipped", f"no text extractor for {media_type}"))
                else:
                    steps.append(StepOutcome("extract", "ok", f"{extracted.kind}, {len(extracted.text):,} characters"))
        text_bytes = extracted.text.encode("utf-8") if extracted is not None else None
        main_bytes, main_info = _main_text(opts, content_path, media_type, content_type, content_size, max_text,
                                           final.url, steps)

        record_id = archive.unused_record_id()
        operator = archive.operator()
        warc_fh, warc_path = archive.blobs.new_temp(".warc.gz")
        temps.append(warc_path)
        warcinfo = {
            "software": f"archiver/{__version__} (warcio)",
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "isPartOf": record_id,
            "operator": " / ".join(x for x in (operator.name, operator.organization) if x) or "unknown",
            "hostname": socket.gethostname(),
            "os": platform.platform(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "http-header-user-agent": fopts.user_agent,
            "description": f"Evidence capture of {url}",
        }
        resources = [(f"urn:{name}:{final.url}", media, data)
                     for name, _f, data, media in (rendered.artifacts if rendered else [])]
        with warc_fh:
            written = write_capture_warc(warc_fh, filename="capture.warc.gz", warcinfo=warcinfo,
                                         hops=result.hops + [h for r in extra for h in r.hops], text=text_bytes,
                                         captured_at=captured, main_hops=len(result.hops), resources=resources,
                                         main_text=main_bytes)
        steps.append(StepOutcome("warc", "ok", "WARC/1.1, sha256 digests"))

        # Step 6: blobs. From here on nothing is visible until the catalog commit.
        warc_sha, warc_size = archive.blobs.adopt(warc_path, written.sha256)
        content_sha2, _ = archive.blobs.adopt(content_path, content_sha)
        artifacts = [Artifact("warc", warc_sha, warc_size, "application/warc", file="capture.warc.gz"),
                     Artifact("content", content_sha2, content_size, media_type)]
        text_sha: str | None = None
        if text_bytes is not None:
            text_sha = archive.blobs.put_bytes(text_bytes)
            artifacts.append(Artifact("text", text_sha, len(text_bytes), "text/plain; charset=utf-8"))
        if main_bytes is not None:
            artifacts.append(Artifact("main-text", archive.blobs.put_bytes(main_bytes), len(main_bytes),
                                      MAIN_TEXT_TYPE))
        for name, fname, data, media in (rendered.artifacts if rendered else []):
            artifacts.append(Artifact(name, archive.blobs.put_bytes(data), len(data), media, file=fname))
        pem = chain_pem(final)
        if pem:
            pem_sha = archive.blobs.put_bytes(pem.encode("ascii"))
            artifacts.append(Artifact("tls-chain", pem_sha, len(pem), "application/x-pem-file"))
        steps.append(StepOutcome("blobs", "ok", f"{len(artifacts)} artifact(s) stored"))

        meta = hop_metadata(final, len(result.hops) - 1)
        tls = None
        if meta["tls"]:
            tls = TLSInfo(version=meta["tls"]["version"], cipher=meta["tls"]["cipher"],
                          peer_cert_sha256=meta["tls"]["peer_cert_sha256"],
                          peer_chain_sha256=meta["tls"]["peer_chain_pem_sha256"], verified=not opts.insecure)
        length = final.header("Content-Length")
        http = HTTPInfo(status=final.status, reason=final.reason, date=final.header("Date"),
                        last_modified=final.header("Last-Modified"), etag=final.header("ETag"),
                        content_type=content_type, content_encoding=final.header("Content-Encoding"),
                        transfer_encoding=final.header("Transfer-Encoding"),
                        content_length=int(length) if length and length.isdigit() else None,
                        server_ip=final.conn.server_ip, tls=tls)
        manifest = Manifest(
            record_id=record_id,
            subject=Subject(url=url, final_url=final.url, redirects=tuple(h.url for h in result.hops[1:]),
                            entity=opts.entity, document=opts.document,
                            title=extracted.title if extracted else None,
                            document_date=extracted.document_date if extracted else None),
            captured_at=_iso(captured), http=http, artifacts=tuple(artifacts),
            digests=Digests(content_sha256=content_sha, payload_sha256=final.payload_sha256,
                            payload_sha1_b32=sha1_b32(final.payload_sha1), text_sha256=text_sha,
                            payload_sha1_b32_chunked=sha1_b32(final.body_as_sent_sha1)
                            if final.body_as_sent_sha1 is not None else None),
            tool=_tool(),
            capture=CaptureInfo(user_agent=rendered.browser.user_agent if rendered else fopts.user_agent,
                                insecure=opts.insecure, allow_status=opts.allow_status,
                                allow_private=fopts.allow_private, steps=tuple(steps),
                                browser=rendered.browser if rendered else None, main_text=main_info),
            operator=operator,
        )

        def build(previous: PreviousRef | None) -> tuple[Manifest, bytes]:
            return sign_manifest_file(dataclasses.replace(manifest, previous=previous), signing_key)
        return archive.commit_record(url, build, actor=actor, job_key=opts.job_key)
    finally:
        result.cleanup()
        for r in extra:
            r.cleanup()
        for p in temps:
            p.unlink(missing_ok=True)


def _main_text(opts: CaptureOptions, content_path: Path, media_type: str, content_type: str | None, size: int,
               max_text: int, base_url: str, steps: list[StepOutcome]) -> tuple[bytes | None, MainTextInfo | None]:
    """The document's own text: by its declared rules, or found automatically when asked (HTML, PDF)."""
    if not opts.select and not opts.main_content:
        return None, None
    kind = sniff_kind(_head(content_path), media_type)
    if kind not in ("html", "pdf") or size > max_text:
        steps.append(StepOutcome("main-text", "skipped", f"main-text is made from HTML or PDF, not {media_type}"
                                 if kind not in ("html", "pdf") else "decoded body is over capture.max_text_bytes"))
        return None, None
    try:
        text, info = main_text_of(content_path.read_bytes(), select=opts.select, remove=opts.remove,
                                  base_url=base_url, content_type=content_type, kind=kind)
    except ArchiverError as exc:
        steps.append(StepOutcome("main-text", "failed", exc.message))
        return None, None
    how = "declared rules" if info.method == "declared" else "found automatically"
    steps.append(StepOutcome("main-text", "ok" if text.strip() else "failed",
                             f"{how}, {len(text):,} characters" if text.strip()
                             else f"{how}: nothing left (the select rules matched nothing, or the page is empty)"))
    return (text.encode("utf-8"), info) if text.strip() else (None, None)


def main_text_of(data: bytes, *, select: tuple[str, ...], remove: tuple[str, ...], base_url: str,
                 content_type: str | None, kind: str = "html") -> tuple[str, MainTextInfo]:
    """One document's main-text and the rules that made it: shared by capture and ``derive`` (so a
    record derived later is made exactly as a new capture would be). CSS rules apply to HTML only."""
    import json

    from archiver.capture.maintext import (
        AUTOMATIC_EXTRACTOR,
        DECLARED_EXTRACTOR,
        PDF_EXTRACTOR,
        automatic_text,
        declared_text,
        pdf_main_text,
    )

    if kind == "pdf":
        return pdf_main_text(data), MainTextInfo(method="automatic", extractor=PDF_EXTRACTOR)
    if not select:
        return (automatic_text(data, base_url=base_url, content_type=content_type),
                MainTextInfo(method="automatic", extractor=AUTOMATIC_EXTRACTOR))

    def rule(r: str) -> str | dict[str, str]:
        return json.loads(r) if r.startswith("{") else r  # a range rule travels as its JSON

    text = declared_text(data, select=[rule(r) for r in select], remove=[rule(r) for r in remove],
                         base_url=base_url, content_type=content_type)
    return text, MainTextInfo(method="declared", select=select, remove=remove, extractor=DECLARED_EXTRACTOR)


def _head(path: Path, n: int = 1024) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
