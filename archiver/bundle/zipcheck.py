"""A strict reading of a ZIP's structure, before any member's bytes are trusted.

Why: a ZIP can be read in more than one way. Python's ``zipfile`` keeps the *last* of two members
with one name, cuts names at NUL, skips bytes in front of the archive and takes the central
directory's word over the local headers; Go's ``archive/zip``, ``unzip``, streaming readers (which
walk local headers front to back) and ReplayWeb.page each resolve those ambiguities their own way.
A bundle we call verified must show the same bytes in every reader, so anything a reader could
resolve differently is refused here: duplicate names (exact, after NUL truncation, after Unicode
normalisation and case folding), symlinks and special files, bytes before the first local header or
between members, local headers that disagree with the central directory (name, flags, method, CRC,
sizes), overlapping members, trailing bytes, multi-disk and encrypted archives.

Bounded: reads the end records, the central directory (at most ``MAX_DIRECTORY_BYTES``) and, per
member, its local header (and data descriptor if it has one) — never member data. Stdlib only
(``struct`` over the raw bytes); ZIP64 end records and extra fields are read as the exporter writes
them (``zipfile`` with ``force_zip64`` for members over 2 GiB).
"""

from __future__ import annotations

import stat
import struct
import unicodedata
from dataclasses import dataclass
from typing import BinaryIO

MAX_DIRECTORY_BYTES = 64 << 20  # 20,000 members with long names take ~3 MB

_EOCD = struct.Struct("<4s4H2IH")  # signature, disk, cd disk, entries here, entries, cd size, cd offset, comment
_LOC64 = struct.Struct("<4sIQI")  # ZIP64 end locator: signature, disk, zip64 end offset, disks
_EOCD64 = struct.Struct("<4sQ2H2I4Q")  # signature, size, made by, needed, disk, cd disk, entries ×2, cd size, offset
_CEN = struct.Struct("<4s6H3I5HII")  # central directory header (46 bytes)
_LOC = struct.Struct("<4s5H3I2H")  # local file header (30 bytes)
_SIG_EOCD, _SIG_LOC64, _SIG_EOCD64 = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_SIG_CEN, _SIG_LOC, _SIG_DD = b"PK\x01\x02", b"PK\x03\x04", b"PK\x07\x08"
_FLAG_ENCRYPTED, _FLAG_DESCRIPTOR, _FLAG_UTF8 = 0x1, 0x8, 0x800
_ZIP64_EXTRA, _UNICODE_PATH_EXTRA = 0x0001, 0x7075
_METHODS = {0: "stored", 8: "deflated"}
_MAX32 = 0xFFFFFFFF


class ZipStructureError(Exception):
    """The file is not a ZIP at all (no end record, a directory that does not parse): unreadable,
    as distinct from a readable ZIP with ambiguities (``ZipCheck.problems``)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    raw_name: bytes
    name: str
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    offset: int
    external_attr: int
    zip64: bool
    unicode_path: bool  # an Info-ZIP Unicode path field: readers that honour it show another name


@dataclass(frozen=True, slots=True)
class ZipCheck:
    """What the strict reading found: ``problems`` (one short line each, empty for a clean ZIP) and
    the number of members the central directory lists."""

    members: int
    problems: tuple[str, ...]


def check_zip(fh: BinaryIO) -> ZipCheck:
    """Read ``fh``'s ZIP structure strictly. Raises ``ZipStructureError`` if it is no ZIP at all."""
    fh.seek(0, 2)
    size = fh.tell()
    problems: list[str] = []
    cd_offset, cd_size, count, end_start = _end_records(fh, size, problems)
    if cd_size > MAX_DIRECTORY_BYTES:
        return ZipCheck(count, (*problems, f"the central directory takes {cd_size:,} bytes, over the "
                                           f"{MAX_DIRECTORY_BYTES:,}-byte limit"))
    if cd_offset + cd_size != end_start:
        # zipfile silently shifts every offset by the difference; another reader takes them as written
        problems.append(f"{end_start - cd_offset - cd_size:,} bytes before the archive the central directory "
                        "describes (another ZIP or data prepended)" if cd_offset + cd_size < end_start else
                        "the central directory overlaps the end record")
        return ZipCheck(count, tuple(problems))
    fh.seek(cd_offset)
    entries = _directory(fh.read(cd_size), count)
    _names(entries, problems)
    _kinds(entries, problems)
    _layout(fh, entries, cd_offset, problems)
    return ZipCheck(len(entries), tuple(problems))


#: a local header's extra field: ZIP64 sizes (20 bytes), timestamps and Unix ids fit easily
MAX_LOCAL_EXTRA = 256


def _end_records(fh: BinaryIO, size: int, problems: list[str]) -> tuple[int, int, int, int]:
    """The central directory's offset, size and entry count, and where the end records start. The
    end record is the last one in the file, as zipfile finds it; bytes after it, or ZIP records in
    the archive comment, are problems (another reader may find another archive there)."""
    tail_len = min(size, _EOCD.size + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    pos = tail.rfind(_SIG_EOCD)
    while pos >= 0 and len(tail) - pos < _EOCD.size:
        pos = tail.rfind(_SIG_EOCD, 0, pos)
    if pos < 0:
        raise ZipStructureError("no ZIP end-of-central-directory record")
    _, disk, cd_disk, here, count, cd_size, cd_offset, comment_len = _EOCD.unpack_from(tail, pos)
    eocd_at = size - tail_len + pos
    if eocd_at + _EOCD.size + comment_len != size:
        problems.append(f"{size - eocd_at - _EOCD.size - comment_len:,} bytes after the end record (data "
                        "appended to the archive)" if eocd_at + _EOCD.size + comment_len < size else
                        "the archive comment runs past the end of the file")
    comment = tail[pos + _EOCD.size:]
    if any(sig in comment for sig in (_SIG_EOCD, _SIG_LOC64, _SIG_CEN, _SIG_LOC)):
        problems.append("ZIP records after the end record (a second archive hidden in the comment)")
    start = eocd_at
    loc_at = eocd_at - _LOC64.size
    if loc_at >= 0:
        fh.seek(loc_at)
        loc = fh.read(_LOC64.size)
        if loc[:4] == _SIG_LOC64:
            _, _, e64_at, disks = _LOC64.unpack(loc)
            if disks != 1:
                raise ZipStructureError("a multi-disk (split) archive")
            if e64_at != loc_at - _EOCD64.size:  # shifted by prepended bytes, or pointing elsewhere
                problems.append(f"the ZIP64 end locator points {loc_at - _EOCD64.size - e64_at:,} bytes away "
                                "from its end record")
                e64_at = loc_at - _EOCD64.size  # read as zipfile does: the record before the locator
            fh.seek(e64_at)
            e64 = fh.read(_EOCD64.size)
            if len(e64) != _EOCD64.size or e64[:4] != _SIG_EOCD64:
                raise ZipStructureError("the ZIP64 end record is missing")
            narrow = (disk, cd_disk, here, count, cd_size, cd_offset)
            _, rec_size, _, _, disk, cd_disk, here, count, cd_size, cd_offset = _EOCD64.unpack(e64)
            if rec_size != _EOCD64.size - 12:
                raise ZipStructureError("the ZIP64 end record carries extensible data")
            # Go and Info-ZIP read the ZIP64 record only for fields the 32-bit one marks 0xFFFF(FFFF);
            # zipfile reads it whenever a locator is there: two end records naming two central
            # directories are two archives in one file
            wide = (disk, cd_disk, here, count, cd_size, cd_offset)
            sentinels = (0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, _MAX32, _MAX32)
            if any(n != w and n != sentinel for n, w, sentinel in zip(narrow, wide, sentinels, strict=True)):
                problems.append("the 32-bit and ZIP64 end records disagree on the central directory (readers "
                                "that use one or the other see different archives)")
            start = e64_at
    if disk or cd_disk or here != count:
        raise ZipStructureError("a multi-disk (split) archive")
    return cd_offset, cd_size, count, start


def _directory(cd: bytes, count: int) -> list[_Entry]:
    entries: list[_Entry] = []
    at = 0
    while at < len(cd):
        if len(cd) - at < _CEN.size or cd[at:at + 4] != _SIG_CEN:
            raise ZipStructureError(f"central directory entry {len(entries) + 1} is malformed")
        (_, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, disk, _, eattr,
         offset) = _CEN.unpack_from(cd, at)
        at += _CEN.size
        raw_name, extra = cd[at:at + nlen], cd[at + nlen:at + nlen + xlen]
        at += nlen + xlen + clen
        if at > len(cd):
            raise ZipStructureError(f"central directory entry {len(entries) + 1} runs past the directory")
        fields = _extra_fields(extra)
        z64 = fields.get(_ZIP64_EXTRA)
        usize, csize, offset, disk = _zip64(z64, (usize, csize, offset, disk))
        name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", errors="replace")
        if disk:
            raise ZipStructureError("a multi-disk (split) archive")
        entries.append(_Entry(raw_name, name, flags, method, crc, csize, usize, offset, eattr,
                              z64 is not None, _UNICODE_PATH_EXTRA in fields))
    if len(entries) != count:
        raise ZipStructureError(f"the end record counts {count} members, the central directory lists "
                                f"{len(entries)}")
    return entries


def _extra_fields(extra: bytes) -> dict[int, bytes]:
    fields: dict[int, bytes] = {}
    at = 0
    while at + 4 <= len(extra):
        hid, ln = struct.unpack_from("<HH", extra, at)
        if at + 4 + ln > len(extra):
            break  # zipfile tolerates a truncated trailing field; it carries nothing we read
        fields.setdefault(hid, extra[at + 4:at + 4 + ln])
        at += 4 + ln
    return fields


def _well_formed(extra: bytes) -> bool:
    """Fields that tile the extra area exactly (no trailing bytes a reader skips over)."""
    at = 0
    while at + 4 <= len(extra):
        at += 4 + struct.unpack_from("<HH", extra, at)[1]
    return at == len(extra)


def _canonical(name: str) -> bool:
    """A member path as one string only: no empty, ``.`` or ``..`` segment (``a//b``, ``./a``), no
    backslash, no segment ending in a dot or a space (Windows drops them): readers that normalise paths
    would otherwise extract two members to one file."""
    if "\\" in name:
        return False
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    return all(p not in ("", ".", "..") and not p.endswith((".", " ")) for p in parts)


def _zip64(z64: bytes | None, values: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Replace the 32-bit fields that say 0xFFFFFFFF (0xFFFF for the disk) by the ZIP64 extra's, in order."""
    out = list(values)
    at = 0
    for i, v in enumerate(values):
        if v == (0xFFFF if i == 3 else _MAX32):
            width = 4 if i == 3 else 8
            if z64 is None or at + width > len(z64):
                raise ZipStructureError("a ZIP64 size or offset is missing its extra field")
            out[i] = int.from_bytes(z64[at:at + width], "little")
            at += width
    return out[0], out[1], out[2], out[3]


def _names(entries: list[_Entry], problems: list[str]) -> None:
    seen: dict[str, dict[str, str]] = {"exact": {}, "nul": {}, "fold": {}}
    dup: list[str] = []
    for e in entries:
        if b"\x00" in e.raw_name:
            problems.append(f"member name {e.name!r} holds a NUL (readers cut it there, or not)")
        if e.unicode_path:
            problems.append(f"member {e.name!r} carries a second (Unicode path) name")
        if not e.flags & _FLAG_UTF8 and any(b > 0x7F for b in e.raw_name):
            problems.append(f"member name {e.name!r} is not ASCII and not flagged UTF-8 (readers decode it "
                            "differently)")
        if not _canonical(e.name.split("\x00")[0]):
            traversal = ".." in e.name.replace("\\", "/").split("/")
            problems.append(f"member name {e.name!r} " + ("is a path traversal ('..')" if traversal else
                            "is not in canonical form (empty or '.' segments, a backslash, or a segment ending "
                            "in a dot or space: readers normalise it differently)"))
        cut = e.name.split("\x00")[0]
        keys = {"exact": e.raw_name.hex(), "nul": cut,
                "fold": unicodedata.normalize("NFC", cut).casefold()}
        for how, key in keys.items():
            if key in seen[how]:
                first = seen[how][key]
                dup.append(f"{cut!r} twice" if how == "exact" else
                           f"{e.name!r} and {first!r} (the same name once cut at NUL)" if how == "nul" else
                           f"{e.name!r} and {first!r} (the same name in another case or form)")
                break
            seen[how][key] = e.name
    if dup:
        problems.append("duplicate member names, readers disagree on which copy they show: "
                        + _some(dup))


def _kinds(entries: list[_Entry], problems: list[str]) -> None:
    links, special, encrypted, methods = [], [], [], []
    for e in entries:
        mode = e.external_attr >> 16
        kind = stat.S_IFMT(mode)
        # the high half is a Unix st_mode; judged whatever system the entry claims to be made on, since
        # readers differ in which creators they honour it for (Info-ZIP: Unix and others; Go: Unix, macOS)
        if kind not in (0, stat.S_IFREG):
            if kind == stat.S_IFLNK:
                links.append(e.name)
            elif not (kind == stat.S_IFDIR and e.name.endswith("/") and e.usize == 0):
                special.append(f"{e.name!r} ({_kind_name(kind)})")
        if e.flags & _FLAG_ENCRYPTED:
            encrypted.append(e.name)
        if e.method not in _METHODS:
            methods.append(f"{e.name!r} (method {e.method})")
    if links:
        problems.append(f"members flagged as symbolic links: {_some([repr(n) for n in links])}")
    if special:
        problems.append(f"special files (not regular files): {_some(special)}")
    if encrypted:
        problems.append(f"encrypted members: {_some([repr(n) for n in encrypted])}")
    if methods:
        problems.append(f"unsupported compression: {_some(methods)}")


def _kind_name(kind: int) -> str:
    return {stat.S_IFIFO: "FIFO", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
            stat.S_IFSOCK: "socket", stat.S_IFDIR: "directory with content or no trailing slash"}.get(
        kind, f"file type {kind:#o}")


def _layout(fh: BinaryIO, entries: list[_Entry], cd_offset: int, problems: list[str]) -> None:
    """Each local header agrees with its directory entry, and the members tile the bytes from 0 to
    the central directory exactly: no prefix, no gap (a streaming reader would find a hidden member
    there), no overlap."""
    disagree: list[str] = []
    layout: list[str] = []
    end = 0
    for e in sorted(entries, key=lambda x: x.offset):
        if e.offset != end:
            layout.append(f"{e.offset - end:,} bytes before the first local header" if end == 0 and e.offset > end
                          else f"{e.name!r} overlaps the member before it" if e.offset < end
                          else f"{e.offset - end:,} unaccounted bytes before {e.name!r}")
        end = max(end, _local(fh, e, cd_offset, disagree))
    if end != cd_offset and entries:
        layout.append(f"{cd_offset - end:,} unaccounted bytes before the central directory" if end < cd_offset
                      else "the last member overlaps the central directory")
    elif not entries and cd_offset:
        layout.append(f"{cd_offset:,} bytes before the central directory of an empty archive")
    if layout:  # first: an overlap or a prefix is the cause, the headers that then disagree its symptom
        problems.append("members do not tile the file: " + _some(layout))
    if disagree:
        problems.append("local headers disagree with the central directory: " + _some(disagree))


def _local(fh: BinaryIO, e: _Entry, cd_offset: int, disagree: list[str]) -> int:
    """Compare ``e``'s local header with its directory entry; return where the member ends."""
    if e.offset + _LOC.size > cd_offset:
        disagree.append(f"{e.name!r}: its local header lies outside the members' area")
        return e.offset
    fh.seek(e.offset)
    head = fh.read(_LOC.size)
    if head[:4] != _SIG_LOC:
        disagree.append(f"{e.name!r}: no local header where the directory points")
        return e.offset
    _, _, flags, method, _, _, crc, csize, usize, nlen, xlen = _LOC.unpack(head)
    rest = fh.read(nlen + xlen)
    raw_name, extra = rest[:nlen], rest[nlen:]
    what = []
    if raw_name != e.raw_name:
        what.append(f"name {raw_name.decode('utf-8', 'replace')!r}")
    if flags != e.flags:
        what.append(f"flags {flags:#x} (directory {e.flags:#x})")
    if method != e.method:
        what.append(f"compression {_METHODS.get(method, method)} (directory {_METHODS.get(e.method, e.method)})")
    end: int = e.offset + _LOC.size + nlen + xlen + e.csize
    # the local extra field is read by no one but counted as part of the member: bytes hidden there
    # (a second central directory, a forged member) would tile the file unnoticed
    if xlen > MAX_LOCAL_EXTRA or not _well_formed(extra):
        what.append(f"a local extra field of {xlen:,} bytes that is not a plain list of fields (at most "
                    f"{MAX_LOCAL_EXTRA} bytes)" if xlen > MAX_LOCAL_EXTRA else "a malformed local extra field")
    local64 = _extra_fields(extra).get(_ZIP64_EXTRA)
    try:
        usize, csize, _, _ = _zip64(local64, (usize, csize, 0, 0))
    except ZipStructureError:
        what.append("a ZIP64 size without its extra field")
    got = (crc, csize, usize)
    if flags & _FLAG_DESCRIPTOR:
        # the local header may leave CRC and sizes zero; then the descriptor after the data holds them
        wide = e.zip64 or local64 is not None  # a ZIP64 member's descriptor has 8-byte sizes
        if got == (0, 0, 0):
            got, dd_len = _descriptor(fh, end, wide)
        else:
            dd_len = _descriptor(fh, end, wide)[1]
        end += dd_len
    if got != (e.crc, e.csize, e.usize):
        what.append(f"CRC {got[0]:08x} and sizes {got[1]:,}/{got[2]:,} (the directory says {e.crc:08x}, "
                    f"{e.csize:,}/{e.usize:,})")
    if what:
        disagree.append(f"{e.name!r}: " + ", ".join(what))
    if end > cd_offset:
        disagree.append(f"{e.name!r}: its data runs into the central directory")
    return end


def _descriptor(fh: BinaryIO, at: int, zip64: bool) -> tuple[tuple[int, int, int], int]:
    """A data descriptor's CRC and sizes (compressed, uncompressed) and its length."""
    fh.seek(at)
    raw = fh.read(24)
    skip = 4 if raw[:4] == _SIG_DD else 0
    fmt = "<IQQ" if zip64 else "<III"
    need = skip + struct.calcsize(fmt)
    if len(raw) < need:
        return (-1, -1, -1), need
    crc, csize, usize = struct.unpack_from(fmt, raw, skip)
    return (crc, csize, usize), need


def _some(items: list[str], n: int = 3) -> str:
    return ", ".join(shown(i, 400) for i in items[:n]) + (f" (and {len(items) - n} more)" if len(items) > n else "")


def shown(text: str, limit: int = 120) -> str:
    """A name from the bundle as a report shows it: a 60,000-character name would be the whole report."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
