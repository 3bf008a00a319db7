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
from collections.abc import Callable
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


ZIP_CASES: dict[str, tuple[Callable[[Path, Path], None], str]] = {
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
