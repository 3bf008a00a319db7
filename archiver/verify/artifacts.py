"""The byte-level checks of one record, from bytes alone (a store blob or a bundle member): the
WARC record by record, an RFC 3161 token, a derived text. ``checks.run_suite`` calls them for every
evidence source; ``warc_checks`` also restores the content on import."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from archiver.decode import decode_stream
from archiver.errors import ArchiverError, IntegrityError, StoreUnavailableError
from archiver.records import Category, Check, DerivedText, Manifest, Status, TimestampEvidence

if TYPE_CHECKING:
    from cryptography import x509

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIPPED
INTEGRITY, TRUST, COMPLETENESS = Category.INTEGRITY, Category.TRUST, Category.COMPLETENESS


@dataclass(frozen=True, slots=True)
class Absent:
    """Why bytes a record names cannot be had from an evidence source: not there at all
    (completeness) or there but not the bytes named (integrity). ``why`` completes a sentence."""

    category: Category
    why: str


def _present(data: bytes | Absent | None, what: str) -> tuple[bytes | None, Category, str]:
    """Bytes, or None with the category and words of their absence (None: "missing or altered")."""
    if isinstance(data, Absent):
        return None, data.category, f"{what} {data.why}"
    if data is None:
        return None, INTEGRITY, f"{what} is missing or altered"
    return data, INTEGRITY, ""


class _HashSink:
    def __init__(self, tee: BinaryIO | None = None) -> None:
        self.h = hashlib.sha256()
        self.tee = tee

    def write(self, data: bytes) -> int:
        self.h.update(data)
        if self.tee is not None:
            self.tee.write(data)
        return len(data)

    def flush(self) -> None:
        return None


class _HashingReader:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.h = hashlib.sha256()
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.h.update(data)
        self.n += len(data)
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@dataclass(frozen=True, slots=True)
class WarcLimits:
    """How much a WARC may cost before verification refuses it (``verify.max_record_bytes``,
    ``verify.max_warc_bytes``, ``verify.max_warc_records``). A record's block size is declared in its
    header and checked before any byte of it is read, so a 200 kB gzip member that would inflate to
    64 GiB costs nothing; what lies outside the blocks (headers, the blank lines between records) is
    bounded as warcio reads it (``records``), and a record's headers count towards the WARC's bytes."""

    max_record: int = 1 << 30
    max_total: int = 4 << 30
    #: told each record's size (declared block and headers) as it is met: a bundle charges it to its
    #: whole budget (``verify.max_bundle_bytes``), since every record of a bundle may name the same WARC
    charge: Callable[[int], None] | None = field(default=None, compare=False)
    #: a record costs warcio ~20 us however small: 1.8 M empty records (200 kB in a bundle) took 45 s
    max_records: int = 100_000


class WarcRefused(IntegrityError):
    """A WARC is over one of the caps of ``WarcLimits``, or its bytes between records are not the
    blank lines a record ends with: reading it further would cost what no genuine WARC costs."""


#: what may follow a record's declared block in its gzip member (or before the next record): a genuine
#: record ends with exactly ``\r\n\r\n``; a little slack for a writer that adds a blank line
MAX_SEPARATOR = 32
#: a record's headers (WARC and HTTP) and the blank lines before it, which warcio reads line by line
#: (a line it cannot end would be joined in memory a block at a time): a genuine record's are a few kB
MAX_HEAD_BYTES = 1 << 20


def warc_iterator(fh: BinaryIO, *, check_digests: bool = False) -> Any:
    """warcio's ``ArchiveIterator`` over ``fh`` (64 kB of compressed input at a time), reading through a
    reader whose lines stop at ``MAX_HEAD_BYTES`` per record and refusing more than ``MAX_SEPARATOR``
    bytes after a block. Walk it with ``records``, which charges and counts; ``read_to_end`` and
    ``member_info`` work as on warcio's own (a CDXJ check needs each record's offset and length)."""
    return _bounded_iterator()(fh, check_digests=check_digests, block_size=1 << 16)


def records(it: Any, limits: WarcLimits) -> Iterator[Any]:
    """The records of ``warc_iterator``, bounded: each record's declared block against ``max_record``
    before it is inflated, the blocks and headers together against ``max_total`` (and the bundle's
    budget, ``limits.charge``), the count against ``max_records``. Raises ``WarcRefused`` naming the
    setting, or warcio's own errors (any exception) for a WARC it cannot parse."""
    reader = it.reader
    count = total = 0
    for record in it:
        count += 1
        declared = int(record.length or 0)
        head = MAX_HEAD_BYTES - reader.head_left  # this record's headers and the separator before it
        reader.head_left = MAX_HEAD_BYTES
        total += declared + head
        if count > limits.max_records:
            raise WarcRefused(f"the WARC has over {limits.max_records:,} records, over verify.max_warc_records "
                              "(raise the setting only for a WARC you expect to hold that many)")
        if declared > limits.max_record or total > limits.max_total:
            over = (f"declares a {declared:,}-byte block, over verify.max_record_bytes ({limits.max_record:,})"
                    if declared > limits.max_record else
                    f"brings the WARC to {total:,} bytes, over verify.max_warc_bytes ({limits.max_total:,})")
            raise WarcRefused(f"record {count} ({_shown(str(record.rec_type))}) {over}: refused before inflating "
                              "it (raise the setting only for a bundle you expect to be that large)")
        if limits.charge is not None:
            limits.charge(declared + head)  # raises when the bundle's budget is spent
        yield record


_BOUNDED: list[Any] = []


def _bounded_iterator() -> Any:
    """warcio's ``ArchiveIterator`` reading through a reader whose every line is bounded, and that
    refuses bytes after a record's block instead of reading them line by line (warcio would join a
    line of 96 MiB a block at a time, or loop once per byte of 150 MiB of newlines, uncounted)."""
    if _BOUNDED:
        return _BOUNDED[0]
    from warcio.archiveiterator import ArchiveIterator
    from warcio.bufferedreaders import DecompressingBufferedReader
    from warcio.exceptions import ArchiveLoadFailed

    class Reader(DecompressingBufferedReader):  # type: ignore[misc]
        head_left = MAX_HEAD_BYTES

        def readline(self, length: int | None = None) -> bytes:
            want = self.head_left + 1 if length is None else min(length, self.head_left + 1)
            line: bytes = super().readline(want)
            self.head_left -= len(line)
            if self.head_left < 0:
                raise WarcRefused(f"a record's headers run past {MAX_HEAD_BYTES:,} bytes: refused")
            return line

        def _decompress(self, data: bytes) -> bytes:
            if self.decompressor is not None and data and self.num_block_read:
                try:  # warcio writes the error to stderr and carries on with nothing; the library never prints
                    out: bytes = self.decompressor.decompress(data)
                    return out
                except Exception as exc:
                    raise ArchiveLoadFailed(f"corrupt gzip member: {exc}") from exc
            return cast(bytes, super()._decompress(data))

    class Iterator_(ArchiveIterator):  # type: ignore[misc]
        def __init__(self, fh: BinaryIO, **kw: Any) -> None:
            super().__init__(fh, **kw)
            self.reader = Reader(self.fh, block_size=kw["block_size"])  # nothing read yet

        def _consume_blanklines(self) -> tuple[bytes | None, int]:
            empty = 0
            while True:
                line: bytes = self.reader.readline(4096)
                if not line:
                    return None, empty
                if line.rstrip():
                    if empty == 0:
                        raise WarcRefused("bytes follow a record's declared block where only the blank lines "
                                          "that end it may be (a wrong Content-Length, or bytes appended)")
                    return line, empty  # the next record's first line (an uncompressed WARC)
                empty += len(line)
                if empty > MAX_SEPARATOR:
                    raise WarcRefused(f"over {MAX_SEPARATOR} bytes of blank lines after a record's block")

    _BOUNDED.append(Iterator_)
    return Iterator_


def _shown(text: str) -> str:
    """Text from a WARC or warcio's error about it, one printable ASCII line."""
    return "".join(c if c.isprintable() and ord(c) < 127 else "?" for c in text)[:120]


def warc_checks(open_warc: Callable[[], AbstractContextManager[BinaryIO]], manifest: Manifest,
                content_out: BinaryIO | None = None, limits: WarcLimits = WarcLimits()) -> list[Check]:
    """Every WARC record's digests, the final payload's digest, and that decoding it gives the
    content artifact (written to ``content_out`` too, so an import can restore it). Works on any
    byte source: a store blob or a member of a bundle."""
    _fast_inflate()
    problems: list[str] = []
    count = 0
    final_payload: str | None = None
    page_payloads: list[str] = []  # every response for the page's URL: a replay shows the one its index names
    derived: str | None = None
    text_digest: str | None = None
    main_digest: str | None = None
    content = manifest.artifact("content")
    enc = manifest.http.content_encoding
    try:
        with open_warc() as fh:
            # 64 kB of compressed input at a time: zlib inflates a whole read at once, and 1 MB of a gzip
            # bomb is ~1 GB inflated; 64 kB bounds that to ~64 MB whatever the bundle
            for record in records(warc_iterator(fh, check_digests=True), limits):
                count += 1
                rtype = record.rec_type
                uri = record.rec_headers.get_header("WARC-Target-URI")
                if rtype == "response" and uri == manifest.subject.final_url:
                    final_payload = record.rec_headers.get_header("WARC-Payload-Digest")
                    page_payloads.append(str(final_payload))
                    # a plain capture records the page once; a browser capture may fetch its own URL
                    # again (a script's request), so there the signed index alone says which one counts
                    if len(set(page_payloads)) > 1 and manifest.capture.browser is None:
                        problems.append(f"record {count}: a second, different response for the page URL "
                                        f"{uri} ({len(set(page_payloads))} payloads): a replay or another reader "
                                        "may show one other than the one verified")
                    if content_out is None and content is not None and not enc and not manifest.http.transfer_encoding \
                            and final_payload == f"sha256:{content.sha256}":
                        # identity body: the content IS the payload, whose digest warcio checks below
                        # as it reads; hashing it a second time would prove nothing more
                        derived = content.sha256
                        _drain(record.raw_stream)
                        checker: Any = record.digest_checker
                        if checker.passed is False:
                            problems.append(f"record {count} ({rtype} {uri or ''}): {'; '.join(checker.problems)}")
                        continue
                    sink = _HashSink(content_out)
                    try:
                        cap = max(content.size if content else 0, 1) + 1
                        decode_stream(record.raw_stream, cast(BinaryIO, sink), enc, cap)
                        derived = sink.h.hexdigest()
                    except StoreUnavailableError:
                        raise  # the backend failed mid-read: no verdict (exit 4), not "undecodable"
                    except ArchiverError as exc:
                        derived = f"undecodable: {exc.message}"
                elif rtype == "conversion":
                    h = hashlib.sha256()
                    stream = record.content_stream()
                    while chunk := stream.read(1 << 20):  # streamed: never the whole record in memory
                        h.update(chunk)
                    digest = h.hexdigest()
                    if (record.rec_headers.get_header("Content-Type") or "").startswith("text/markdown"):
                        main_digest = digest
                    else:
                        text_digest = digest
                else:
                    _drain(record.content_stream())
                _drain(record.raw_stream)
                checker = record.digest_checker
                if checker.passed is False:
                    problems.append(f"record {count} ({rtype} {uri or ''}): {'; '.join(checker.problems)}")
    except WarcRefused as exc:
        problems.append(exc.message)
    except ArchiverError:
        raise  # no verdict on this WARC: the backend failed (exit 4), or the bundle's budget is spent
    except Exception as exc:  # warcio raises what its parsing meets (AttributeError, TypeError, ...)
        problems.append(f"WARC unreadable after {count} record(s): {_shown(str(exc) or type(exc).__name__)}")
    out = [Check("warc.records", FAIL if problems or count == 0 else PASS, INTEGRITY,
                 "; ".join(problems) if problems else f"{count} records, all block/payload digests match")]
    expected = f"sha256:{manifest.digests.payload_sha256}"
    if final_payload is None:
        out.append(Check("warc.payload", FAIL, INTEGRITY, f"no response record for {manifest.subject.final_url}"))
    elif final_payload != expected:
        out.append(Check("warc.payload", FAIL, INTEGRITY,
                         f"WARC payload digest {final_payload} != manifest {expected}"))
    else:
        out.append(Check("warc.payload", PASS, INTEGRITY, expected))
    if content is None:
        out.append(Check("content.derivation", SKIP, COMPLETENESS, "no content artifact"))
    elif derived == content.sha256:
        out.append(Check("content.derivation", PASS, INTEGRITY, "decoding the WARC payload gives the content artifact"))
    else:
        out.append(Check("content.derivation", FAIL, INTEGRITY,
                         f"decoding the WARC payload gives {derived or 'nothing'}, content is sha256:{content.sha256}"))
    text = manifest.artifact("text")
    if text is not None:
        if text_digest == text.sha256:
            out.append(Check("warc.text", PASS, INTEGRITY, "the WARC conversion record holds the text artifact"))
        else:
            out.append(Check("warc.text", FAIL, INTEGRITY, "the WARC conversion record differs from the text artifact"))
    main = manifest.artifact("main-text")
    if main is not None:
        if main_digest == main.sha256:
            out.append(Check("warc.main-text", PASS, INTEGRITY,
                             "the WARC conversion record holds the main-text artifact"))
        else:
            out.append(Check("warc.main-text", FAIL, INTEGRITY,
                             "the WARC conversion record differs from the main-text artifact"))
    return out


def _fast_inflate() -> None:
    """Let warcio inflate gzip members with ISA-L (about twice zlib's speed); same bytes out."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency
        return
    from warcio.bufferedreaders import BufferedReader

    BufferedReader.DECOMPRESSORS["gzip"] = lambda: isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)


def _drain(stream: Any) -> None:
    while stream.read(1 << 20):
        pass


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _fmt_delta(seconds: float) -> str:
    s = abs(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def token_checks(prefix: str, ev: TimestampEvidence, *, manifest_sha256: str, captured_at: str,
                 token: bytes | Absent | None, stored_chain: bytes | Absent | None,
                 anchors: list[x509.Certificate], tolerance: float, deferred: bool) -> list[Check]:
    """Checks of one RFC 3161 token from bytes alone, so a bundle verifier can run them too. Whether
    the TSA is trusted (``.tsa``) is a trust question only when the token verifies against its own
    chain: a token that does not verify at all is an integrity failure."""
    from archiver.provenance import merkle, tsp

    checks: list[Check] = []
    # What the token must stamp: the manifest itself, or the batch root its proof leads to.
    if ev.merkle is None:
        expected = bytes.fromhex(manifest_sha256)
    else:
        mk = ev.merkle
        ok = merkle.verify_inclusion(bytes.fromhex(manifest_sha256), mk.leaf_index, mk.tree_size,
                                     [bytes.fromhex(p) for p in mk.path], bytes.fromhex(mk.root))
        checks.append(Check(f"{prefix}.merkle", PASS if ok else FAIL, INTEGRITY,
                            f"manifest is leaf {mk.leaf_index + 1} of {mk.tree_size} under root {mk.root[:16]}…"
                            if ok else "inclusion proof does not lead from this manifest to the batch root"))
        expected = hashlib.sha256(bytes.fromhex(mk.root)).digest()
    stored_chain, cat, gone = _present(stored_chain, f"the TSA chain the addendum names (sha256:"
                                                     f"{ev.chain_sha256[:16]}…)")
    if stored_chain is None or hashlib.sha256(stored_chain).hexdigest() != ev.chain_sha256:
        checks.append(Check(f"{prefix}.chain", FAIL, cat, gone or f"the TSA chain the addendum names (sha256:"
                                                                  f"{ev.chain_sha256[:16]}…) is altered"))
    else:
        checks.append(Check(f"{prefix}.chain", PASS, INTEGRITY, f"sha256:{ev.chain_sha256}"))
    token, cat, gone = _present(token, f"token sha256:{ev.token_sha256}")
    if token is None:
        checks.append(Check(f"{prefix}.token", FAIL, cat, gone))
        return checks
    # The signed addendum names the token's sha256: this binds even the bytes CMS leaves unsigned.
    problems = [] if hashlib.sha256(token).hexdigest() == ev.token_sha256 else \
        [f"token bytes are not the sha256:{ev.token_sha256[:16]}… the addendum names"]
    try:
        resp = tsp.parse_response(token)
    except ArchiverError as exc:
        checks.append(Check(f"{prefix}.token", FAIL, INTEGRITY, "; ".join([*problems, exc.message])))
        return checks
    if resp.status != 0:
        checks.append(Check(f"{prefix}.token", FAIL, INTEGRITY, "; ".join([*problems, f"token status is {resp.status}, "
                                                                "not granted"])))
        return checks
    info = tsp.info(resp)
    if bytes.fromhex(info.imprint_hex) != expected:
        problems.append(f"token stamps {info.imprint_hex}, not this record's "
                        f"{'batch root' if ev.merkle else 'manifest'} ({expected.hex()})")
        checks.append(Check(f"{prefix}.token", FAIL, INTEGRITY, "; ".join(problems)))
        return checks
    checks.append(Check(f"{prefix}.token", FAIL if problems else PASS, INTEGRITY,
                        "; ".join(problems) or f"imprint {info.imprint_hex[:16]}…, serial {info.serial}"))

    why = tsp.verify_against(resp, expected, anchors) if anchors else "no TSA trust anchors configured (tsa.certs)"
    if why is None:
        checks.append(Check(f"{prefix}.tsa", PASS, TRUST, f"{info.tsa_name}: signature, chain to tsa.certs at "
                            "genTime, critical timeStamping EKU"))
    else:
        own = tsp.load_certs(stored_chain) if stored_chain else []
        intact = own and tsp.verify_against(resp, expected, own) is None
        if intact:
            checks.append(Check(f"{prefix}.tsa", FAIL, TRUST, f"token is intact but its TSA ({info.tsa_name}) is not "
                                f"trusted here: {why}; add its CA with `archiver config set tsa.certs FILE`"))
        elif not anchors and not any(c.issuer == c.subject for c in own):
            checks.append(Check(f"{prefix}.tsa", FAIL, TRUST, f"TSA ({info.tsa_name}) is not trusted here: {why}; its "
                                "signature cannot be checked without its CA certificate"))
        else:
            checks.append(Check(f"{prefix}.tsa", FAIL, INTEGRITY, f"token does not verify: {why}"))

    gen = info.gen_time
    try:
        delta = (gen - _parse_time(captured_at)).total_seconds()
    except ValueError:
        checks.append(Check(f"{prefix}.time", FAIL, INTEGRITY, f"captured_at {captured_at!r} is not a time"))
        return checks
    when = f"genTime {gen.isoformat().replace('+00:00', 'Z')}"
    if delta < -60:
        checks.append(Check(f"{prefix}.time", FAIL, INTEGRITY, f"{when} is {_fmt_delta(delta)} BEFORE captured_at: "
                            "the capture clock was ahead or captured_at is wrong"))
    elif delta <= tolerance:
        checks.append(Check(f"{prefix}.time", PASS, INTEGRITY, f"{when}, {_fmt_delta(delta)} after captured_at "
                            f"(tolerance {_fmt_delta(tolerance)})"))
    elif deferred:
        checks.append(Check(f"{prefix}.time", PASS, INTEGRITY, f"{when}, {_fmt_delta(delta)} after captured_at: "
                            "a deferred stamp, proving the record existed by genTime (not at captured_at)"))
    else:
        checks.append(Check(f"{prefix}.time", FAIL, INTEGRITY, f"{when} is {_fmt_delta(delta)} after captured_at, "
                            f"beyond the tolerance of {_fmt_delta(tolerance)}"))
    return checks


def derived_checks(prefix: str, derived: DerivedText, manifest: Manifest, data: bytes | Absent | None,
                   source: bytes | None) -> list[Check]:
    """A derived artifact's bytes are the ones its addendum names, and making it again from the
    record's content with the same rules gives the same bytes (when this version has those rules)."""
    present, cat, why = _present(data, f"the derived {derived.name}")
    got = hashlib.sha256(present).hexdigest() if present is not None else None
    out = [Check(f"{prefix}.{derived.name}", PASS if got == derived.sha256 else FAIL,
                 cat if present is None else INTEGRITY,
                 f"sha256:{derived.sha256}" if got == derived.sha256 else why or "altered")]
    content = manifest.artifact("content")
    if content is None or derived.source_sha256 != content.sha256:
        out.append(Check(f"{prefix}.derivation", FAIL, INTEGRITY,
                         "derived from something that is not this record's content"))
        return out
    from archiver.capture import main_text_of
    from archiver.capture.maintext import CURRENT_EXTRACTORS, PDF_EXTRACTOR

    info = derived.main_text
    kind = "pdf" if info.extractor == PDF_EXTRACTOR else "html"  # the recorded rules say how it was made
    if info.extractor not in CURRENT_EXTRACTORS:
        have = ", ".join(sorted(CURRENT_EXTRACTORS))
        out.append(Check(f"{prefix}.derivation", SKIP, INTEGRITY, f"made by {info.extractor}, which this version "
                                                                  f"does not have ({have})"))
    elif source is None or hashlib.sha256(source).hexdigest() != content.sha256:
        out.append(Check(f"{prefix}.derivation", SKIP, COMPLETENESS, "the content is not available to derive it again"))
    else:
        again, _ = main_text_of(source, select=info.select, remove=info.remove, base_url=manifest.subject.final_url,
                                content_type=manifest.http.content_type, kind=kind)
        same = hashlib.sha256(again.encode("utf-8")).hexdigest() == derived.sha256
        out.append(Check(f"{prefix}.derivation", PASS if same else FAIL, INTEGRITY,
                         f"{info.method} rules on the content give the same {derived.name}" if same
                         else f"{info.method} rules on the content give a different {derived.name}"))
    return out
