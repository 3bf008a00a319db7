"""Builders of hostile bundles, shared by the hostile-bundle tests (issue 28): each takes a genuine
bundle the code exported and makes one thing about it hostile. ``tests/test_hostile_zip.py`` and
``tests/test_hostile_output.py`` test their cases in depth; ``tests/test_hostile_suite.py`` runs every
case through ``verify``, ``import`` and the web upload as a recipient would, measuring time and memory.

ZIP-layer builders take ``(good, bad)`` paths; ``repack`` lists the changed members again in
datapackage.json and signs it with the exporting store's own bundle key, so only the intended part
is hostile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from archiver.api import Archive

DP = "datapackage.json"
_CEN = struct.Struct("<4s6H3I5HII")
_LOC = struct.Struct("<4s5H3I2H")
Members = dict[str, bytes]


# ---- the ZIP layer (issue 28, defects 1-3) ------------------------------------------------------
def zip_members(good: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(good) as zf:
        return [(i, zf.read(i)) for i in zf.infolist()]


def write_zip(dest: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name": that is the point
        with zipfile.ZipFile(dest, "w") as zf:
            for info, data in members:
                zf.writestr(info, data)


def directory(data: bytes) -> list[tuple[int, str, int]]:
    """(position of the central-directory entry, name, local header offset) for each member."""
    cd_size, cd_offset = struct.unpack_from("<II", data, len(data) - 22 + 12)
    out, at = [], cd_offset
    while at < cd_offset + cd_size:
        f = _CEN.unpack_from(data, at)
        out.append((at, data[at + 46:at + 46 + f[10]].decode(), f[16]))
        at += 46 + f[10] + f[11] + f[12]
    return out


def forged_dp(data: bytes) -> bytes:
    doc = json.loads(data)
    doc["mainPageURL"] = "https://forged.example/"
    doc["description"] = "FORGED: not what was signed"
    return (json.dumps(doc, indent=2) + "\n").encode()


def _dup_datapackage(good: Path, bad: Path) -> None:
    ms = zip_members(good)
    genuine = dict((i.filename, d) for i, d in ms)[DP]
    write_zip(bad, [(zipfile.ZipInfo(DP, date_time=(1980, 1, 1, 0, 0, 0)), forged_dp(genuine)), *ms])


def _dup_warc(good: Path, bad: Path) -> None:
    ms = zip_members(good)
    info, data = next((i, d) for i, d in ms if i.filename.endswith(".warc.gz"))
    write_zip(bad, [(zipfile.ZipInfo(info.filename, date_time=info.date_time), data[:-7] + b"FORGED!"), *ms])


def _nul_duplicate(good: Path, bad: Path) -> None:
    """`datapackage.json\\0x` first (forged): zipfile cuts the name at NUL, a Go reader keeps it."""
    ms = zip_members(good)
    genuine = dict((i.filename, d) for i, d in ms)[DP]
    write_zip(bad, [(zipfile.ZipInfo(DP + "QQ", date_time=(1980, 1, 1, 0, 0, 0)), forged_dp(genuine)), *ms])
    raw = bad.read_bytes()
    assert raw.count(b"datapackage.jsonQQ") == 2  # local header and directory
    bad.write_bytes(raw.replace(b"datapackage.jsonQQ", b"datapackage.json\x00Q"))


def _case_duplicate(good: Path, bad: Path) -> None:
    ms = zip_members(good)
    genuine = dict((i.filename, d) for i, d in ms)[DP]
    write_zip(bad, [*ms, (zipfile.ZipInfo("DataPackage.JSON", date_time=(1980, 1, 1, 0, 0, 0)),
                       forged_dp(genuine))])


def _local_field(offset_in_header: int, fmt: str, value: Callable[[int], int],
                 which: Callable[[str], bool]) -> Callable[[Path, Path], None]:
    def build(good: Path, bad: Path) -> None:
        data = bytearray(good.read_bytes())
        (_, _, loc), = [e for e in directory(bytes(data)) if which(e[1])]
        (old,) = struct.unpack_from(fmt, data, loc + offset_in_header)
        struct.pack_into(fmt, data, loc + offset_in_header, value(old))
        bad.write_bytes(bytes(data))
    return build


def _local_name(good: Path, bad: Path) -> None:
    data = bytearray(good.read_bytes())
    (_, _, loc), = [e for e in directory(bytes(data)) if e[1] == DP]
    data[loc + 30:loc + 30 + len(DP)] = b"datapackage.jso\x6e".upper()  # DATAPACKAGE.JSON
    bad.write_bytes(bytes(data))


def _prepended(good: Path, bad: Path) -> None:
    ms = zip_members(good)
    forged = bad.with_suffix(".forged")
    write_zip(forged, [(i, forged_dp(d) if i.filename == DP else d) for i, d in ms])
    bad.write_bytes(forged.read_bytes() + good.read_bytes())


def _prepended_adjusted(good: Path, bad: Path) -> None:
    """As `zip -A` leaves it: a forged ZIP in front and every offset moved past it, so zipfile reads the
    genuine members where the directory says, while a streaming reader meets the forged ones first."""
    ms = zip_members(good)
    forged = bad.with_suffix(".forged")
    write_zip(forged, [(i, forged_dp(d) if i.filename == DP else d) for i, d in ms])
    prefix, data = forged.read_bytes(), bytearray(good.read_bytes())
    for at, _, loc in directory(bytes(data)):
        struct.pack_into("<I", data, at + 42, loc + len(prefix))
    struct.pack_into("<I", data, len(data) - 22 + 16, struct.unpack_from("<I", data, len(data) - 22 + 16)[0]
                     + len(prefix))
    bad.write_bytes(prefix + bytes(data))


def _attrs(mode: int, which: Callable[[str], bool]) -> Callable[[Path, Path], None]:
    def build(good: Path, bad: Path) -> None:
        data = bytearray(good.read_bytes())
        for at, name, _ in directory(bytes(data)):
            if which(name):
                struct.pack_into("<I", data, at + 38, mode << 16)
        bad.write_bytes(bytes(data))
    return build


def _overlap(good: Path, bad: Path) -> None:
    """The directory's last member is pointed at its predecessor's local header: two entries, one
    stretch of bytes (what overlapping-member zip bombs and polyglots do)."""
    data = bytearray(good.read_bytes())
    entries = sorted(directory(bytes(data)), key=lambda e: e[2])
    struct.pack_into("<I", data, entries[-1][0] + 42, entries[-2][2])
    bad.write_bytes(bytes(data))


def _zip64_split(good: Path, bad: Path) -> None:
    """A ZIP64 end record and locator before the 32-bit end record, which then names another central
    directory offset: zipfile (and we) read the ZIP64 one, Go and Info-ZIP the 32-bit one (review 1)."""
    data = good.read_bytes()
    at = data.rfind(b"PK\x05\x06")
    _, disk, cd_disk, here, count, cd_size, cd_offset, clen = struct.unpack_from("<4s4H2IH", data, at)
    e64 = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, disk, cd_disk, here, count, cd_size, cd_offset)
    loc = struct.pack("<4sIQI", b"PK\x06\x07", 0, at, 1)
    eocd = struct.pack("<4s4H2IH", b"PK\x05\x06", disk, cd_disk, here, count, cd_size, cd_offset + 1, clen)
    bad.write_bytes(data[:at] + e64 + loc + eocd + data[at + 22:])


def _path_alias(good: Path, bad: Path) -> None:
    """``provenance//<id>.text.txt`` beside the record's text: unzip writes both to one file (review 5)."""
    ms = zip_members(good)
    text = next(i.filename for i, _ in ms if i.filename.endswith(".text.txt"))
    alias = text.replace("provenance/", "provenance//")
    write_zip(bad, [*ms, (zipfile.ZipInfo(alias, date_time=(1980, 1, 1, 0, 0, 0)), b"FORGED text\n")])


def _version_needed(good: Path, bad: Path) -> None:
    """The datapackage's "version needed to extract" set to 6.4: zipfile raised NotImplementedError (review 6)."""
    data = bytearray(good.read_bytes())
    for pos, name, _ in directory(bytes(data)):
        if name == DP:
            struct.pack_into("<H", data, pos + 6, 64)
    bad.write_bytes(bytes(data))


ZIP_CASES: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "two end records naming two directories (ZIP64 split view)": (_zip64_split, "end records disagree"),
    "a path alias of a member (a//b)": (_path_alias, "not in canonical form"),
    "version needed to extract 6.4": (_version_needed, "version 6.4"),
    "forged datapackage.json first, genuine last": (_dup_datapackage, "duplicate member names"),
    "forged WARC first, genuine last": (_dup_warc, "duplicate member names"),
    "NUL-named duplicate": (_nul_duplicate, "holds a NUL"),
    "case-folded duplicate": (_case_duplicate, "in another case or form"),
    "local method differs": (_local_field(8, "<H", lambda _: 8, lambda n: n == DP), "compression deflated"),
    "local name differs": (_local_name, "name 'DATAPACKAGE.JSON'"),
    "local CRC differs": (_local_field(14, "<I", lambda v: v ^ 1, lambda n: n == DP), "CRC"),
    "local sizes differ": (_local_field(18, "<I", lambda v: v - 1, lambda n: n.endswith(".warc.gz")),
                           "the directory says"),
    "forged ZIP prepended": (_prepended, "bytes before the archive"),
    "forged ZIP prepended, offsets moved": (_prepended_adjusted, "bytes before the first local header"),
    "every member a symlink": (_attrs(stat.S_IFLNK | 0o777, lambda n: True), "symbolic links"),
    "a FIFO member": (_attrs(stat.S_IFIFO | 0o644, lambda n: n == DP), "FIFO"),
    "overlapping members": (_overlap, "overlaps the member before it"),
}


# ---- repacked and re-signed (defects 5, 6, 8) ----------------------------------------------------------
def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def member_map(path: Path) -> Members:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write_map(dest: Path, members: Members) -> None:
    with zipfile.ZipFile(dest, "w") as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def repack(good: Path, dest: Path, archive: Archive, change: Callable[[Members], Members]) -> None:
    """``change`` the members, then list them all again in datapackage.json and sign it with the
    exporting store's own bundle key: the package checks pass, what ``change`` did is all that differs."""
    from archiver.bundle.export import _sign_p384

    members = member_map(good)
    dp = json.loads(members.pop("datapackage.json"))
    digest = json.loads(members.pop("datapackage-digest.json"))
    members = change(members)
    dp["resources"] = [{"name": p.lower(), "path": p, "hash": f"sha256:{sha(d)}", "bytes": len(d)}
                       for p, d in sorted(members.items())]
    dp_bytes = (json.dumps(dp, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    dp_hash = f"sha256:{sha(dp_bytes)}"
    key = archive.keys.load_wacz_private(lambda: None)
    digest["hash"] = digest["signedData"]["hash"] = dp_hash
    digest["signedData"]["signature"] = _sign_p384(key, dp_hash.encode("ascii"))
    members["datapackage.json"] = dp_bytes
    members["datapackage-digest.json"] = (json.dumps(digest, indent=2) + "\n").encode("utf-8")
    write_map(dest, members)


def renamed(archive: Archive, rid: str, new: str) -> Callable[[Members], Members]:
    """The record as its operator could have signed it under another ID: the manifest says ``new``
    and is signed again with the store's own key, its custody names it, every member is renamed."""
    from archiver.canonical import canonical
    from archiver.provenance.signing import sign_manifest_file
    from archiver.records import Manifest
    from store.custody import CustodyEntry

    def change(members: Members) -> Members:
        out: Members = {}
        for name, data in members.items():
            if name == f"provenance/{rid}.manifest.json":
                m = Manifest.from_dict(json.loads(data))
                _, data = sign_manifest_file(dataclasses.replace(m, record_id=new),
                                             archive.keys.load_private(lambda: None))
            out[name.replace(rid, new)] = data
        msha = sha(out[f"provenance/{new}.manifest.json"])
        lines = []
        for line in out[f"provenance/{new}.custody.jsonl"].decode().splitlines():
            e = CustodyEntry.from_json(line)
            if e.record_id == rid:
                e = dataclasses.replace(e, record_id=new, subject_sha256=msha)
            e = dataclasses.replace(e, hash=sha(canonical(e.body())))
            lines.append(e.to_json() + "\n")
        out[f"provenance/{new}.custody.jsonl"] = "".join(lines).encode()
        for name in ("indexes/index.cdx", "pages/pages.jsonl"):
            if name in out:
                out[name] = out[name].replace(rid.encode(), new.encode())
        return out
    return change


def entries_edited(edit: Callable[[dict], dict],  # type: ignore[type-arg]
                    encode: Callable[[str], bytes] = str.encode) -> Callable[[bytes], bytes]:
    """Each custody line edited, its own hash made right again over what a lenient reader sees: only
    a strict reader can tell."""
    from archiver.canonical import canonical

    def change(data: bytes) -> bytes:
        out = []
        for line in data.decode().splitlines():
            d = edit(json.loads(line))
            body = {k: v for k, v in d.items() if k != "hash"}
            d["hash"] = sha(canonical(body))
            out.append(encode(json.dumps(d, sort_keys=True, ensure_ascii=False)) + b"\n")
        return b"".join(out)
    return change


def latin1_actor(d: dict) -> dict:  # type: ignore[type-arg]
    return {**d, "actor": "Test Op\ufffdrator"}  # written as one byte 0xff: not UTF-8


CUSTODY: dict[str, Callable[[bytes], bytes]] = {
    "not-utf8": lambda _: b"\xff\xfe not utf-8 \x80\n",
    # one byte that is not UTF-8 inside a string; the entry's hash is right for U+FFFD in its place
    "not-utf8-in-a-string": entries_edited(latin1_actor, lambda t: t.replace("\ufffd", "\xff").encode("latin-1",
                                                                                                          "replace")),
    "not-json": lambda _: b"{not json\n",
    "array": lambda _: b"[1, 2]\n",
    "detail-not-an-object": entries_edited(lambda d: {**d, "detail": "a string"}),
    "seq-not-a-number": entries_edited(lambda d: {**d, "seq": "one"}),
}


# ---- the whole list, as a recipient meets it (test_hostile_suite) ------------------------------------
@dataclasses.dataclass(frozen=True)
class Origin:
    """A genuine bundle and what made it: ``archive`` (its keys sign again), its record ``rid``, and a
    genuine bundle ``other`` that another operator exported."""

    good: Path
    rid: str
    archive: Archive
    other: Path


Builder = Callable[[Origin, Path], None]


def zeros(total: int) -> Iterator[bytes]:
    chunk = bytes(1 << 20)
    while total > 0:
        yield chunk[:min(total, len(chunk))]
        total -= len(chunk)


def warc_record(rtype: str, uri: str, block_len: int, block: Iterator[bytes], ctype: str = "text/plain",
                level: int = 1) -> bytes:
    """One gzip member holding a WARC record whose block is streamed from ``block``; ``block_len`` is
    what its header declares (a lie when it differs from what ``block`` gives)."""
    import zlib

    head = (f"WARC/1.1\r\nWARC-Type: {rtype}\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-0000000000ff>\r\n"
            f"WARC-Date: 2026-12-06T00:00:00Z\r\nWARC-Target-URI: {uri}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {block_len}\r\n\r\n").encode()
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    out = [z.compress(head)]
    out += [z.compress(chunk) for chunk in block]
    out += [z.compress(b"\r\n\r\n"), z.flush()]
    return b"".join(out)


def raw_zip(dest: Path, entries: list[tuple[str, int, bytes, int, int]]) -> None:
    """A ZIP written by hand from (name, method, stored bytes, crc, declared size): what a zip bomb or
    a lying directory needs, and what zipfile would never write. Sizes of 4 GiB and more get ZIP64
    extras (local header and directory), as the exporter writes them."""
    central, offset = [], 0
    with open(dest, "wb") as fh:
        for name, method, data, crc, size in entries:
            bname = name.encode("utf-8", "surrogateescape")
            big = size >= 0xFFFFFFFF
            extra = struct.pack("<HHQQ", 1, 16, size, len(data)) if big else b""
            csize, usize = (0xFFFFFFFF, 0xFFFFFFFF) if big else (len(data), size)
            ver = 45 if big else 20
            local = struct.pack("<IHHHHHIIIHH", 0x04034B50, ver, 0, method, 0, 0x21, crc, csize, usize, len(bname),
                                len(extra))
            fh.write(local + bname + extra + data)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0300 | ver, ver, 0, method, 0, 0x21, crc,
                                       csize, usize, len(bname), len(extra), 0, 0, 0, 0o100644 << 16, offset)
                           + bname + extra)
            offset += len(local) + len(bname) + len(extra) + len(data)
        cd = b"".join(central)
        fh.write(cd)
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(cd), offset, 0))


def _stored(name: str, data: bytes) -> tuple[str, int, bytes, int, int]:
    import zlib

    return name, 0, data, zlib.crc32(data), len(data)


def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """The raw deflate stream of ``size`` zero bytes and its CRC, computed once and reused per member."""
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = b"".join(z.compress(chunk) for chunk in zeros(size)) + z.flush()
    crc = 0
    for chunk in zeros(size):
        crc = zlib.crc32(chunk, crc)
    return data, crc


def fillers(o: Origin, bad: Path, members: int, size: int, padding: int = 0) -> None:
    """Defect 9: the genuine members, ``members`` deflated members of ``size`` zero bytes each and
    ``padding`` stored random bytes, all listed in a datapackage.json (its digest not signed again):
    the package check hashes every listed member before it finds anything wrong."""
    import os

    genuine = member_map(o.good)
    data, crc = _deflated_zeros(size)
    names = [f"archive/filler-{i:04d}.bin" for i in range(members)]
    pad = os.urandom(padding) if padding else b""
    dp = json.loads(genuine[DP])
    zero_sha = hashlib.sha256()
    for chunk in zeros(size):
        zero_sha.update(chunk)
    dp["resources"] += [{"name": n, "path": n, "hash": f"sha256:{zero_sha.hexdigest()}", "bytes": size} for n in names]
    if pad:
        dp["resources"].append({"name": "pad", "path": "archive/padding.bin", "hash": f"sha256:{sha(pad)}",
                                "bytes": len(pad)})
    entries = [_stored(n, json.dumps(dp).encode() if n == DP else d) for n, d in genuine.items()]
    entries += [(n, 8, data, crc, size) for n in names]
    if pad:
        entries.append(_stored("archive/padding.bin", pad))
    raw_zip(bad, entries)


def _with_warc(o: Origin, bad: Path, extra: bytes) -> None:
    """The record's WARC with ``extra`` gzip members after its own, listed and signed again."""
    warc = f"archive/{o.rid}.warc.gz"

    def change(m: Members) -> Members:
        m[warc] = m[warc] + extra
        return m
    repack(o.good, bad, o.archive, change)


def _page_url(o: Origin) -> str:
    return str(json.loads(member_map(o.good)[f"provenance/{o.rid}.manifest.json"])["subject"]["final_url"])


def second_response(o: Origin, bad: Path) -> None:
    """Defect 4: a second, different response for the page URL appended to the WARC (package signed again)."""
    body = b"<html><body>FORGED: not what was captured</body></html>"
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    _with_warc(o, bad, warc_record("response", _page_url(o), len(http), iter([http]),
                                   "application/http; msgtype=response"))


def conversion(size: int) -> Builder:
    """Defect 7: a conversion record of ``size`` zero bytes (about size/1000 on disk) appended to the WARC."""
    def build(o: Origin, bad: Path) -> None:
        _with_warc(o, bad, warc_record("conversion", _page_url(o), size, zeros(size), level=9))
    return build


def declared_huge(o: Origin, bad: Path) -> None:
    """Defect 7: two records each declaring a 64 GiB block in ~2 MB: refused on the declaration."""
    rec = warc_record("resource", "urn:x-bomb", 64 << 30, zeros(1 << 20))
    _with_warc(o, bad, rec + rec)


def endless_gzip(o: Origin, bad: Path) -> None:
    """100,000 empty gzip members after the WARC's records (2 MB that decompress to nothing)."""
    import gzip

    _with_warc(o, bad, gzip.compress(b"", mtime=0) * 100_000)


def _custody(o: Origin, bad: Path) -> None:
    path = f"provenance/{o.rid}.custody.jsonl"

    def change(m: Members) -> Members:
        m[path] = CUSTODY["not-utf8"](m[path])
        return m
    repack(o.good, bad, o.archive, change)


def _added(name: str, data: bytes = b"added after signing") -> Builder:
    """A member that is not listed in datapackage.json (nothing signed again)."""
    def build(o: Origin, bad: Path) -> None:
        write_zip(bad, [*zip_members(o.good), (zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)])
    return build


def _added_raw(name: str) -> Builder:
    """A member whose name zipfile would not write (NUL, ..): written as ``Q``s, then patched in."""
    def build(o: Origin, bad: Path) -> None:
        stand_in = "Q" * len(name.encode())
        _added(stand_in)(o, bad)
        raw = bad.read_bytes()
        assert raw.count(stand_in.encode()) == 2
        bad.write_bytes(raw.replace(stand_in.encode(), name.encode()))
    return build


def many_members(o: Origin, bad: Path) -> None:
    with zipfile.ZipFile(bad, "w") as zf:
        for info, data in zip_members(o.good):
            zf.writestr(info, data)
        for i in range(20_000):
            zf.writestr(zipfile.ZipInfo(f"x/{i:05d}", date_time=(1980, 1, 1, 0, 0, 0)), b"")


def zip_bomb(o: Origin, bad: Path) -> None:
    """One member declaring 5 GB (ZIP64) whose deflate stream is that of 64 MiB of zeros."""
    data, crc = _deflated_zeros(64 << 20)
    raw_zip(bad, [_stored(n, d) for n, d in member_map(o.good).items()]
            + [("archive/bomb.warc.gz", 8, data, crc, 5_000_000_000)])


def sizes_lie(o: Origin, bad: Path) -> None:
    """datapackage.json one byte shorter in both its local header and the directory: they agree, and lie."""
    data = bytearray(o.good.read_bytes())
    ((at, _, loc),) = [e for e in directory(bytes(data)) if e[1] == DP]
    for pos in (at + 24, loc + 22):
        struct.pack_into("<I", data, pos, struct.unpack_from("<I", data, pos)[0] - 1)
    bad.write_bytes(bytes(data))


def _datapackage(new: bytes, deflate: bool = False) -> Builder:
    def build(o: Origin, bad: Path) -> None:
        method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        ms = [(zipfile.ZipInfo(i.filename, date_time=(1980, 1, 1, 0, 0, 0)), new if i.filename == DP else d)
              for i, d in zip_members(o.good)]
        with zipfile.ZipFile(bad, "w") as zf:
            for info, d in ms:
                info.compress_type = method if info.filename == DP else zipfile.ZIP_STORED
                zf.writestr(info, d)
    return build


def cdxj_outside(o: Origin, bad: Path) -> None:
    """Every CDXJ line points past the end of the WARC (the index altered, not signed again)."""
    import re

    def change(data: bytes) -> bytes:
        return re.sub(rb'"offset": ?"?\d+"?', b'"offset": "999999999"', data)
    write_zip(bad, [(i, change(d) if i.filename == "indexes/index.cdxj" else d) for i, d in zip_members(o.good)])


def _index_edited(edit: Callable[[bytes], bytes]) -> Builder:
    """The CDXJ index edited, the package listed and signed again by the exporter's own key."""
    def build(o: Origin, bad: Path) -> None:
        def change(m: Members) -> Members:
            m["indexes/index.cdxj"] = edit(m["indexes/index.cdxj"])
            return m
        repack(o.good, bad, o.archive, change)
    return build


def _bad_port(data: bytes) -> bytes:
    """A line whose URL has a port that is not a number: surt() raised ValueError, a traceback (review 7)."""
    line = b'com,example:abc)/ 20260101000000 {"url": "http://example.com:abc/", "filename": "x.warc.gz", ' \
           b'"offset": "0", "length": "10"}\n'
    return data + line


def listed_missing(o: Origin, bad: Path) -> None:
    """Signed again listing a WARC that is then left out of the zip."""
    ghost = "archive/ghost.warc.gz"

    def change(m: Members) -> Members:
        m[ghost] = b"listed, then removed"
        return m
    repack(o.good, bad, o.archive, change)
    kept = member_map(bad)
    del kept[ghost]
    write_map(bad, kept)


def copied_manifest(o: Origin, bad: Path) -> None:
    """The record's manifest copied under another ID (and listed, signed again): one signature, two records."""
    new = o.rid[:-1] + ("2" if o.rid[-1] != "2" else "3")

    def change(m: Members) -> Members:
        m[f"provenance/{new}.manifest.json"] = m[f"provenance/{o.rid}.manifest.json"]
        return m
    repack(o.good, bad, o.archive, change)


def _huge_json() -> bytes:
    """63 MiB of small JSON objects (~8 million dicts, gigabytes once parsed), deflated to ~60 kB: under
    every ZIP-layer check (the bundle stays under 64 MiB in all)."""
    return b'{"resources": [' + b'{"a":1},' * ((63 << 20) // 8) + b"{}]}"


def _zip_case(build: Callable[[Path, Path], None]) -> Builder:
    return lambda o, bad: build(o.good, bad)


#: case → (the issue's item it covers, builder). "holds": what the issue found refused already.
SUITE: dict[str, tuple[str, Builder]] = {
    **{f"zip: {name}": ("1-3", _zip_case(build)) for name, (build, _) in ZIP_CASES.items()},
    "WARC: a second, different response for the page": ("4", second_response),
    "custody.jsonl not UTF-8": ("5", _custody),
    "member named [/bold]": ("6", _added("[/bold]")),
    "member name with terminal escapes": ("6", _added("x\x1b[2J\x1b[Himported 1 record(s)\r\x07.txt")),
    "WARC: a 1 GiB conversion record in ~1 MB (within the caps)": ("7", conversion(1 << 30)),
    "WARC: two records declaring 64 GiB each in ~2 MB": ("7", declared_huge),
    "record ID EVIL, signed again": ("8", lambda o, bad: repack(o.good, bad, o.archive, renamed(o.archive, o.rid,
                                                                                                 "EVIL"))),
    "500 listed members of 64 MiB in ~33 MB": ("9", lambda o, bad: fillers(o, bad, 500, 64 << 20)),
    "500 listed members of 1 MiB behind 12 MB of padding (under the ratio)": (
        "9", lambda o, bad: fillers(o, bad, 500, 1 << 20, 12 << 20)),
    "zip-slip name": ("holds", _added("../../evil.txt")),
    "absolute path": ("holds", _added_raw("/tmp/evil.txt")),
    "NUL in a name": ("holds", _added_raw("evil\x00.txt")),
    "60,000-character name": ("holds", _added("a" * 60_000)),
    "5 GB zip bomb (ZIP64)": ("holds", zip_bomb),
    "nested zip": ("holds", lambda o, bad: _added("archive/inner.wacz", o.good.read_bytes())(o, bad)),
    "20,000 members": ("holds", many_members),
    "sizes that lie (directory and local header agree)": ("holds", sizes_lie),
    "deep JSON (200,000 levels)": ("holds", lambda o, bad: _datapackage(b"[" * 200_000 + b"]" * 200_000)(o, bad)),
    "huge JSON (63 MiB of small objects, deflated)": ("holds", lambda o, bad: _datapackage(_huge_json(), True)(o,
                                                                                                             bad)),
    "CDXJ lines outside the WARC": ("holds", cdxj_outside),
    "JSON of 1.1 million strings (review 3b)": ("9", lambda o, bad: _datapackage(
        b'{"resources": [' + b'"a",' * 1_100_000 + b'"a"]}', True)(o, bad)),
    "CDXJ line with a port that is not a number, signed again (review 7)": ("4", _index_edited(_bad_port)),
    "CDXJ line of 200,000 characters, signed again (review 3)": ("4", _index_edited(
        lambda d: d + b'com,x)/ 20260101000000 {"url": "http://x/", "pad": [' + b"[" * 100_000 + b"]" * 100_000
        + b"]}\n")),
    "endless gzip members": ("holds", endless_gzip),
    "signed again, listing a missing file": ("holds", listed_missing),
    "copied manifest": ("holds", copied_manifest),
    "another operator's records": ("holds", lambda o, bad: bad.write_bytes(o.other.read_bytes())),
}


def copied_records(records: int, conversions: int, size: int) -> Builder:
    """Work multiplied (defects 7 and 9): the record's WARC gets ``conversions`` conversion records of
    ``size`` zero bytes (~size/1000 on disk each), and ``records`` more records whose manifests (copies,
    not signed again) name that WARC; listed and signed again. Each record's checks read the whole
    WARC again, so the bundle costs (records + 1) x conversions x size of inflating and hashing."""
    def build(o: Origin, bad: Path) -> None:
        one = warc_record("conversion", _page_url(o), size, zeros(size), level=9)
        warc = f"archive/{o.rid}.warc.gz"

        def change(m: Members) -> Members:
            m[warc] = m[warc] + one * conversions
            manifest = json.loads(m[f"provenance/{o.rid}.manifest.json"])
            for art in manifest["artifacts"]:
                if art["name"] == "warc":
                    art["sha256"], art["size"] = sha(m[warc]), len(m[warc])
            for k in range(records):
                new = f"{o.rid[:5]}{k:04d}" if f"{o.rid[:5]}{k:04d}" != o.rid else f"{o.rid[:5]}ZZZZ"
                m[f"provenance/{new}.manifest.json"] = json.dumps(manifest | {"record_id": new}).encode()
            return m
        repack(o.good, bad, o.archive, change)
    return build
