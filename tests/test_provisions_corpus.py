"""Provisions on the real corpus (../shared/corpus, Open Terms Archive's documents).

For each of the 13 documents, three clauses are pinned in the first version (one sentence from each of
three sections chosen by rule: the first, middle and last section that holds a plain sentence of 8-60
words found once in the document and in OTA's Markdown of that version), then a watch runs through
versions 2 and 3 (each served at one local URL, with the version's own declaration re-applied when it
changes, as OTA's users do) and :func:`archiver.provisions.recheck` re-finds them after each run.

Every status is checked against OTA's own Markdown of that version, compared as words without Markdown
markup (``comparable_words``: link targets, emphasis, heading marks and whitespace aside, quote marks
straightened): a clause reported unchanged or moved must occur in it word for word; one reported
changed or removed must not; the new text of a changed one must occur in it.

``python -m tests.test_provisions_corpus`` prints the table without pytest.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from archiver.api import Archive
from archiver.capture.maintext import comparable_words
from archiver.demo.server import SampleSite, send
from archiver.monitor import record_sections, run_watches
from archiver.provisions.matching import norm, reading_text

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not (CORPUS / "manifest.json").is_file(),
                                reason="../shared/corpus (Open Terms Archive's documents) is not beside the checkout")
_MARKUP = re.compile(r"[\[\]*_|#`<>\\]")


def _rules(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else ([value] if value else [])
    return tuple(r if isinstance(r, str) else json.dumps(r, sort_keys=True) for r in items)


def ota_words(markdown: str) -> str:
    """OTA's Markdown (or a clause) as one line of words: what the statuses are checked against."""
    return " " + " ".join(norm(" ".join(comparable_words(markdown))).split()) + " "


def in_ota(text: str, markdown_words: str) -> bool:
    return ota_words(text) in markdown_words


def choose_clauses(archive: Archive, record_id: str, ota_md: str, n: int = 3) -> list[str]:
    """``n`` sentences of the record's main-text, from ``n`` different sections when it has them (the
    first, middle and last eligible ones), each found once in the document and in OTA's Markdown."""
    sections = record_sections(archive, record_id)
    whole = norm(" ".join(reading_text(s) for s in sections))
    words = ota_words(ota_md)
    eligible: list[list[str]] = []
    for s in sections:
        body = reading_text(s).split("\n", 1)[1] if s.heading and "\n" in reading_text(s) else reading_text(s)
        found = []
        for line in body.split("\n"):
            for sentence in re.split(r"(?<=[.!?])\s+", line.strip()):
                sentence = sentence.strip()
                if (8 <= len(sentence.split()) <= 60 and sentence.endswith(".") and not _MARKUP.search(sentence)
                        and whole.count(norm(sentence)) == 1 and in_ota(sentence, words)):
                    found.append(sentence)
        if found:
            eligible.append(found)
    if not eligible:
        return []
    picks = sorted({0, len(eligible) // 2, len(eligible) - 1})
    chosen = [eligible[i][0] for i in picks]
    for group in eligible:  # fewer sections than n: more sentences of the same sections, in order
        for sentence in group:
            if len(chosen) >= n:
                return chosen
            if sentence not in chosen:
                chosen.append(sentence)
    return chosen[:n]


def corpus_table(root: Path) -> tuple[list[str], list[str], dict[str, int]]:
    """(table lines, then one line per changed, moved or removed observation with its old and new
    text; disagreements with OTA's Markdown; count of each status)."""
    docs: dict[str, list[dict[str, Any]]] = {}
    for e in json.loads((CORPUS / "manifest.json").read_text("utf-8")):
        docs.setdefault(e["dir"], []).append(e)
    docs = {k: sorted(v, key=lambda e: e["snapshot"]["date"]) for k, v in docs.items()}
    archive, _ = Archive.init(root / "store", operator="Corpus")
    archive.config.set("capture.allow_private", "true")
    current: dict[str, bytes] = {}

    def route(doc: str) -> Any:  # Fruitz serves PDFs, then (terms) HTML
        return lambda h: send(h, 200, current[doc], "application/pdf" if current[doc].startswith(b"%PDF-")
                              else "text/html; charset=utf-8")

    header = f"| {'document':<34} | {'provision':<11} | {'pinned in section (v1)':<34} | {'v2':<9} | {'v3':<9} |"
    lines = [header, "|" + "|".join("-" * (len(c) + 0) for c in header.split("|")[1:-1]) + "|"]
    problems: list[str] = []
    details: list[str] = []
    counts: dict[str, int] = {}
    with SampleSite({f"/{d}": route(d) for d in docs}) as site:
        for d, versions in sorted(docs.items()):
            url = f"{site.base_url}/{d}"
            rules: tuple[tuple[str, ...], tuple[str, ...]] | None = None
            pids: list[str] = []
            texts: dict[str, str] = {}
            steps: dict[str, list[str]] = {}
            for i, e in enumerate(versions):
                current[d] = (CORPUS / d / e["snapshot"]["file"]).read_bytes()
                decl = e["declaration"]
                new_rules = (_rules(decl.get("select")), _rules(decl.get("remove")))
                if new_rules != rules:  # the declaration changed: re-apply it, as OTA's users do
                    if rules is not None:
                        archive.watches.remove(url, actor="tester")
                    archive.watches.add(url, entity=e["service"], document=e["terms_type"], every="1d",
                                        select=new_rules[0], remove=new_rules[1], actor="tester")
                    rules = new_rules
                summary = run_watches(archive, passphrase=lambda: None, urls=[url], actor="tester")
                md = (CORPUS / d / e["version"]["file"]).read_text("utf-8")
                words = ota_words(md)
                if i == 0:
                    rid = summary.results[0].record_id
                    assert rid, (d, summary.results[0])
                    for clause in choose_clauses(archive, rid, md):
                        p = archive.provisions.add(rid, clause, actor="tester")
                        pids.append(p.provision_id)
                        texts[p.provision_id] = p.text
                        steps[p.provision_id] = [p.section or "(preamble)"]
                    if len(pids) < 3:
                        problems.append(f"{d}: only {len(pids)} clause(s) could be chosen")
                    continue
                checks = {c.provision_id: c for c in summary.provisions}  # what the run re-found
                for pid in pids:
                    c = checks.get(pid)
                    status = c.status if c else "not checked"
                    counts[status] = counts.get(status, 0) + 1
                    before = texts[pid]
                    found = in_ota(before, words)
                    agrees = found if status in ("unchanged", "moved") else \
                        (not found and c is not None and (c.text is None or in_ota(c.text, words)))
                    if not agrees:
                        problems.append(f"{d} v{i + 1} {pid}: {status}, but OTA's Markdown "
                                        f"{'holds' if found else 'lacks'} “{before[:80]}”")
                    steps[pid].append(status if agrees else status + " (!)")
                    if c is not None and status != "unchanged":
                        new = f" → “{c.text}” (§ {c.section}, similarity {c.similarity:.2f})" if c.text else ""
                        details.append(f"- {d} v{i + 1} {pid} {status}: “{before}”{new}")
                    if c is not None and c.text is not None:
                        texts[pid] = c.text
            for pid in pids:
                section, *statuses = steps[pid]
                lines.append(f"| {d:<34} | {pid:<11} | {section[:34]:<34} | {statuses[0]:<9} | {statuses[1]:<9} |")
    return [*lines, "", *details], problems, counts


def test_provisions_on_the_corpus_agree_with_open_terms_archive(tmp_path: Path) -> None:
    lines, problems, counts = corpus_table(tmp_path)
    print("\n" + "\n".join(lines))
    print(f"statuses over both steps: {counts}; disagreements with OTA's Markdown: {problems}")
    assert len([x for x in lines if x.startswith("| ") and "P-" in x]) == 13 * 3, "3 provisions x 13 documents"
    assert not problems, problems
    assert counts.get("unchanged", 0) and counts.get("changed", 0) + counts.get("removed", 0), counts


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        table, issues, totals = corpus_table(Path(tmp))
    sys.stdout.write("\n".join(table) + f"\n\nstatuses: {totals}\ndisagreements: {issues}\n")
