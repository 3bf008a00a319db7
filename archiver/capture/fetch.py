"""Fetch a URL hop by hop, keeping each request/response exchange byte-exact on disk.

Redirects are followed here, not by requests, so every hop is re-validated (scheme, SSRF
guard) and becomes its own request/response pair in the WARC.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from archiver.capture.net import CaptureState, ConnInfo, HopRecorder, is_interim, recording_session
from archiver.errors import (
    DISK_ERRNOS,
    ArchiverError,
    BodyTooLargeError,
    CaptureError,
    CaptureTimeoutError,
    ConnectError,
    InvalidURLError,
    NetworkError,
    RedirectLoopError,
    TLSError,
    TooManyRedirectsError,
    UnsupportedSchemeError,
    store_write_error,
)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK = 65536


def validate_url(url: str) -> str:
    """Refuse what we cannot or must not capture, before any connection is made."""
    text = url.strip()
    if not text:
        raise InvalidURLError("empty URL")
    if any(c.isspace() for c in text) or any(ord(c) < 32 for c in text):
        raise InvalidURLError(f"malformed URL {url!r}: contains whitespace or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"malformed URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURLError(f"malformed URL {url!r}: no scheme", hint="write it as https://…")
    if scheme not in ("http", "https"):
        raise UnsupportedSchemeError(f"unsupported scheme {scheme!r} in {url!r}")
    if not parts.hostname:
        raise InvalidURLError(f"malformed URL {url!r}: no host")
    if port == 0:
        raise InvalidURLError(f"malformed URL {url!r}: port 0")
    return text


@dataclass(slots=True)
class FetchOptions:
    user_agent: str
    timeout: float = 30.0
    deadline: float = 300.0
    max_bytes: int = 200_000_000
    max_redirects: int = 10
    allow_private: bool = False
    insecure: bool = False
    ca_bundle: str | None = None


@dataclass(slots=True)
class Hop:
    """One exchange. ``wire_sha256`` covers every byte received; ``body_path`` holds the entity body
    with any transfer-encoding removed (content-encoding kept), i.e. the WARC payload."""

    url: str
    request_bytes: bytes
    wire_sha256: str
    wire_size: int
    body_path: Path
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    conn: ConnInfo
    payload_sha256: str
    payload_sha1: bytes
    payload_size: int
    started: float
    finished: float
    block_head: bytes  # the WARC response block's head: the final status line and headers as received
    block_sha256: str  # of block_head + payload: the WARC-Block-Digest, taken in the same pass
    body_as_sent_sha1: bytes | None  # chunked only: SHA-1 of the body with its chunk framing (heritrix3's
    # CDX digest over HTTP/1.1, heritrix3 issue #769)

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    @property
    def chunked(self) -> bool:
        return is_chunked(self.headers)


@dataclass(slots=True)
class FetchResult:
    hops: list[Hop] = field(default_factory=list)

    @property
    def final(self) -> Hop:
        return self.hops[-1]

    def cleanup(self) -> None:
        for hop in self.hops:
            hop.body_path.unlink(missing_ok=True)


TempFactory = Callable[[str], tuple[BinaryIO, Path]]


def _map_requests_error(exc: requests.RequestException, url: str) -> ArchiverError:
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSError(f"TLS failure for {url}: {_short(text)}")
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ReadTimeout):
        return CaptureTimeoutError(f"timed out fetching {url}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "timed out" in text.lower():
            return CaptureTimeoutError(f"timed out fetching {url}")
        return ConnectError(f"cannot connect to {url}: {_short(text)}")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return InvalidURLError(f"malformed URL {url!r}: {_short(text)}")
    return NetworkError(f"fetching {url} failed: {_short(text)}")


def _short(text: str) -> str:
    for marker in ("Caused by ", "(Caused by"):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip(" ()'\"")[:300]


def _request_headers(user_agent: str) -> dict[str, str]:
    return {
        "User-Agent": user_agent,
        "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.8",
        "Accept-Encoding": "gzip, deflate, br",
        "Accept-Language": "en;q=0.9, *;q=0.5",
    }


def fetch(url: str, opts: FetchOptions, make_temp: TempFactory) -> FetchResult:
    """Fetch ``url`` and every redirect after it. ``make_temp(suffix)`` returns ``(file, path)`` for
    spooling bytes to disk. On error every temp file made here is removed before raising."""
    state = CaptureState(deadline=time.monotonic() + opts.deadline, read_timeout=opts.timeout,
                         max_wire_bytes=opts.max_bytes + (1 << 20), allow_private=opts.allow_private,
                         verify_tls=not opts.insecure)
    verify: bool | str = False if opts.insecure else (opts.ca_bundle or True)
    result = FetchResult()
    seen: set[str] = set()
    current = validate_url(url)
    session = recording_session(state)
    try:
        for _ in range(opts.max_redirects + 1):
            if current in seen:
                raise RedirectLoopError(f"redirect loop: {current} was already visited")
            seen.add(current)
            result.hops.append(_one_hop(session, current, opts, state, verify, make_temp))
            hop = result.hops[-1]
            location = hop.header("Location")
            if hop.status in REDIRECT_STATUSES and location:
                current = validate_url(urljoin(current, location.strip()))
                continue
            return result
        raise TooManyRedirectsError(
            f"more than {opts.max_redirects} redirects starting from {url}")
    except BaseException:
        result.cleanup()
        raise
    finally:
        session.close()


def _one_hop(session: requests.Session, url: str, opts: FetchOptions, state: CaptureState,
             verify: bool | str, make_temp: TempFactory) -> Hop:
    body_fh, body_path = make_temp(".body")
    rec = HopRecorder()
    state.current = rec
    started = time.time()
    try:
        with body_fh:
            try:
                timeout = (min(opts.timeout, max(0.05, state.remaining())), opts.timeout)
                with warnings.catch_warnings():
                    # --insecure is recorded in the manifest; urllib3's warning would only repeat it
                    if opts.insecure:
                        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                    resp = session.get(url, headers=_request_headers(opts.user_agent), stream=True,
                                       allow_redirects=False, timeout=timeout, verify=verify)
                with contextlib.closing(resp):
                    raw = resp.raw
                    orig = getattr(raw, "_original_response", None)
                    headers = list(orig.msg.items()) if orig is not None else list(resp.headers.items())
                    # the head is in: the WARC block is digested in the body's pass, and a chunked
                    # body as sent from what follows the head
                    received, rec.head = bytes(rec.head or b""), None
                    start, head = response_head_span(received)
                    chunked = is_chunked(headers)
                    block_head = warc_block_head(head, chunked)
                    block = hashlib.sha256(block_head)
                    if chunked:
                        rec.as_sent = hashlib.sha1(received[start + len(head):])  # noqa: S324 - CDX format
                    payload = _read_body(resp, body_fh, opts, state, url, block)
                    version = "HTTP/1.0" if getattr(orig, "version", 11) == 10 else "HTTP/1.1"
                    status, reason = resp.status_code, resp.reason or ""
            except ArchiverError:
                raise
            except requests.RequestException as exc:
                raise _map_requests_error(exc, url) from exc
            except urllib3.exceptions.ReadTimeoutError as exc:
                raise CaptureTimeoutError(f"timed out reading the body of {url}") from exc
            except urllib3.exceptions.HTTPError as exc:
                raise NetworkError(f"fetching {url} failed: {_short(str(exc))}") from exc
            except OSError as exc:
                if exc.errno in DISK_ERRNOS:  # the local side: never a network failure
                    raise store_write_error(exc, f"storing the response from {url}") from exc
                raise NetworkError(f"fetching {url} failed: {exc}") from exc
        state.current = None
        if rec.conn is None:
            raise NetworkError(f"no connection information was recorded for {url}")
        return Hop(url=url, request_bytes=bytes(rec.sent),
                   wire_sha256=rec.wire_hash.hexdigest(), wire_size=rec.received, body_path=body_path,
                   status=status, reason=reason, version=version, headers=headers, conn=rec.conn,
                   payload_sha256=payload[0], payload_sha1=payload[1], payload_size=payload[2],
                   started=started, finished=time.time(), block_head=block_head,
                   block_sha256=block.hexdigest(), body_as_sent_sha1=rec.as_sent.digest() if chunked else None)
    except BaseException:
        body_path.unlink(missing_ok=True)
        raise


def _read_body(resp: requests.Response, out: BinaryIO, opts: FetchOptions, state: CaptureState,
               url: str, block: Any) -> tuple[str, bytes, int]:
    """Spool the body, with its payload digests and ``block`` (the WARC block digest) in one pass."""
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > opts.max_bytes:
        raise BodyTooLargeError(
            f"{url} declares {int(declared):,} bytes, over the size cap of {opts.max_bytes:,}")
    h256, h1, size = hashlib.sha256(), hashlib.sha1(usedforsecurity=False), 0
    for chunk in resp.raw.stream(CHUNK, decode_content=False):
        state.check_deadline("receiving the body")
        size += len(chunk)
        if size > opts.max_bytes:
            raise BodyTooLargeError(f"{url} sent more than the size cap of {opts.max_bytes:,} bytes")
        h256.update(chunk)
        h1.update(chunk)
        block.update(chunk)
        out.write(chunk)
    out.flush()
    return h256.hexdigest(), h1.digest(), size


_TE_LINE = re.compile(rb"^transfer-encoding(?=\s*:)", re.I | re.M)


def is_chunked(headers: list[tuple[str, str]]) -> bool:
    return any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)


def warc_block_head(head: bytes, chunked: bool) -> bytes:
    """The head of a WARC response block: as received, except that a chunked response's
    Transfer-Encoding header is renamed, since the stored payload has its chunk framing removed."""
    return _TE_LINE.sub(b"X-Archiver-Transfer-Encoding", head, count=1) if chunked else head


def response_head_span(data: bytes) -> tuple[int, bytes]:
    """(offset, bytes) in ``data`` (the start of a response as received) of the final status line and
    header block: past the interim (1xx) responses ``net.FinalResponse`` passes over, each header block
    ending at its first empty line (CRLF or a bare LF, as http.client reads it)."""
    pos = 0
    while True:
        end = _head_end(data, pos)
        block = data[pos:end]
        status = block.split(b"\n", 1)[0].split(None, 2)[1:2]
        if status and len(status[0]) == 3 and status[0].isdigit() and is_interim(int(status[0])):
            pos = end
            continue
        return pos, block


def _head_end(data: bytes, pos: int) -> int:
    """Where the header block starting at ``pos`` ends (after its empty line)."""
    line_start = data.find(b"\n", pos) + 1  # the status line is never the empty line
    while line_start > 0:
        nl = data.find(b"\n", line_start)
        if nl < 0:
            break
        if nl == line_start or (nl == line_start + 1 and data[line_start] == 0x0D):
            return nl + 1
        line_start = nl + 1
    raise CaptureError("the response headers were not received completely")
