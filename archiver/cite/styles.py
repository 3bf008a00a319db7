"""Citation styles from one :class:`CitationData`. Pure functions: no store, no clock.

Each style formats its own dates and escapes every field for its own syntax (Markdown, BibTeX,
RIS, JSON); the plain-text forms are what goes into a brief or a compliance file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from archiver.cite.quote import QuoteMatch
from archiver.errors import UsageError

STYLES = ("record", "markdown", "bluebook", "apa", "chicago-note", "chicago-bib", "mla", "csl-json", "bibtex",
          "ris")

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
# Bluebook T12 and MLA 9 share these abbreviations (May, June, July are not abbreviated).
_MONTHS_ABBR = ("Jan.", "Feb.", "Mar.", "Apr.", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec.")


@dataclass(frozen=True, slots=True)
class ProvisionRef:
    """A tracked provision cited: its ID and tracking facts (the excerpt is the citation's ``quote``,
    the record the one holding the provision's current text)."""

    provision_id: str
    label: str | None
    first_tracked: dt.datetime
    last_verified: dt.datetime
    status: str


@dataclass(frozen=True, slots=True)
class CitationData:
    """Everything a citation may say about one record; fallbacks are applied before this is built."""

    record_id: str
    entity: str
    document: str
    title: str
    site: str
    url: str
    final_url: str
    captured: dt.datetime  # UTC
    content_sha256: str
    key_id: str
    document_date: dt.date | None = None
    archive_url: str | None = None  # ours (public bundle base) or the Wayback snapshot; never invented
    archive_name: str | None = None
    archive_date: dt.date | None = None
    wayback_url: str | None = None
    wayback_timestamp: str | None = None
    wayback_verdict: str | None = None
    tsa_name: str | None = None
    gen_time: str | None = None
    verified: bool | None = None
    verify_detail: str = ""
    quote: QuoteMatch | None = None
    permalink: str | None = None  # the record's public page (<web.public_url>/r/<ID>) while it is public
    on_file_with: str | None = None  # who holds the record, said when no archive link can be given
    provision: ProvisionRef | None = None  # when a provision is cited: the record holds its current text

    @property
    def accessed(self) -> dt.date:
        return self.captured.date()


# ---- dates ----------------------------------------------------------------------------------------
def long_date(d: dt.date) -> str:
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def bluebook_date(d: dt.date) -> str:
    return f"{_MONTHS_ABBR[d.month - 1]} {d.day}, {d.year}"


def mla_date(d: dt.date) -> str:
    return f"{d.day} {_MONTHS_ABBR[d.month - 1]} {d.year}"


# ---- escaping -------------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def tex_url(url: str) -> str:
    """biblatex reads url verbatim, but braces must still balance: percent-encode them (and spaces)."""
    return url.replace("{", "%7B").replace("}", "%7D").replace(" ", "%20").replace("\\", "%5C")


def ris(text: str) -> str:
    return " ".join(text.split())


def _end(text: str) -> str:
    """End a sentence once: no "Inc.." when a title already ends with a full stop."""
    return text if text.endswith((".", "?", "!")) else text + "."


def _quoted_title(title: str) -> str:
    """A title inside double quotes: inner double quotes become single ones (Chicago/MLA/APA use)."""
    return title.replace("\u201c", "\u2018").replace("\u201d", "\u2019").replace('"', "'")


# ---- the record block -----------------------------------------------------------------------------
def record_fields(c: CitationData) -> list[tuple[str, str]]:
    rows = [("Entity", c.entity), ("Document", c.document), ("Title", c.title), ("Record ID", c.record_id),
            ("Captured (UTC)", c.captured.strftime("%Y-%m-%d %H:%M:%S UTC")),
            ("SHA-256 (content)", c.content_sha256), ("URL", c.url)]
    if c.final_url != c.url:
        rows.append(("Final URL", c.final_url))
    rows.append(("Accessed", long_date(c.accessed)))
    rows.append(("Document date", f"{long_date(c.document_date)} (stated in the document)" if c.document_date
                 else "none stated in the document"))
    if c.wayback_url:
        rows.append(("Wayback snapshot", f"{c.wayback_url} ({c.wayback_verdict or 'not compared'})"))
    else:
        rows.append(("Wayback snapshot", "none recorded"))
    if c.permalink:
        rows.append(("Permalink", c.permalink))
    if c.archive_url and c.archive_url not in (c.wayback_url, c.permalink):
        rows.append(("Archived copy", c.archive_url))
    elif not c.archive_url and c.on_file_with:
        rows.append(("Archived copy", f"on file with {c.on_file_with}"))
    rows.append(("Signer key", c.key_id))
    rows.append(("Timestamp", f"{c.tsa_name}, genTime {c.gen_time}" if c.tsa_name else "none (unstamped)"))
    if c.verified is not None:
        rows.append(("Verification", f"all checks passed ({c.verify_detail})" if c.verified
                     else f"FAILED: {c.verify_detail}"))
    if c.provision:
        p = c.provision
        rows += [("Provision ID", p.provision_id)] + ([("Provision", p.label)] if p.label else []) + \
            [("First tracked", long_date(p.first_tracked.date())), ("Last verified", long_date(p.last_verified.date())),
             ("Provision status", p.status)]
    if c.quote:
        q = c.quote
        rows += [("Excerpt", f"“{q.excerpt}”"), ("SHA-256 (excerpt)", q.sha256),
                 ("Excerpt location", _location(q)), ("Live link", _frag(c.final_url, q))]
        if c.wayback_url:
            rows.append(("Wayback link", _frag(c.wayback_url, q)))
    return rows


def _location(q: QuoteMatch) -> str:
    where = f"section “{q.section}”, " if q.section else ""
    whose = {True: " (in the document's own text)", False: " (on the page, outside the document's own text)",
             None: ""}[q.in_document]
    return f"{where}line {q.line}, characters {q.start}–{q.end} of the record's text{whose}"


def _frag(url: str, q: QuoteMatch) -> str:
    return url.split("#", 1)[0] + q.fragment()


def record_block(c: CitationData) -> str:
    rows = record_fields(c)
    width = max(len(k) for k, _ in rows) + 1
    return "Citation Record\n" + "".join(f"{k + ':':<{width}} {v}\n" for k, v in rows)


def markdown_block(c: CitationData) -> str:
    lines = ["**Citation Record**", ""]
    for k, v in record_fields(c):
        if v.startswith(("http://", "https://")):
            value = f"<{v.split(' ', 1)[0]}>" + (" " + md(v.split(" ", 1)[1]) if " " in v else "")
        else:
            value = md(v)
        lines.append(f"- **{k}:** {value}")
    return "\n".join(lines) + "\n"


# ---- legal and academic styles ---------------------------------------------------------------------
def _quote_tail(c: CitationData) -> str:
    if not c.quote:
        return ""
    return f" (quoting “{c.quote.excerpt}”; SHA-256 {c.quote.sha256})"


def _provision_tail(c: CitationData) -> str:
    """What the styles without a quote of their own add for a provision: its ID, the excerpt and the
    record holding it (a reader must be able to find the exact words and their evidence)."""
    if not c.provision or not c.quote:
        return ""
    p = c.provision
    name = f", {_quoted_title(p.label)}" if p.label else ""
    return (f" Provision {p.provision_id}{name}: “{c.quote.excerpt}” (record {c.record_id}; SHA-256 "
            f"{c.quote.sha256}; last verified {long_date(p.last_verified.date())}{_gone(p)}).")


def _gone(p: ProvisionRef) -> str:
    """A clause no longer in the document is cited as the last record that held it, and says so: the
    prose styles would otherwise quote it as if it were still the document's text."""
    return "; no longer in the document" if p.status == "removed" else ""


def _with_tail(text: str, c: CitationData) -> str:
    tail = _provision_tail(c)
    return text[:-1] + tail + "\n" if tail else text


def bluebook(c: CitationData) -> str:
    """R. 18.2.2: Title, Site (date), URL [archive URL]; ``(last visited …)`` without a document date.
    The author is omitted: the site name (the entity) already shows who published it."""
    url = c.final_url
    # R. 18.2.1(d): the archived copy in brackets at the end; with none, say who holds it (22nd ed.)
    archive = f" [{c.archive_url}]" if c.archive_url else \
        f" (on file with {c.on_file_with})" if c.on_file_with else ""
    site = "" if c.site == c.title else f", {c.site}"
    if c.document_date:
        out = f"{c.title}{site} ({bluebook_date(c.document_date)}), {url}{archive}"
    else:
        out = f"{c.title}{site}, {url} (last visited {bluebook_date(c.accessed)}){archive}"
    tail = _quote_tail(c)
    if c.provision and tail:  # the provision and the record holding its current text, inside the parenthetical
        tail = f"{tail[:-1]}; provision {c.provision.provision_id}, record {c.record_id}{_gone(c.provision)})"
    return out + tail + ".\n"


def apa(c: CitationData) -> str:
    return _with_tail(_apa(c), c)


def _apa(c: CitationData) -> str:
    """APA 7 webpage: Author. (Date). *Title*. Site. Retrieved Month D, YYYY, from URL."""
    date = f"{c.document_date.year}, {_MONTHS[c.document_date.month - 1]} {c.document_date.day}" \
        if c.document_date else "n.d."
    site = "" if c.site == c.entity else f" {_end(c.site)}"
    target = c.archive_url or c.final_url
    return f"{_end(c.entity)} ({date}). {_end(c.title)}{site} Retrieved {long_date(c.accessed)}, from {target}\n"


def _archived(c: CitationData) -> str:
    if not c.archive_url:
        return ""
    when = long_date(c.archive_date or c.accessed)
    return f", archived {when}, at the {c.archive_name or 'Wayback Machine'}, {c.archive_url}"


def chicago_note(c: CitationData) -> str:
    return _with_tail(_chicago_note(c), c)


def _chicago_note(c: CitationData) -> str:
    date = f"last modified {long_date(c.document_date)}" if c.document_date else f"accessed {long_date(c.accessed)}"
    return f"{c.entity}, “{_quoted_title(c.title)},” {c.site}, {date}, {c.final_url}{_archived(c)}.\n" \
        if c.site != c.entity else \
        f"“{_quoted_title(c.title)},” {c.site}, {date}, {c.final_url}{_archived(c)}.\n"


def chicago_bib(c: CitationData) -> str:
    return _with_tail(_chicago_bib(c), c)


def _chicago_bib(c: CitationData) -> str:
    date = f"Last modified {long_date(c.document_date)}." if c.document_date else \
        f"Accessed {long_date(c.accessed)}."
    archived = ""
    if c.archive_url:
        archived = (f" Archived {long_date(c.archive_date or c.accessed)}, at the "
                    f"{c.archive_name or 'Wayback Machine'}, {c.archive_url}.")
    return f"{_end(c.entity)} “{_end(_quoted_title(c.title))}” {_end(c.site)} {date} {c.final_url}.{archived}\n"


def mla(c: CitationData) -> str:
    return _with_tail(_mla(c), c)


def _mla(c: CitationData) -> str:
    """MLA 9: "Title." *Site*, D Mon. YYYY, URL. Accessed D Mon. YYYY."""
    date = f", {mla_date(c.document_date)}" if c.document_date else ""
    url = c.final_url.split("://", 1)[-1]  # MLA 9 drops http(s)://
    archive = ""
    if c.archive_url:
        archive = f" {c.archive_name or 'Wayback Machine'}, {c.archive_url.split('://', 1)[-1]}."
    return f"“{_end(_quoted_title(c.title))}” {c.site}{date}, {url}.{archive} Accessed {mla_date(c.accessed)}.\n"


# ---- machine-readable -----------------------------------------------------------------------------
def _date_parts(d: dt.date) -> dict[str, list[list[int]]]:
    return {"date-parts": [[d.year, d.month, d.day]]}


def csl_item(c: CitationData) -> dict[str, object]:
    item: dict[str, object] = {
        "id": c.record_id, "type": "webpage", "title": c.title, "container-title": c.site,
        "author": [{"literal": c.entity}], "URL": c.final_url, "accessed": _date_parts(c.accessed),
    }
    if c.document_date:
        item["issued"] = _date_parts(c.document_date)
    if c.archive_url:
        item["archive"] = c.archive_name or "Internet Archive Wayback Machine"
        item["archive_location"] = c.archive_url
    custom: dict[str, object] = {"record_id": c.record_id, "sha256": c.content_sha256, "signer_key": c.key_id,
                                 "captured_utc": c.captured.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if c.gen_time:
        custom["timestamp_gen_time"] = c.gen_time
        custom["timestamp_authority"] = c.tsa_name or ""
    if c.quote:
        custom["quote"] = c.quote.excerpt
        custom["quote_sha256"] = c.quote.sha256
    if c.provision:
        custom["provision_id"] = c.provision.provision_id
        custom["provision_status"] = c.provision.status
        custom["provision_last_verified"] = c.provision.last_verified.strftime("%Y-%m-%dT%H:%M:%SZ")
        if c.provision.label:
            custom["provision_label"] = c.provision.label
    item["custom"] = custom
    return item


def csl_json(c: CitationData) -> str:
    return json.dumps([csl_item(c)], indent=2, ensure_ascii=False) + "\n"


def bibtex_key(c: CitationData) -> str:
    base = unicodedata.normalize("NFKD", c.entity).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "", base.lower())[:24] or "web"
    return f"{slug}{c.captured.year}_{c.record_id.replace('-', '')}"


def bibtex(c: CitationData) -> str:
    note = []
    if c.archive_url:
        note.append(f"Archived at \\url{{{tex_url(c.archive_url)}}}")
    note.append(f"SHA-256 {c.content_sha256}")
    note.append(f"record {tex(c.record_id)}")
    if c.provision:
        note.append(f"provision {tex(c.provision.provision_id)}")
    if c.quote:
        note.append(f"quoting ``{tex(c.quote.excerpt)}'' (SHA-256 {c.quote.sha256})")
    fields = [("title", "{" + tex(c.title) + "}"), ("author", "{" + tex(c.entity) + "}"),
              ("organization", tex(c.site)), ("url", tex_url(c.final_url)),
              ("urldate", c.accessed.isoformat())]
    if c.archive_url:
        fields.append(("howpublished", f"\\url{{{tex_url(c.archive_url)}}}"))
    if c.document_date:
        fields.append(("date", c.document_date.isoformat()))
    fields.append(("note", "; ".join(note)))
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields)
    return f"@misc{{{bibtex_key(c)},\n{body}\n}}\n"


def ris_record(c: CitationData) -> str:
    lines = [("TY", "ELEC"), ("TI", ris(c.title)), ("AU", ris(c.entity)), ("T2", ris(c.site)),
             ("UR", c.final_url), ("Y2", c.accessed.strftime("%Y/%m/%d/"))]
    if c.document_date:
        lines += [("PY", str(c.document_date.year)), ("DA", c.document_date.strftime("%Y/%m/%d/"))]
    if c.archive_url:
        lines += [("DP", ris(c.archive_name or "Wayback Machine")), ("LK", c.archive_url), ("L2", c.archive_url)]
    lines.append(("N1", ris(f"SHA-256 {c.content_sha256}; record {c.record_id}; signer {c.key_id}")))
    if c.provision:
        lines.append(("N1", ris(f"Provision {c.provision.provision_id}, last verified "
                                f"{c.provision.last_verified.date().isoformat()}")))
    if c.quote:
        lines.append(("N1", ris(f"Quote: “{c.quote.excerpt}” (SHA-256 {c.quote.sha256})")))
    lines.append(("ER", ""))
    return "".join(f"{k}  - {v}".rstrip() + "\n" for k, v in lines)


_RENDER = {"record": record_block, "markdown": markdown_block, "bluebook": bluebook, "apa": apa,
           "chicago-note": chicago_note, "chicago-bib": chicago_bib, "mla": mla, "csl-json": csl_json,
           "bibtex": bibtex, "ris": ris_record}


def render(c: CitationData, style: str) -> str:
    fn = _RENDER.get(style)
    if fn is None:
        raise UsageError(f"unknown citation style {style!r}", hint="styles: " + ", ".join(STYLES))
    return fn(c)


def common_name(name: str) -> str:
    """``O=Example,CN=Example TSA`` → ``Example TSA`` (the part a reader recognises)."""
    for part in name.split(","):
        if part.strip().upper().startswith("CN="):
            return part.strip()[3:]
    return name


def host_of(url: str) -> str:
    host = (urlsplit(url).hostname or url).lower()
    return host[4:] if host.startswith("www.") else host


def percent(url: str) -> str:
    return quote(url, safe=":/?#[]@!$&'()*+,;=%")


__all__ = ["STYLES", "CitationData", "ProvisionRef", "bibtex_key", "csl_item", "render"]
