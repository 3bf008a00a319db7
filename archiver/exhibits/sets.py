"""An exhibit set: one signed, Bates-stamped PDF per record, the numbers continuing across the set and
recorded with the matter.

Order of work, and why: every PDF is assembled and stamped first (its page count decides where the
next one's numbers start), then the whole range is checked against the matter's earlier exhibits of
the same prefix (an overlap is refused before anything is signed or written), then each PDF is signed
and timestamped (network: the TSA), kept in the store as a blob (productions are made from these
bytes, never from files a user may have moved) and written into the output directory, and last the
rows and one ``exhibit`` custody entry per PDF are committed in one unit of work of the write path,
where the overlap and the labels are checked again under the write lock (two sets made at once cannot
both take a range). A refusal at that point removes the files it wrote.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import UsageError
from archiver.exhibits import assemble
from archiver.exhibits.seam import matter_records
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.exhibits.signing import SigningMaterial
    from archiver.ports import VerifyingStore
    from archiver.provenance.keys import PassphraseSource

MAX_RECORDS = 200


@dataclass(frozen=True, slots=True)
class ExhibitFile(Report):
    """One exhibit PDF of a set: where it is, what it shows and its Bates range."""

    label: str
    record_id: str
    file: str
    pages: int
    bates_first: str
    bates_last: str
    pdf_sha256: str
    source: str  # pdf | captured-pdf | screenshot | text
    note: str


@dataclass(frozen=True, slots=True)
class ExhibitSet(Report):
    """What ``archiver exhibit`` made: the PDFs, signed by ``signer``, timestamped by ``tsa_url``."""

    matter: str
    out_dir: str
    bates_prefix: str
    exhibits: tuple[ExhibitFile, ...]
    signer: str
    tsa_url: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """An exhibit as the matter records it (a row of ``exhibits``)."""

    label: str
    record_id: str
    pages: int
    prefix: str
    first: int
    last: int
    pdf_sha256: str
    source: str
    created_at: str


def recorded(d: Any, matter: str) -> list[Recorded]:
    rows = d.rows("SELECT label, record_id, pages, bates_prefix, bates_first, bates_last, pdf_sha256, source, "
                  "created_at FROM exhibits WHERE matter=? ORDER BY bates_prefix, bates_first", (matter,))
    return [Recorded(str(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4]), int(r[5]), str(r[6]), str(r[7]),
                     str(r[8])) for r in rows]


def exhibits_of(core: VerifyingStore, matter: str) -> list[Recorded]:
    with core.catalog.db() as d:
        return recorded(d, matter)


def next_label(label: str, existing: set[str]) -> str:
    """``Exhibit A`` → ``Exhibit B`` (… ``Z`` → ``AA``), ``Exhibit 7`` → ``Exhibit 8``, else ``label (2)``."""
    m = re.fullmatch(r"(.*?)(\d+)", label)
    if m:
        return f"{m.group(1)}{int(m.group(2)) + 1}"
    m = re.fullmatch(r"(.*?\s|)([A-Z]+)", label)
    if m:
        letters = m.group(2)
        n = 0
        for ch in letters:
            n = n * 26 + (ord(ch) - 64)
        n += 1
        out = ""
        while n:
            n, rem = divmod(n - 1, 26)
            out = chr(65 + rem) + out
        return m.group(1) + out
    i = 2
    while f"{label} ({i})" in existing:
        i += 1
    return f"{label} ({i})"


def _file_name(label: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "exhibit")[:80] + ".pdf"


def overlap(existing: list[Recorded], prefix: str, first: int, last: int) -> Recorded | None:
    """The first earlier exhibit whose Bates numbers meet ``first..last``: of the same prefix by range,
    of another by the numbers as printed (``ABC`` 1000001 and ``ABC1`` 1 both stamp ``ABC1000001``)."""
    mine: set[str] | None = None
    for e in existing:
        if e.prefix == prefix:
            if e.first <= last and first <= e.last:
                return e
            continue
        if not (e.prefix.startswith(prefix) or prefix.startswith(e.prefix)):
            continue  # neither prefix extends the other: no printed number can be the same
        if mine is None:
            mine = {assemble.bates(prefix, n) for n in range(first, last + 1)}
        if any(assemble.bates(e.prefix, n) in mine for n in range(e.first, e.last + 1)):
            return e
    return None


def _facts(core: VerifyingStore, rid: str, label: str, matter: str, source: str, note: str) -> assemble.Facts:
    from archiver.cite import citation_data, render
    from archiver.cite.styles import common_name

    summary = core.resolve(rid)
    m = core.manifest(rid)
    s = m.subject
    prov: list[tuple[str, str]] = [("Record ID", rid), ("URL", s.url)]
    if s.final_url != s.url:
        prov.append(("Final URL", s.final_url))
    prov += [("Entity", s.entity or ""), ("Document", s.document or ""), ("Title", s.title or ""),
             ("Captured (UTC)", m.captured_at), ("HTTP", f"{m.http.status} {m.http.reason}".strip()),
             ("Content-Type", m.http.content_type or ""), ("Server IP", m.http.server_ip or "")]
    if m.http.tls:
        prov.append(("TLS", f"{m.http.tls.version} {m.http.tls.cipher}"))
    prov += [("Operator", " / ".join(x for x in (m.operator.name, m.operator.organization) if x)),
             ("Signed by", m.signature.key_id if m.signature else "UNSIGNED"),
             ("Tool", f"{m.tool.name} {m.tool.version}")]
    if m.previous:
        prov.append(("Previous version", m.previous.record_id))
    times = []
    for _sha, a in core.addenda(rid):
        if a is not None and a.timestamp is not None:
            t = a.timestamp
            times.append(f"genTime {t.gen_time} from {common_name(t.tsa_name)} ({t.tsa_url}), serial {t.serial}"
                         + (f", batch of {t.merkle.tree_size} (Merkle proof)" if t.merkle else ""))
    return assemble.Facts(label=label, matter=matter, record_id=rid, manifest_sha256=summary.manifest_sha256,
                          citation=render(citation_data(core, rid), "bluebook"), provenance=tuple(
                              (k, v) for k, v in prov if v),
                          artifacts=tuple((a.name, a.media_type, a.size, a.sha256) for a in m.artifacts),
                          trusted_time=tuple(times), source=source, source_note=note)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_set(core: VerifyingStore, record_ids: list[str], *, matter: str, out_dir: Path, actor: str,
             passphrase: PassphraseSource, label: str | None = None, bates_prefix: str | None = None,
             bates_start: int | None = None, material: SigningMaterial | None = None) -> ExhibitSet:
    """Make, sign and record one exhibit PDF per record (see the module docstring for the order)."""
    from archiver.cite import certificate
    from archiver.exhibits import signing
    from store.custody import Event
    from store.fsutil import atomic_write_bytes

    if not record_ids:
        raise UsageError("name at least one record to make an exhibit of")
    if len(record_ids) > MAX_RECORDS:
        raise UsageError(f"at most {MAX_RECORDS} records in one exhibit set")
    if bates_start is not None and bates_start < 1:
        raise UsageError("--bates-start must be 1 or more")
    in_matter = matter_records(core, matter)
    ids = [s.record_id for s in core.resolve_many(list(dict.fromkeys(record_ids)))]
    outside = [r for r in ids if r not in in_matter]
    if outside:
        raise UsageError(f"record(s) {', '.join(outside)} are not in matter {matter!r}",
                         hint="add them to the matter first")
    urls = [str(u) for u in core.config.get("tsa.urls")]  # type: ignore[union-attr]
    if not urls:
        raise UsageError("an exhibit PDF carries an RFC 3161 document timestamp, and no TSA is configured",
                         hint="archiver config set tsa.urls https://tsa.example/tsr")
    if material is None:
        material = signing.store_material(core, passphrase)
    existing = exhibits_of(core, matter)
    prefix = assemble.check_prefix(bates_prefix if bates_prefix is not None else
                                   (re.sub(r"[^A-Z0-9]", "", matter.upper())[:10] or "EX"))
    same = [e for e in existing if e.prefix == prefix]
    start = bates_start if bates_start is not None else (max((e.last for e in same), default=0) + 1)
    taken = {e.label for e in existing}
    labels: list[str] = []
    current = (label or "").strip() or None
    if current is None:
        current = f"Exhibit {len(existing) + 1}"
    if len(current) > 80 or any(ord(c) < 32 for c in current):
        raise UsageError("an exhibit label is one line of at most 80 characters")
    for _ in ids:
        if current in taken or current in labels:
            raise UsageError(f"matter {matter!r} has an exhibit labelled {current!r} already",
                             hint="pass another --label")
        labels.append(current)
        current = next_label(current, taken | set(labels))
    out_dir = Path(out_dir)
    files = [out_dir / _file_name(lb) for lb in labels]
    if len({f.name for f in files}) != len(files):
        raise UsageError("two exhibit labels give the same file name", hint="pass another --label")
    there = [str(f) for f in files if f.exists()]
    if there:
        raise UsageError(f"{there[0]} exists: an exhibit never replaces a file", hint="choose another -o DIR")

    declarant = core.config.str_("operator.name") or core.default_actor()
    made: list[tuple[str, str, bytes, int, int, str, str]] = []  # label, rid, pdf, first, pages, source, note
    n = start
    for lb, rid in zip(labels, ids, strict=True):
        blobs = core.catalog.record_blobs(rid)
        media = {a.name: a.media_type for a in core.manifest(rid).artifacts}
        shown, source, note = assemble.captured(core, rid, blobs, media)
        cert = certificate.to_pdf(certificate.build(core, [rid], declarant=declarant,
                                                    organization=core.config.str_("operator.organization")))
        cover = assemble.cover(_facts(core, rid, lb, matter, source, note))
        data, pages = assemble.stamp([cover, shown, cert], label=lb, footer=f"Matter {matter} · Record {rid}",
                                     prefix=prefix, first=n)
        made.append((lb, rid, data, n, pages, source, note))
        n += pages
    last = n - 1
    clash = overlap(existing, prefix, start, last)
    if clash is not None:
        raise UsageError(f"Bates numbers {assemble.bates(prefix, start)}–{assemble.bates(prefix, last)} would overlap "
                         f"{clash.label} of matter {matter!r} ({assemble.bates(clash.prefix, clash.first)}–"
                         f"{assemble.bates(clash.prefix, clash.last)})",
                         hint=f"start at {max((e.last for e in same), default=0) + 1} (--bates-start) or use "
                              "another --bates-prefix")

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    results: list[ExhibitFile] = []
    rows: list[tuple[Any, ...]] = []
    now = _now()
    try:
        for (lb, rid, data, first, pages, source, note), path in zip(made, files, strict=True):
            signed = signing.sign_pdf(data, material, tsa_url=urls[0],
                                      timeout=float(core.config.get("tsa.timeout") or 30),  # type: ignore[arg-type]
                                      reason=f"{lb} of matter {matter}: record {rid}")
            sha = core.blobs.put_bytes(signed)
            if path.exists():
                raise UsageError(f"{path} exists: an exhibit never replaces a file")
            atomic_write_bytes(path, signed)
            written.append(path)
            results.append(ExhibitFile(label=lb, record_id=rid, file=str(path), pages=pages,
                                       bates_first=assemble.bates(prefix, first),
                                       bates_last=assemble.bates(prefix, first + pages - 1),
                                       pdf_sha256=sha, source=source, note=note))
            rows.append((matter, lb, rid, pages, prefix, first, first + pages - 1, sha, source, now))

        def prepare(d: Any) -> tuple[list[Event], Any, None]:
            again = recorded(d, matter)
            hit = overlap(again, prefix, start, last)
            if hit is not None:
                raise UsageError(f"Bates numbers {assemble.bates(prefix, start)}–{assemble.bates(prefix, last)} "
                                 f"would overlap {hit.label} of matter {matter!r}, recorded meanwhile")
            dup = {e.label for e in again} & set(labels)
            if dup:
                raise UsageError(f"matter {matter!r} has an exhibit labelled {sorted(dup)[0]!r} already")
            d.many("INSERT INTO exhibits (matter, label, record_id, pages, bates_prefix, bates_first, bates_last, "
                   "pdf_sha256, source, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            return [Event("exhibit", detail={"matter": matter, "label": r.label, "record_id": r.record_id,
                                             "bates": f"{r.bates_first}-{r.bates_last}", "pages": str(r.pages),
                                             "pdf_sha256": r.pdf_sha256, "shows": r.source,
                                             "to": str(Path(r.file).resolve())})
                    for r in results], None, None
        core.ledger.run(prepare, actor=actor)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    from asn1crypto import x509 as ax

    signer = str(ax.Certificate.load(material.chain_der[0]).subject.human_friendly)
    return ExhibitSet(matter=matter, out_dir=str(out_dir), bates_prefix=prefix, exhibits=tuple(results),
                      signer=signer, tsa_url=urls[0])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["ExhibitFile", "ExhibitSet", "Recorded", "exhibits_of", "make_set", "next_label", "overlap",
           "sha256_file"]
