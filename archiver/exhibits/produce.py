"""Productions: a matter's exhibits handed over in the forms the other side's tools read.

* ``loadfile``: ``NATIVES/<BEGBATES>.<ext>`` (the record's ``content``, byte for byte),
  ``TEXT/<BEGBATES>.txt`` (``main-text``, else ``text``), ``IMAGES/<VOL>/<BATES>.jpg`` (every page of the
  exhibit PDF, rendered by poppler's ``pdftoppm`` at 150 dpi in colour: review platforms take JPEG page
  images, and the screenshots and browser PDFs are in colour), ``PDF/<BEGBATES>.pdf`` (the signed exhibit
  itself), and ``DATA/<matter>.dat`` (Concordance) and ``DATA/<matter>.opt`` (Opticon), see ``loadfile``.
* ``bagit``: an RFC 8493 bag (``bagit.txt``, ``bag-info.txt`` naming the matter,
  ``manifest-sha256.txt``, ``tagmanifest-sha256.txt``) whose payload is ``data/bundles/<ID>.wacz`` (a
  WACZ of each record, ``bundle.export``: each a logged ``export``) and ``data/exhibits/*.pdf``. Written
  here rather than by the ``bagit`` package, which changes the process's working directory while it
  works (not safe in a server); the tests validate our bags with that package.
* ``csv``: ``index.csv`` (one row per exhibit) and ``exhibits/*.pdf``.

Everything is written into a temporary directory beside OUT and renamed into place at the end, so OUT
is either absent or complete; an OUT that exists is refused. The production is one ``production``
custody entry (and a row of ``productions``); the store's objects are only read.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import mimetypes
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import UsageError
from archiver.exhibits import loadfile
from archiver.exhibits.assemble import bates
from archiver.exhibits.seam import matter_records
from archiver.exhibits.sets import Recorded, exhibits_of
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import VerifyingStore
    from archiver.provenance.keys import PassphraseSource

FORMATS = ("loadfile", "bagit", "csv")
VOLUME = "VOL001"
DPI = 150
DAT_FIELDS = ("BEGBATES", "ENDBATES", "PAGECOUNT", "EXHIBIT", "RECORDID", "URL", "ENTITY", "DOCUMENT", "TITLE",
              "CAPTURED", "SHA256", "MANIFESTSHA256", "TRUSTEDTIME", "CUSTODIAN", "NATIVEPATH", "TEXTPATH", "PDFPATH")
CSV_FIELDS = ("exhibit", "bates_first", "bates_last", "pages", "record_id", "url", "entity", "document", "captured",
              "content_sha256", "manifest_sha256", "trusted_time", "custodian", "pdf_file", "pdf_sha256", "shows")


@dataclass(frozen=True, slots=True)
class ProductionReport(Report):
    """What ``archiver produce`` wrote."""

    matter: str
    format: str
    out_dir: str
    exhibits: int
    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class _Row:
    """One exhibit with what every format says of its record."""

    ex: Recorded
    begin: str
    end: str
    url: str
    entity: str
    document: str
    title: str
    captured: str
    content_sha256: str
    manifest_sha256: str
    trusted_time: str
    custodian: str
    content_type: str


def _rows(core: VerifyingStore, exhibits: list[Recorded]) -> list[_Row]:
    out = []
    for e in exhibits:
        m = core.manifest(e.record_id)
        summary = core.resolve(e.record_id)
        times = [a.timestamp.gen_time for _, a in core.addenda(e.record_id) if a is not None and a.timestamp]
        content = next((a for a in m.artifacts if a.name == "content"), None)
        out.append(_Row(e, bates(e.prefix, e.first), bates(e.prefix, e.last), m.subject.url, m.subject.entity or "",
                        m.subject.document or "", m.subject.title or "", m.captured_at,
                        content.sha256 if content else "", summary.manifest_sha256, times[0] if times else "",
                        m.operator.name or "", content.media_type if content else ""))
    return out


def _ext(media_type: str) -> str:
    base = media_type.split(";")[0].strip().lower()
    known = {"text/html": ".html", "application/pdf": ".pdf", "text/plain": ".txt", "application/json": ".json"}
    return known.get(base) or mimetypes.guess_extension(base) or ".bin"


def _copy_blob(core: VerifyingStore, sha: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with core.blobs.open(sha) as src, dest.open("wb") as fh:
        shutil.copyfileobj(src, fh, 1 << 20)


def _safe_name(label: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "exhibit")[:80]


def _pdf_names(rows: list[_Row]) -> list[str]:
    """Each exhibit's PDF file name in a production, from its label; labels the matter keeps apart but
    that give one file name ('Exhibit A', 'Exhibit-A', made in two sets) get their first Bates number
    too, so no exhibit's PDF replaces another's."""
    names: list[str] = []
    for r in rows:
        name = _safe_name(r.ex.label)
        if f"{name}.pdf".lower() in {n.lower() for n in names}:
            name = f"{name}-{r.begin}"
        names.append(name + ".pdf")
    return names


def _loadfile(core: VerifyingStore, matter: str, rows: list[_Row], tmp: Path) -> None:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        raise UsageError("page images need pdftoppm, which is not installed", hint="apt install poppler-utils")
    dat_rows: list[list[str]] = []
    pages: list[tuple[str, str, str, bool, int]] = []
    for r in rows:
        blobs = core.catalog.record_blobs(r.ex.record_id)
        native = f"NATIVES/{r.begin}{_ext(r.content_type)}"
        _copy_blob(core, blobs["content"], tmp / native)
        text_sha = blobs.get("main-text") or blobs.get("text")
        text_path = ""
        if text_sha:
            text_path = f"TEXT/{r.begin}.txt"
            _copy_blob(core, text_sha, tmp / text_path)
        pdf_path = f"PDF/{r.begin}.pdf"
        _copy_blob(core, r.ex.pdf_sha256, tmp / pdf_path)
        work = tmp / "IMAGES" / ".render"
        work.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([pdftoppm, "-jpeg", "-r", str(DPI), str(tmp / pdf_path), str(work / "p")], check=True,
                           capture_output=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"pdftoppm could not render {r.ex.label}: {exc}") from exc
        rendered = sorted(work.glob("p-*.jpg"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        if len(rendered) != r.ex.pages:
            raise UsageError(f"pdftoppm made {len(rendered)} image(s) of {r.ex.label}, which has {r.ex.pages} pages")
        for i, img in enumerate(rendered):
            key = bates(r.ex.prefix, r.ex.first + i)
            rel = f"IMAGES/{VOLUME}/{key}.jpg"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(img, tmp / rel)
            pages.append((key, VOLUME, rel.replace("/", "\\"), i == 0, r.ex.pages))
        work.rmdir()
        dat_rows.append([r.begin, r.end, str(r.ex.pages), r.ex.label, r.ex.record_id, r.url, r.entity, r.document,
                         r.title, r.captured, r.content_sha256, r.manifest_sha256, r.trusted_time, r.custodian,
                         native.replace("/", "\\"), text_path.replace("/", "\\"), pdf_path.replace("/", "\\")])
    data = tmp / "DATA"
    data.mkdir()
    name = _safe_name(matter)
    (data / f"{name}.dat").write_bytes(loadfile.dat(DAT_FIELDS, dat_rows))
    (data / f"{name}.opt").write_bytes(loadfile.opt(pages))


def _cell(v: str) -> str:
    """A spreadsheet runs a cell that starts with = + - @ as a formula: such values get a leading '."""
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v


def _csv(core: VerifyingStore, rows: list[_Row], tmp: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_FIELDS)
    for r, name in zip(rows, _pdf_names(rows), strict=True):
        pdf = f"exhibits/{name}"
        _copy_blob(core, r.ex.pdf_sha256, tmp / pdf)
        w.writerow([_cell(v) for v in (r.ex.label, r.begin, r.end, str(r.ex.pages), r.ex.record_id, r.url, r.entity,
                                       r.document, r.captured, r.content_sha256, r.manifest_sha256, r.trusted_time,
                                       r.custodian, pdf, r.ex.pdf_sha256, r.ex.source)])
    (tmp / "index.csv").write_text(buf.getvalue(), "utf-8")


def _sha256(path: Path) -> str:
    from store.blobs import hash_file

    return hash_file(path)[0]


def _bag_path(rel: str) -> str:
    """RFC 8493 §2.1.3: CR, LF and % in a manifest path are percent-encoded."""
    return rel.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _one_line(v: str) -> str:
    return " ".join(v.split())


def _bagit(core: VerifyingStore, matter: str, rows: list[_Row], tmp: Path, *, actor: str,
           passphrase: PassphraseSource) -> None:
    from archiver._version import __version__
    from archiver.bundle.export import export

    payload = tmp / "data"
    (payload / "bundles").mkdir(parents=True)
    for rid in dict.fromkeys(r.ex.record_id for r in rows):
        export(core, [rid], payload / "bundles" / f"{rid}.wacz", passphrase=passphrase, actor=actor)
    for r, name in zip(rows, _pdf_names(rows), strict=True):
        _copy_blob(core, r.ex.pdf_sha256, payload / "exhibits" / name)
    files = sorted(p for p in payload.rglob("*") if p.is_file())
    manifest = "".join(f"{_sha256(p)}  {_bag_path(p.relative_to(tmp).as_posix())}\n" for p in files)
    octets = sum(p.stat().st_size for p in files)
    (tmp / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n", "utf-8")
    info = [("Source-Organization", core.config.str_("operator.organization")),
            ("Contact-Name", core.config.str_("operator.name")),
            ("External-Identifier", matter),
            ("External-Description", f"Exhibits of matter {matter} ({len(rows)} signed exhibit PDF(s)) and a WACZ "
                                     "evidence bundle of each record, verifiable with `archiver verify`"),
            ("Bagging-Date", dt.date.today().isoformat()),
            ("Bag-Software-Agent", f"archiver {__version__}"),
            ("Payload-Oxum", f"{octets}.{len(files)}"),
            ("Archiver-Matter", matter)]
    (tmp / "bag-info.txt").write_text("".join(f"{k}: {_one_line(v)}\n" for k, v in info if v), "utf-8")
    (tmp / "manifest-sha256.txt").write_text(manifest, "utf-8")
    tags = "".join(f"{_sha256(tmp / n)}  {n}\n" for n in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt"))
    (tmp / "tagmanifest-sha256.txt").write_text(tags, "utf-8")


def produce(core: VerifyingStore, matter: str, out_dir: Path, *, fmt: str, actor: str,
            passphrase: PassphraseSource) -> ProductionReport:
    """Write the production of ``matter``'s exhibits into ``out_dir`` (which must not exist)."""
    from store.custody import Event

    if fmt not in FORMATS:
        raise UsageError(f"unknown production format {fmt!r}", hint="loadfile, bagit or csv")
    out_dir = Path(out_dir)
    if out_dir.exists() or out_dir.is_symlink():
        raise UsageError(f"{out_dir} exists: a production is written into a new directory",
                         hint="name a directory that does not exist yet")
    matter_records(core, matter)
    exhibits = exhibits_of(core, matter)
    if not exhibits:
        raise UsageError(f"matter {matter!r} has no exhibits to produce", hint="archiver exhibit ID… --matter …")
    rows = _rows(core, exhibits)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        if fmt == "loadfile":
            _loadfile(core, matter, rows, tmp)
        elif fmt == "csv":
            _csv(core, rows, tmp)
        else:
            _bagit(core, matter, rows, tmp, actor=actor, passphrase=passphrase)
        files = [p for p in tmp.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        if out_dir.exists():
            raise UsageError(f"{out_dir} appeared while the production was written; nothing was replaced")
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    where = str(out_dir.resolve())

    def prepare(d: Any) -> tuple[list[Event], Any, None]:
        d.run("INSERT INTO productions (matter, format, out_path, exhibits, created_at) VALUES (?,?,?,?,?)",
              (matter, fmt, where, len(exhibits), now))
        return [Event("production", detail={"matter": matter, "format": fmt, "to": where,
                                            "exhibits": str(len(exhibits)), "files": str(len(files)),
                                            "bates": ", ".join(f"{r.begin}-{r.end}" for r in rows)})], None, None
    core.ledger.run(prepare, actor=actor)
    return ProductionReport(matter=matter, format=fmt, out_dir=str(out_dir), exhibits=len(exhibits), files=len(files),
                            bytes=size)


__all__ = ["CSV_FIELDS", "DAT_FIELDS", "FORMATS", "ProductionReport", "produce"]
