"""Static publishing: the public side as plain files, for any static host (an S3 website bucket, GitHub
Pages, nginx) with no Python running. ``archiver publish --static OUT`` runs this module as a process of
its own (``python -m archiver.web.static_site``), as ``serve`` runs the server: the CLI never imports
the web front-end.

It writes the very bytes the server renders — the record pages and their JSON twins through
``public.render_record`` and the collection pages through ``collection_pages.render_collection`` —
with relative links only, so the site works from any sub-path::

    index.html                      every published record and collection, and the TimeMaps
    static/app.css, static/app.js   our stylesheet and script
    r/<ID>/index.html  r/<ID>.json  r/<ID>/bundle.wacz  r/<ID>/screenshot.png
    c/<name>/index.html  c/<name>.json  c/<name>.wacz
    timemap/<sha256(URL)[:16]>.link   RFC 7089 TimeMaps (application/link-format) of each original URL

Only public records are written (a record named on the command line that is not public is refused),
and a published collection lists only the records the export holds. Everything is written into a
directory beside OUT and renamed into place at the end, so OUT is either the old site or the whole
new one, never half of it. An OUT that exists and is not empty is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from archiver.errors import ArchiverError, UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.api import Archive
    from archiver.records import RecordSummary
    from archiver.replayassets import ReplayAssets

TIMEMAP_DIR = "timemap"
#: ReplayWeb.page's files a static site carries, as the replay origin serves them (the licence and
#: SOURCE.json naming the version and where its source is, as the AGPL asks).
REPLAY_FILES = ("ui.js", "LICENSE", "package.json", "SOURCE.json")


@dataclass(frozen=True, slots=True)
class StaticSite(Report):
    """What ``publish --static`` wrote."""

    out: str
    records: tuple[str, ...]
    collections: tuple[str, ...]
    timemaps: int
    files: int
    bytes: int
    replay: bool


def static_hrefs(rid: str, what: str) -> str:
    """Links of a record page at ``r/<X>/index.html`` to the files of record ``rid`` (module level: the
    renderer caches by it)."""
    return {"self": f"../{rid}/", "json": f"../{rid}.json", "bundle": f"../{rid}/bundle.wacz",
            "screenshot": f"../{rid}/screenshot.png", "static": "../../static"}[what]


def check_out(out: Path, *, force: bool, store_root: Path) -> None:
    from archiver.publication import check_static_out

    check_static_out(out, force=force, store_root=store_root)


def _ids(archive: Archive, record_ids: list[str] | None) -> list[RecordSummary]:
    public = archive.publications.public_ids()
    if record_ids is None:
        chosen = list(archive.catalog.get_many(sorted(public)).values())
    else:
        chosen = archive.resolve_many(list(dict.fromkeys(record_ids)))
        private = [s.record_id for s in chosen if s.record_id not in public]
        if private:
            raise UsageError(f"record {private[0]} is not public: a static site holds public records only",
                             hint=f"`archiver publish {private[0]}` first, or leave it out")
    if not chosen:
        raise UsageError("no public record to publish", hint="`archiver publish ID…` makes records public first")
    return sorted(chosen, key=lambda s: (s.captured_at, s.record_id))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _env_passphrase() -> str | None:
    return os.environ.get("ARCHIVER_KEY_PASSPHRASE") or None


def installed_replay(archive: Archive) -> ReplayAssets | None:
    """ReplayWeb.page's files if ``archiver replay setup`` fetched them for this store (checked
    against their SOURCE.json by ``replayassets.installed``), else None."""
    from archiver import replayassets

    return replayassets.installed(replayassets.cache_dir(archive.config))


def build(archive: Archive, out: Path, record_ids: list[str] | None, *, force: bool = False,
          replay: ReplayAssets | None = None) -> StaticSite:
    """Write the static site of ``record_ids`` (all public records when None) at ``out``; with
    ``replay`` (ReplayWeb.page's files) the record pages replay the captured page, else they show the
    screenshot and say how to enable replay."""
    out = Path(os.path.abspath(out))
    check_out(out, force=force, store_root=archive.root)
    summaries = _ids(archive, record_ids)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp.chmod(0o755)
        site = _fill(archive, tmp, summaries, replay)
        from archiver.publication import STATIC_MARKER

        (tmp / STATIC_MARKER).write_text("written by `archiver publish --static`; --force may replace this "
                                         "directory whole\n")
        _swap(tmp, out, force=force, store_root=archive.root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = [p for p in out.rglob("*") if p.is_file()]
    return replace(site, out=str(out), files=len(files), bytes=sum(p.stat().st_size for p in files))


def _swap(tmp: Path, out: Path, *, force: bool, store_root: Path) -> None:
    """Put the finished site at ``out`` with renames only (the check is made again: it may have changed)."""
    check_out(out, force=force, store_root=store_root)
    if out.is_dir():
        old = out.with_name(f".{out.name}.old-{secrets.token_hex(4)}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def _fill(archive: Archive, root: Path, summaries: list[RecordSummary], replay: ReplayAssets | None) -> StaticSite:
    from archiver import memento
    from archiver.publication import public_bundle
    from archiver.web.collection_pages import Links, json_bytes, render_collection
    from archiver.web.deps import WEB_DIR
    from archiver.web.public import render_record

    for f in sorted((WEB_DIR / "static").iterdir()):
        if f.is_file():
            _write(root / "static" / f.name, f.read_bytes())
    written: list[RecordSummary] = []
    for s in summaries:
        rid = s.record_id
        made = render_record(archive, rid, hrefs=static_hrefs, replay_url="../../replay" if replay else None)
        if made is None:  # unpublished while we were writing: left out, as the server would
            continue
        _write(root / "r" / rid / "index.html", made.html)
        _write(root / "r" / f"{rid}.json", made.json)
        path, _sha = public_bundle(archive, rid)
        _write(root / "r" / rid / "bundle.wacz", path.read_bytes())
        if made.screenshot_sha256:
            _write(root / "r" / rid / "screenshot.png", archive.blobs.read_bytes(made.screenshot_sha256))
        written.append(s)
    if replay is not None:
        _write_replay(archive, root / "replay", replay, written)
    held = {s.record_id for s in written}
    cols: list[tuple[str, str, int]] = []
    for name in archive.collections.published():
        view = archive.collections.public_view(name, only=held)
        if view is None or not view.items:
            continue
        dest = root / "c" / f"{name}.wacz"
        if view.bundle is not None:
            made_bundle = archive.collections.bundle(name, [i.record_id for i in view.items])
            assert made_bundle is not None
            _write(dest, made_bundle[0].read_bytes())
        else:  # the export holds some of its public records only: a bundle of exactly those
            from archiver.bundle.export import export
            from archiver.collections import PublicBundle

            dest.parent.mkdir(parents=True, exist_ok=True)
            result = export(archive, [i.record_id for i in view.items], dest, passphrase=_env_passphrase,
                            actor="public", log=False)
            view = replace(view, bundle=PublicBundle(filename=f"{name}.wacz", size=result.size, sha256=result.sha256))
        links = Links(static="../../static", json=f"../{name}.json", bundle=f"../{name}.wacz",
                      record_prefix="../../r/", record_suffix="/")
        _write(root / "c" / name / "index.html", render_collection(view, links).encode("utf-8"))
        _write(root / "c" / f"{name}.json", json_bytes(view))
        cols.append((name, view.title, len(view.items)))
    by_url: dict[str, list[RecordSummary]] = {}
    for s in written:
        by_url.setdefault(s.url, []).append(s)
    timemaps: list[tuple[str, str, int]] = []
    for url, group in sorted(by_url.items()):
        fname = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16] + ".link"
        ep = memento.StaticEndpoints(original=url, name=fname)
        _write(root / TIMEMAP_DIR / fname, memento.timemap(ep, memento.mementos_of(group)).encode("utf-8"))
        timemaps.append((url, f"{TIMEMAP_DIR}/{fname}", len(group)))
    _write(root / "index.html", _index(written, cols, timemaps).encode("utf-8"))
    return StaticSite(out="", records=tuple(s.record_id for s in written), collections=tuple(c[0] for c in cols),
                      timemaps=len(timemaps), files=0, bytes=0, replay=replay is not None)


def _write_replay(archive: Archive, folder: Path, replay: ReplayAssets, records: list[RecordSummary]) -> None:
    """ReplayWeb.page laid out as the replay origin serves it, with relative paths (so it works from a
    sub-path): ``replaywebpage/`` (ui.js, the licence, package.json, SOURCE.json), ``replay/`` (the
    service worker and the app page: the worker's scope) and ``embed/<ID>/`` for each record, which
    the record page frames (``_replay.html``, sandboxed). On a static host the replay shares the
    site's origin: the site has no session, cookie or form to take, but for a public deployment serve
    ``replay/`` from another registrable domain (see the README)."""
    import html

    for name in REPLAY_FILES:
        _write(folder / "replaywebpage" / name, replay.path(name).read_bytes())
    _write(folder / "replay" / "sw.js", replay.path("sw.js").read_bytes())
    _write(folder / "replay" / "index.html", (
        b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ReplayWeb.page</title>"
        b"<script src='../replaywebpage/ui.js'></script></head>"
        b"<body><replay-app-main></replay-app-main></body></html>\n"))
    for s in records:
        rid = s.record_id
        m = archive.manifest(rid)
        url = m.subject.final_url
        ts = "".join(c for c in m.captured_at if c.isdigit())[:14].ljust(14, "0")
        title = f"Replay of {url} as captured {m.captured_at} (record {rid})"
        page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                f"<title>{html.escape(title)}</title>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                "<script src='../../replaywebpage/ui.js'></script></head><body style='margin:0'>"
                f"<replay-web-page source='../../../r/{rid}/bundle.wacz' url='{html.escape(url, quote=True)}' "
                f"ts='{ts}' replayBase='../../replay/' embed='replay-with-info' "
                "swName='sw.js?useHashCheck=1&amp;serveIndex=1&amp;' noWebWorker "
                "style='display:block;width:100%;height:calc(100vh - 24px)'></replay-web-page>"
                f"<p style='font:12px sans-serif;margin:4px'>Replayed with <a href='{html.escape(replay.source)}' "
                f"target='_blank' rel='noopener'>ReplayWeb.page {html.escape(replay.version)}</a> "
                f"(<a href='../../replaywebpage/LICENSE'>{html.escape(replay.license)}</a>).</p></body></html>\n")
        _write(folder / "embed" / rid / "index.html", page.encode("utf-8"))


def _index(records: list[RecordSummary], cols: list[tuple[str, str, int]],
           timemaps: list[tuple[str, str, int]]) -> str:
    from archiver._version import __version__
    from archiver.web.collection_pages import template_env

    return str(template_env().get_template("public_index.html").render(
        records=records, collections=cols, timemaps=timemaps, version=__version__, title="Published evidence",
        hrefs={"static": "static", "json": ""}))


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="archiver publish --static",
                                     description="Write the public side as static files.")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--all-public", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("out", type=Path)
    parser.add_argument("record_ids", nargs="*")
    args = parser.parse_args(argv)
    try:
        from archiver.api import Archive

        if args.all_public == bool(args.record_ids):
            raise UsageError("name the records to publish, or --all-public (not both)")
        archive = Archive.open(args.store)
        site = build(archive, args.out, None if args.all_public else list(args.record_ids), force=args.force,
                     replay=installed_replay(archive))
    except ArchiverError as exc:
        err.write("error: " + " ".join(exc.message.split()) + "\n")
        if exc.hint:
            err.write(f"  hint: {exc.hint}\n")
        return exc.exit_code
    if args.json:
        out.write(json.dumps(site.to_dict(), ensure_ascii=False) + "\n")
    else:
        out.write(f"wrote {len(site.records)} record(s), {len(site.collections)} collection(s) and "
                  f"{site.timemaps} TimeMap(s) to {site.out} ({site.files} files, {site.bytes:,} bytes); "
                  "open index.html, or host the directory on any static web server\n")
        if not site.replay:
            out.write("no replay: the record pages show the screenshot (`archiver replay setup` fetches "
                      "ReplayWeb.page; publish again to include it)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
