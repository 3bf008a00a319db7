"""What a replay of a bundle shows: the signed CDXJ index (``indexes/index.cdxj``) checked against
the WARCs it points into.

ReplayWeb.page, pywb and every WACZ reader find a URL through the index, not by scanning the WARC. A
WARC can hold two responses for the page URL (a browser capture fetches its own URL again; a forger
plants one), and the manifest's content hash matches only one. Checking "some response matches" would
call VERIFIED a bundle whose replay shows the other one, so this check follows the index as a reader
does: for each record's page, the line a reader picks (the page URL's line closest in time to the
page's ``ts`` in ``pages.jsonl``, first in index order on a tie) must point at a WARC record that
really is that URL's response and whose decoded body is the content the manifest signs. Every other
line must point at a record boundary whose URI, date and payload digest are the ones it claims.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, cast

from archiver.decode import decode_stream
from archiver.errors import StoreUnavailableError
from archiver.records import Category, Check, Manifest, Status

if TYPE_CHECKING:
    from archiver.bundle.source import BundleIndex
    from archiver.verify.artifacts import WarcLimits

INDEX = "indexes/index.cdxj"
MAX_LINES = 1_000_000  # the index member is already capped in bytes; this bounds the work per line
MAX_LINE = 64 << 10  # a CDXJ line holds a URL and a few fields: a longer one is not parsed
MAX_PAGE_LINES = 16  # lines for one record's page (a genuine bundle has one)


@dataclass(frozen=True, slots=True)
class Line:
    """One CDXJ line as a reader uses it."""

    number: int
    key: str
    ts: str
    url: str
    filename: str
    offset: int
    length: int
    digest: str


@dataclass(frozen=True, slots=True)
class WarcEntry:
    """A record of a WARC as it actually lies in the file."""

    offset: int
    length: int
    rec_type: str
    uri: str
    ts: str
    digest: str


@dataclass
class ReplayIndex:
    """The index of one bundle, parsed once and checked against the WARCs once (shared by every
    record of the bundle: the per-record check only picks its page's line)."""

    lines: list[Line]
    problems: list[tuple[Line | None, str]]  # lines that do not point where they claim (None: the whole index)


def _ts(date: str) -> str:
    return date.replace("-", "").replace(":", "").replace("T", "")[:14]


def _parse(data: bytes) -> tuple[list[Line], list[tuple[Line | None, str]]]:
    from archiver.bundle.export import surt

    lines: list[Line] = []
    problems: list[tuple[Line | None, str]] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [(None, "the index is not UTF-8")]
    for n, raw in enumerate(text.splitlines(), 1):
        if n > MAX_LINES:
            problems.append((None, f"the index has more than {MAX_LINES:,} lines"))
            break
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE:
            problems.append((None, f"index line {n} is {len(raw):,} characters long (at most {MAX_LINE:,})"))
            continue
        parts = raw.split(" ", 2)
        try:
            if len(parts) != 3:
                raise ValueError("not 'key timestamp json'")
            obj = json.loads(parts[2])
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            line = Line(n, parts[0], parts[1], str(obj["url"]), str(obj["filename"]), int(obj["offset"]),
                        int(obj["length"]), str(obj.get("digest", "-")))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            problems.append((None, f"index line {n} is unreadable ({str(exc)[:80]})"))
            continue
        if line.offset < 0 or line.length <= 0:
            problems.append((line, f"index line {n} has offset {line.offset} and length {line.length}"))
            continue
        try:
            key = surt(line.url)
        except ValueError as exc:  # a port that is not a number, a malformed host
            problems.append((None, f"index line {n} names an unreadable URL ({str(exc)[:60]})"))
            continue
        if key != line.key:
            # readers look a URL up by this key: a line keyed to one URL that names another is
            # how a replay would be sent to the wrong page
            problems.append((None, f"index line {n} is keyed {line.key[:80]!r} but names {line.url[:80]!r}"))
            continue
        lines.append(line)
    return lines, problems


def _entries(fh: BinaryIO, limits: WarcLimits) -> Iterator[WarcEntry]:
    """Every record of a WARC with where it lies, reading each block once, within the WARC caps."""
    from archiver.verify.artifacts import records, warc_iterator

    it = warc_iterator(fh)  # lines bounded, nothing but blank lines after a block; records() charges and counts
    for rec in records(it, limits):
        while rec.raw_stream.read(1 << 16):
            pass
        it.read_to_end(rec)
        offset, length = it.member_info
        head = rec.rec_headers
        yield WarcEntry(int(offset), int(length), str(rec.rec_type), head.get_header("WARC-Target-URI") or "",
                        _ts(head.get_header("WARC-Date") or ""), head.get_header("WARC-Payload-Digest") or "-")


def load(ix: BundleIndex, limits: WarcLimits) -> ReplayIndex | None:
    """The bundle's index checked line by line against the WARCs (None: the bundle has no intact
    index, which ``bundle.resources`` reports when it is listed but altered)."""
    from archiver.bundle.read import BundleWorkExceeded

    if ix.replay is not None:
        return ix.replay
    if INDEX not in ix.declared or ix.actual.get(INDEX) != ix.declared[INDEX]:
        return None
    lines, problems = _parse(ix.bundle.read(INDEX))
    by_file: dict[str, list[Line]] = {}
    for line in lines:
        by_file.setdefault(line.filename, []).append(line)
    for filename, flines in sorted(by_file.items()):
        path = f"archive/{filename}"
        if path not in ix.declared:
            problems.extend((ln, f"index line {ln.number} points into {filename[:80]!r}, which the bundle "
                                 "does not list") for ln in flines)
            continue
        if ix.actual.get(path) != ix.declared[path]:
            continue  # altered or missing: bundle.resources says so
        try:
            with ix.bundle.open(path) as fh:
                table = {e.offset: e for e in _entries(fh, limits)}
        except StoreUnavailableError:
            raise
        except BundleWorkExceeded:  # the bundle's budget is spent: refused whole
            raise
        except Exception as exc:  # warcio on hostile bytes raises more than its own errors
            why = f"{filename} could not be read to check the index: {str(exc)[:80]}"
            problems.extend((ln, why) for ln in flines[:1])
            continue
        for line in flines:
            entry = table.get(line.offset)
            why = ("does not start a WARC record" if entry is None else
                   f"has length {line.length}, the record {entry.length}" if entry.length != line.length else
                   f"names {line.url[:80]!r}, the record is {entry.uri[:80]!r}" if entry.uri != line.url else
                   f"is dated {line.ts}, the record {entry.ts}" if entry.ts != line.ts else
                   f"claims digest {line.digest}, the record {entry.digest}" if line.digest not in ("-", entry.digest)
                   else "points at a record that is not a response" if entry.rec_type not in ("response", "resource",
                                                                                               "revisit")
                   else "")
            if why:
                problems.append((line, f"index line {line.number} ({filename} offset {line.offset}) {why}"))
    ix.replay = ReplayIndex(lines, problems)
    return ix.replay


def _decoded_sha256(ix: BundleIndex, line: Line, manifest: Manifest) -> str:
    from archiver.verify.artifacts import warc_iterator

    content = manifest.artifact("content")
    cap = max(content.size if content else 0, 1) + 1
    with ix.bundle.open(f"archive/{line.filename}") as fh:
        fh.seek(line.offset)
        for rec in warc_iterator(fh):
            sha, _ = decode_stream(rec.raw_stream, cast(BinaryIO, _Null()), manifest.http.content_encoding, cap)
            return sha
    return ""


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        return None


def index_check(ix: BundleIndex, record_id: str, manifest: Manifest, limits: WarcLimits) -> Check:
    """The index line a reader follows for this record's page leads to the content the manifest signs."""
    name = "bundle.index"
    replay = load(ix, limits)
    if replay is None:
        return Check(name, Status.SKIPPED, Category.COMPLETENESS,
                     f"no intact {INDEX} in the bundle: a replay cannot find the page (bundle.resources says why)")
    own = f"{record_id}.warc.gz"
    page = manifest.subject.final_url
    # every line for the page in this record's WARC: readers differ in which one they pick (the one
    # closest to a page list's ts, the latest, the first), so each must lead to the signed content;
    # a WARC may hold another response for the page (a browser fetching its own URL again), which the
    # exporter leaves out of the index, where no reader can be sent to it
    candidates = [ln for ln in replay.lines if ln.url == page and ln.filename == own]
    mine = [(ln, why) for ln, why in replay.problems if ln is None or ln.filename == own or ln.url == page]
    bad = {ln.number for ln, _ in mine if ln is not None}
    problems = [why for _, why in mine]
    content = manifest.artifact("content")
    if not candidates:
        problems.append(f"the index has no line for the page {page[:100]!r} in this record's WARC: a replay "
                        "cannot show it")
    elif content is not None:
        seen: dict[int, str] = {}
        for ln in candidates[:MAX_PAGE_LINES]:
            if ln.number in bad:
                continue
            if ln.offset not in seen:
                try:
                    seen[ln.offset] = _decoded_sha256(ix, ln, manifest)
                except StoreUnavailableError:
                    raise
                except Exception as exc:  # warcio on hostile bytes: any error is an undecodable response
                    seen[ln.offset] = f"undecodable ({str(exc)[:60]})"
            got = seen[ln.offset]
            if got != content.sha256:
                problems.append(f"index line {ln.number} sends a replay of the page to offset {ln.offset}, a "
                                f"response whose content is {got[:24]}…, not the signed content "
                                f"sha256:{content.sha256[:16]}…")
        if len(candidates) > MAX_PAGE_LINES:
            problems.append(f"{len(candidates):,} index lines for the page in this WARC (at most {MAX_PAGE_LINES})")
    if not problems:
        return Check(name, Status.PASS, Category.INTEGRITY,
                     f"every index line for the page ({len(candidates)}) leads to the response whose content the "
                     f"manifest signs; {len(replay.lines)} index line(s) point where they claim")
    return Check(name, Status.FAIL, Category.INTEGRITY, "; ".join(problems[:5]))
