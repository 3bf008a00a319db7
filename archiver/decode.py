"""Content-decoding (gzip, deflate, br) with a cap on decoded size, streamed file to file.

The cap is checked as output is produced, never after, so a decompression bomb costs at most
``max_decoded`` bytes of disk and one buffer of memory.
"""

from __future__ import annotations

import hashlib
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from archiver.errors import CaptureError, DecompressionBombError

CHUNK = 65536
OUT_LIMIT = 1 << 20


class _Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def finish(self) -> Iterator[bytes]: ...


def _looks_zlib(first: bytes) -> bool:
    return len(first) >= 2 and (first[0] & 0x0F) == 8 and ((first[0] << 8) | first[1]) % 31 == 0


class _Zlib:
    """gzip (any number of members) or deflate (zlib-wrapped as RFC 9110 says, or raw as many
    servers send it)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._d: zlib._Decompress | None = None
        self._done = False

    def _new(self, first: bytes) -> zlib._Decompress:
        if self._gzip:
            return zlib.decompressobj(zlib.MAX_WBITS | 16)
        return zlib.decompressobj(zlib.MAX_WBITS if _looks_zlib(first) else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = data
        while buf and not self._done:
            if self._d is None:
                self._d = self._new(buf)
            out = self._d.decompress(buf, OUT_LIMIT)
            if out:
                yield out
            if self._d.eof:
                buf = self._d.unused_data
                if self._gzip and buf.strip(b"\x00"):
                    self._d = None  # another gzip member follows
                else:
                    self._done = True
            else:
                buf = self._d.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        if self._d is not None and not self._done:
            if not self._d.eof:
                raise zlib.error("compressed body ends before its end-of-stream marker")
            out = self._d.flush()
            if out:
                yield out
        return


class _Brotli:
    """brotlicffi, not Google's ``brotli`` module: warcio's own reader breaks on the latter's
    Decompressor (it sets an attribute on it), which would make ``warcio check`` crash."""

    def __init__(self) -> None:
        import brotlicffi  # here, not at the top: only a br body needs it (cffi's start-up, ~1.5 ms a command)

        self._d = brotlicffi.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        out = self._d.decompress(data, output_buffer_limit=OUT_LIMIT)
        if out:
            yield out
        while not self._d.is_finished() and not self._d.can_accept_more_data():
            out = self._d.decompress(b"", output_buffer_limit=OUT_LIMIT)
            if not out:
                break
            yield out

    def finish(self) -> Iterator[bytes]:
        return iter(())


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data

    def finish(self) -> Iterator[bytes]:
        return iter(())


def _brotli_error(exc: BaseException) -> bool:
    """Whether ``exc`` is brotlicffi's error; none can be before a br body has imported it."""
    mod = sys.modules.get("brotlicffi")
    return mod is not None and isinstance(exc, mod.error)


def _decoder(name: str) -> _Decoder:
    name = name.strip().lower()
    if name in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if name == "deflate":
        return _Zlib(gzip=False)
    if name == "br":
        return _Brotli()
    if name in ("identity", ""):
        return _Identity()
    raise CaptureError(f"unsupported Content-Encoding {name!r}",
                       hint="the server used an encoding we did not ask for (we accept gzip, deflate, br)")


def encodings(header: str | None) -> list[str]:
    return [e.strip().lower() for e in (header or "").split(",") if e.strip() and e.strip().lower() != "identity"]


def _chain(decoders: list[_Decoder], chunks: Iterator[bytes]) -> Iterator[bytes]:
    stream = chunks
    for dec in decoders:
        stream = _through(dec, stream)
    return stream


def _through(dec: _Decoder, chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield from dec.feed(chunk)
    yield from dec.finish()


def decode_stream(src: BinaryIO, dst: BinaryIO, content_encoding: str | None, max_decoded: int) -> tuple[str, int]:
    """Undo Content-Encoding (listed in order applied, so undone in reverse); return (sha256, size)."""
    decoders = [_decoder(e) for e in reversed(encodings(content_encoding))]

    def read() -> Iterator[bytes]:
        while chunk := src.read(CHUNK):
            yield chunk

    h, size = hashlib.sha256(), 0
    try:
        for out in _chain(decoders, read()):
            size += len(out)
            if size > max_decoded:
                raise DecompressionBombError(
                    f"decoded body exceeds the cap of {max_decoded:,} bytes (Content-Encoding: {content_encoding})")
            h.update(out)
            dst.write(out)
    except Exception as exc:
        if not isinstance(exc, zlib.error) and not _brotli_error(exc):
            raise
        raise CaptureError(f"the body is not valid {content_encoding}: {exc}",
                           hint="the server sent a corrupt compressed body; try again later") from exc
    dst.flush()
    return h.hexdigest(), size
