"""Main-content extractors on the real corpus: which one gives a document's own text for change tracking.

The HTML documents of ../shared/corpus (those whose snapshots are all HTML) are run through each
extractor, and what it gives is set against Open Terms Archive's own Markdown of the same snapshot:

- similarity: difflib ratio of the words (``comparable_words``) to OTA's, average and worst page;
- change detection over consecutive versions: a step is real when OTA's two Markdown versions differ
  in their words or link targets; it is detected when the extractor's two outputs differ at all;
  missed real steps and false alarms are counted;
- section precision: for each detected step, the sections that ``diff_sections`` reports as changed
  (headings are ``# `` lines) must name text found in OTA's Markdown of either version (text before
  the first heading is judged by its changed lines), as tests/test_maintext_corpus.py judges a watch;
- CPU time of the extraction alone, median ms per page (``time.process_time``).

Extractors: archiver's declared extraction (OTA's select/remove), archiver's automatic one, the full
page, trafilatura, readability-lxml (its summary rendered by archiver to the same Markdown form) and
resiliparse's main-content mode (plain text with no heading markers: it yields no sections, so its
precision is over one preamble section per page). Each library is optional and skipped when missing.
The bench extra (``pip install -e '.[bench]'``) installs trafilatura and readability-lxml, not
resiliparse: it pulls brotli 1.2 through fastwarc, which breaks ``warcio check``; install it in a
separate environment to measure it.

Asserts nothing; prints a table and writes bench/results-maintext.md. Corpus files are read in place.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.capture.maintext import AUTOMATIC_EXTRACTOR, automatic_text, comparable_words, declared_text
from archiver.textdiff import diff_sections, heading_key, split_sections

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "bench" / "results-maintext.md"
CT = "text/html; charset=utf-8"

Entry = dict[str, Any]
Extractor = Callable[[bytes, Entry], str]


# ---- extractors: html bytes and the corpus entry (for its declaration and URL) -> Markdown-ish text -----
def _declared(html: bytes, e: Entry) -> str:
    decl = e["declaration"]
    return declared_text(html, select=decl.get("select"), remove=decl.get("remove"),
                         base_url=e["document_url"], content_type=CT)


def _automatic(html: bytes, e: Entry) -> str:
    return automatic_text(html, base_url=e["document_url"], content_type=CT)


def _full_page(html: bytes, e: Entry) -> str:
    return declared_text(html, select=None, base_url=e["document_url"], content_type=CT)


def _trafilatura(mod: Any) -> Extractor:
    def run(html: bytes, e: Entry) -> str:
        out = mod.extract(html, url=e["document_url"], output_format="markdown", include_links=True,
                          include_formatting=True, include_tables=True, favor_recall=True)
        return str(out or "")
    return run


def _readability(mod: Any) -> Extractor:
    def run(html: bytes, e: Entry) -> str:
        summary = str(mod.Document(html).summary(html_partial=True))
        return declared_text(summary.encode("utf-8"), select=None, base_url=e["document_url"], content_type=CT)
    return run


def _resiliparse(tree_mod: Any, text_mod: Any) -> Extractor:
    def run(html: bytes, e: Entry) -> str:
        tree = tree_mod.HTMLTree.parse_from_bytes(html)
        return str(text_mod.extract_plain_text(tree, main_content=True, links=False, list_bullets=True))
    return run


def _optional(name: str, modules: list[str], make: Callable[..., Extractor]) -> Extractor | None:
    try:
        loaded = [importlib.import_module(m) for m in modules]
    except ImportError:
        print(f"{name}: not installed")
        return None
    return make(*loaded)


def extractors() -> dict[str, Extractor]:
    found: dict[str, Extractor | None] = {
        "archiver declared": _declared,
        "archiver automatic": _automatic,
        "full page": _full_page,
        "trafilatura": _optional("trafilatura", ["trafilatura"], _trafilatura),
        "readability-lxml": _optional("readability-lxml", ["readability"], _readability),
        "resiliparse": _optional("resiliparse", ["resiliparse.parse.html", "resiliparse.extract.html2text"],
                                 _resiliparse),
    }
    return {k: v for k, v in found.items() if v is not None}


# ---- how OTA's text and ours are compared (as tests/test_maintext_corpus.py does) ---------------------
def _links(md: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]*)", md)


def _squash(text: str) -> str:
    return " ".join(re.sub(r"[#*_`>|\[\]()\\=-]", " ", text).lower().split())


def _levels_off(text: str) -> str:
    return re.sub(r"(?m)^#{1,6} ", "# ", text)


def _sections(md: str) -> list[Any]:
    marked = {line.strip() for line in md.split("\n") if line.startswith("# ")}
    return split_sections(md, marked)


def _judge_sections(before: str, after: str, ota: str) -> tuple[int, int, list[str]]:
    """(changed sections reported, of them found in OTA's text, those not found)."""
    reported = found = 0
    outside: list[str] = []
    for c in diff_sections(_sections(before), _sections(after)):
        if c.status == "unchanged":
            continue
        heading = c.heading_b or c.heading_a or c.key
        heading = heading[2:] if heading.startswith("# ") else heading
        reported += 1
        if heading in ("(preamble)", ""):  # text before the first heading: judge its changed lines
            lines = [_squash(x[1:]) for x in c.diff if x[:1] in "+-" and x[1:2] != x[:1]]
            ok = all(x in ota for x in lines if x)
        else:
            key = _squash(heading_key(heading))
            ok = bool(key) and key in ota
        found += ok
        if not ok:
            outside.append(heading[:60])
    return reported, found, outside


@dataclass
class Figures:
    similarity: dict[str, float] = field(default_factory=dict)  # page -> ratio
    cpu_ms: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)
    reported: int = 0
    in_ota: int = 0
    outside: list[str] = field(default_factory=list)
    headings: int = 0  # "# " lines over all pages
    empty: list[str] = field(default_factory=list)  # pages it gave no text for


def corpus() -> dict[str, list[Entry]]:
    docs: dict[str, list[Entry]] = {}
    for e in json.loads((CORPUS / "manifest.json").read_text("utf-8")):
        docs.setdefault(e["dir"], []).append(e)
    return {k: sorted(v, key=lambda e: e["snapshot"]["date"]) for k, v in sorted(docs.items())
            if all(e["snapshot"]["file"].endswith(".html") for e in v)}


def measure(fn: Extractor, docs: dict[str, list[Entry]], real: dict[str, bool]) -> Figures:
    fig = Figures()
    for d, versions in docs.items():
        outs: list[str] = []
        otas: list[str] = []
        for e in versions:
            html = (CORPUS / d / e["snapshot"]["file"]).read_bytes()
            t0 = time.process_time()
            raw = fn(html, e)
            fig.cpu_ms.append((time.process_time() - t0) * 1000)
            out = _levels_off(raw)
            ota = (CORPUS / d / e["version"]["file"]).read_text("utf-8")
            page = f"{d} {e['snapshot']['date'][:10]}"
            fig.similarity[page] = difflib.SequenceMatcher(None, comparable_words(out), comparable_words(ota),
                                                           autojunk=False).ratio()
            if not out.strip():
                fig.empty.append(page)
            fig.headings += sum(1 for line in out.split("\n") if line.startswith("# "))
            outs.append(out)
            otas.append(ota)
        for i in range(1, len(versions)):
            step = f"{d} step {i}"
            detected = outs[i - 1] != outs[i]
            if real[step] and not detected:
                fig.missed.append(step)
            if detected and not real[step]:
                fig.false_alarms.append(step)
            if detected:
                reported, found, outside = _judge_sections(outs[i - 1], outs[i],
                                                           _squash(otas[i - 1]) + " " + _squash(otas[i]))
                fig.reported += reported
                fig.in_ota += found
                fig.outside += [f"{d}: {h}" for h in outside]
    return fig


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _code() -> str:
    """Which archiver was measured: this checkout's commit, and whether archiver/ differs from it."""
    import archiver

    src = Path(archiver.__file__).resolve().parent
    head = _git("rev-parse", "--short", "HEAD")
    if src != ROOT / "archiver":
        return f"archiver imported from {src}, not from this checkout ({head})"
    dirty = _git("status", "--porcelain", "--", "archiver")
    return f"archiver at commit {head}" + (" with uncommitted changes in archiver/" if dirty else "")


def main() -> None:
    if not (CORPUS / "manifest.json").is_file():
        sys.exit(f"no corpus at {CORPUS}")
    for noisy in ("trafilatura", "readability", "readability.readability", "htmldate", "courlan"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    started = time.monotonic()
    docs = corpus()
    real: dict[str, bool] = {}
    for d, versions in docs.items():
        mds = [(CORPUS / d / e["version"]["file"]).read_text("utf-8") for e in versions]
        for i in range(1, len(mds)):
            real[f"{d} step {i}"] = (comparable_words(mds[i - 1]) != comparable_words(mds[i])
                                     or _links(mds[i - 1]) != _links(mds[i]))
    pages = sum(len(v) for v in docs.values())
    steps = sum(len(v) - 1 for v in docs.values())
    print(f"corpus: {len(docs)} HTML documents, {pages} pages, {steps} steps between versions, "
          f"{sum(real.values())} real changes (OTA's Markdown differs in words or link targets)")

    results: dict[str, Figures] = {}
    for name, fn in extractors().items():
        results[name] = measure(fn, docs, real)

    header = ("| extractor | similarity to OTA, avg | worst page | missed | false alarms | section precision "
              "| `#` headings | CPU ms/page (median) |")
    rows = [header, "|" + " --- |" * 8]
    notes: list[str] = []
    for name, f in results.items():
        worst = min(f.similarity, key=f.similarity.__getitem__)
        precision = f"{f.in_ota}/{f.reported} = {f.in_ota / f.reported:.2f}" if f.reported else "n/a (none reported)"
        rows.append(f"| {name} | {statistics.fmean(f.similarity.values()):.3f} | {f.similarity[worst]:.3f} "
                    f"({worst}) | {len(f.missed)}/{sum(real.values())} | {len(f.false_alarms)} | {precision} "
                    f"| {f.headings} | {statistics.median(f.cpu_ms):.1f} |")
        if f.missed:
            notes.append(f"- {name}, missed: {', '.join(f.missed)}")
        if f.false_alarms:
            notes.append(f"- {name}, false alarms: {', '.join(f.false_alarms)}")
        if f.outside:
            notes.append(f"- {name}, sections not in OTA's text ({len(f.outside)}): "
                         + "; ".join(f.outside[:8]) + (" …" if len(f.outside) > 8 else ""))
        if f.empty:
            notes.append(f"- {name}, empty output ({len(f.empty)} pages): {', '.join(f.empty)}")
        if f.headings == 0:
            notes.append(f"- {name}: no heading markers, so no sections: every change is one preamble section, "
                         "judged by its changed lines; whole paragraphs, which fail on list bullets (•) and on "
                         "link texts that OTA's Markdown follows with their targets: its low precision mostly says "
                         "that it cannot name the changed clause, not that its words are wrong")
    skipped = [n for n in ("trafilatura", "readability-lxml", "resiliparse") if n not in results]
    if skipped:
        notes.append(f"- not measured (not installed): {', '.join(skipped)}")
    elapsed = time.monotonic() - started

    print()
    print("\n".join(rows))
    if notes:
        print()
        print("\n".join(notes))
    print(f"\n{elapsed:.0f} s in all")

    libs = {"lxml": _version("lxml"), "trafilatura": _version("trafilatura"),
            "readability-lxml": _version("readability-lxml"), "lxml_html_clean": _version("lxml_html_clean"),
            "resiliparse": _version("resiliparse")}
    machine = (f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()} "
               f"({platform.python_implementation()})")
    RESULTS.write_text("\n".join([
        "# Main-content extractors on the corpus",
        "",
        "Generated by `bench/bench_maintext.py` (`make bench`); do not edit by hand.",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {_code()}",
        f"- machine: {machine}",
        f"- libraries: {', '.join(f'{k} {v}' for k, v in libs.items())}; automatic extractor "
        f"`{AUTOMATIC_EXTRACTOR}`",
        f"- corpus: {len(docs)} HTML documents of ../shared/corpus, {pages} pages, {steps} steps between "
        f"consecutive versions, {sum(real.values())} of them real changes (OTA's Markdown differs in words or "
        "link targets)",
        "",
        "Similarity: difflib ratio of the words to OTA's Markdown of the same snapshot. Missed / false alarms: "
        "real steps whose two outputs are identical / other steps whose outputs differ. Section precision: "
        "changed sections (between `#` headings) of the detected steps whose heading, or changed lines before "
        "the first heading, are in OTA's text of either version. CPU: `time.process_time` of the extraction "
        "call alone, median over the pages.",
        "",
        *rows,
        "",
        *notes,
        "",
        "resiliparse is not in the `bench` extra: it pulls brotli 1.2 through fastwarc, which breaks "
        "`warcio check`.",
        "",
    ]), "utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
