"""Uploads hashed as they stream in: a multipart body is parsed chunk by chunk, never held whole.

Only the part named ``file`` is kept (hashed, counted, and written to a temp file when the caller
needs the bytes, as bundle verification does); a body over the cap is refused as soon as it passes it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException

from archiver.errors import UsageError


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str | None
    sha256: str
    size: int
    path: Path | None  # the bytes on disk (``keep=True``); the caller removes it


class _TooLarge(Exception):
    pass


async def receive_upload(request: Request, cap: int, *, keep: bool, tmp_dir: Path | None = None) -> Upload:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UsageError("send the file as multipart/form-data in a field named 'file'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap + 65536:
        raise HTTPException(413, f"upload of {int(declared):,} bytes is over the limit of {cap:,} bytes "
                                 "(setting web.max_upload_bytes)")
    h = hashlib.sha256()
    st: dict[str, Any] = {"size": 0, "field": b"", "value": b"", "headers": {}, "in_file": False, "seen": False,
                          "filename": None}
    out = None
    path: Path | None = None
    if keep:
        if tmp_dir is not None:
            tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=tmp_dir)
        path = Path(name)
        out = os.fdopen(fd, "wb")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        st["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        st["value"] += data[start:end]

    def on_header_end() -> None:
        st["headers"][st["field"].decode("latin-1").lower()] = st["value"]
        st["field"], st["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(st["headers"].get("content-disposition", b""))
        st["in_file"] = disp.get(b"name") == b"file" and not st["seen"]
        if st["in_file"]:
            st["seen"] = True
            fn = disp.get(b"filename")
            st["filename"] = os.path.basename(fn.decode("utf-8", "replace"))[:255] if fn else None
        st["headers"] = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if not st["in_file"]:
            return
        chunk = data[start:end]
        st["size"] += len(chunk)
        if st["size"] > cap:
            raise _TooLarge
        h.update(chunk)
        if out is not None:
            out.write(chunk)

    def on_part_end() -> None:
        st["in_file"] = False

    parser = MultipartParser(boundary, {"on_header_field": on_header_field, "on_header_value": on_header_value,
                                        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
                                        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except _TooLarge:
            raise HTTPException(413, f"upload is over the limit of {cap:,} bytes (setting web.max_upload_bytes)"
                                ) from None
        except ValueError as exc:
            raise UsageError(f"malformed multipart body: {exc}") from exc
        if not st["seen"]:
            raise UsageError("the multipart body has no field named 'file'")
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
            out.close()
            out = None
    except BaseException:
        if out is not None:
            out.close()
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    return Upload(filename=st["filename"], sha256=h.hexdigest(), size=int(st["size"]), path=path)


__all__ = ["Upload", "receive_upload"]
