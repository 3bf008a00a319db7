"""Memento (RFC 7089) over public records: which archived copies of a URL anyone may open, and when.

A reader who holds only the live URL of a page (a footnote, a link that rotted) asks a TimeGate for
the copy nearest a date, or a TimeMap for all of them; a Memento-aware tool (the Wayback Machine's
aggregator, memento-client, browser extensions) does this without knowing our URL scheme. Every
memento here is a **public** record, and its URI is the record's permalink ``<base>/r/<ID>``: the
same link a citation carries, so a TimeGate answer can be cited as it is.

Only published records take part. A URL whose records are all private gives exactly the answer of a
URL never captured (no memento), so Memento cannot be used to learn which pages an operator keeps.

This module is protocol only (no HTTP): the web router (``web/memento.py``) and static publishing
build their answers from it, so a static TimeMap and the server's are the same text.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol

from archiver.errors import UsageError

if TYPE_CHECKING:
    from archiver.ports import Store
    from archiver.records import RecordSummary

LINK_FORMAT = "application/link-format"
#: What may stay unescaped in the path part of ``/timegate/<original>``: the URI's own delimiters.
_PATH_SAFE = ":/@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class Memento:
    """One public record of a URL as a memento: its ID and its capture time (UTC)."""

    record_id: str
    captured_at: str

    @property
    def datetime(self) -> dt.datetime:
        return _parse_iso(self.captured_at)

    @property
    def http_date(self) -> str:
        return http_date(self.datetime)


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def http_date(when: dt.datetime) -> str:
    """RFC 7231 IMF-fixdate, as Memento-Datetime and the ``datetime`` link attribute require (whole
    seconds: two captures within one second share a datetime, RFC 7089 allows that)."""
    return format_datetime(when.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def parse_accept_datetime(value: str) -> dt.datetime:
    """``Accept-Datetime`` (RFC 7089 §2.1.1: an RFC 1123 date in GMT). Anything else is bad input."""
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None or not value.strip().endswith("GMT"):
        raise UsageError(f"Accept-Datetime {value.strip()[:60]!r} is not an RFC 1123 date in GMT",
                         hint="e.g. Accept-Datetime: Thu, 01 Jan 2026 00:00:00 GMT")
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def check_original(url: str) -> str:
    """The original URL (URI-R) as named in a TimeGate or TimeMap path: absolute http(s), no fragment,
    no white space. A proxy that merged the ``//`` of the scheme (``http:/host``) is forgiven."""
    for scheme in ("http:/", "https:/"):
        if url.startswith(scheme) and not url.startswith(scheme + "/"):
            url = scheme + "/" + url[len(scheme):]
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UsageError("the original URL contains white space or a control character",
                         hint="percent-encode it (a space is %20; inside this path write %2520)")
    if "#" in url:
        raise UsageError("the original URL has a fragment (#…): a memento is of a whole page",
                         hint="leave out the part from # on")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("the original URL is not an absolute http(s) URL",
                         hint="e.g. /timegate/https://example.org/privacy")
    return url


def _variants(url: str) -> list[str]:
    """The URL and its form with the root path written out (``http://a.example`` = ``http://a.example/``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.path in ("", "/"):
        bare = urllib.parse.urlunsplit(parts._replace(path=""))
        return list(dict.fromkeys([url, bare, urllib.parse.urlunsplit(parts._replace(path="/"))]))
    return [url]


def mementos_of(summaries: list[RecordSummary]) -> list[Memento]:
    """Records as mementos, oldest first (the caller has chosen which: public, exported)."""
    return sorted((Memento(s.record_id, s.captured_at) for s in summaries), key=lambda m: (m.datetime, m.record_id))


def public_mementos(core: Store, url: str) -> list[Memento]:
    """The public records of ``url`` (requested or reached after redirects), oldest first. The query
    starts from the store's publish events, never from the URL's records, so its cost does not grow
    with the private captures of the URL: a URL with only private records answers like an unknown one,
    in the same time class too."""
    from archiver.publication import public_ids

    variants = _variants(url)
    marks = ",".join("?" * len(variants))
    # CROSS JOIN keeps SQLite's join order (outbox first); PostgreSQL plans it its own way
    sql = ("SELECT DISTINCT r.record_id, r.captured_at FROM outbox o CROSS JOIN records r "  # noqa: S608
           f"WHERE o.event = 'publish' AND r.record_id = o.record_id AND (r.url IN ({marks}) "
           f"OR r.final_url IN ({marks}))")
    with core.catalog.reader() as d:
        rows = d.rows(sql, (*variants, *variants))
    public = public_ids(core, [str(r[0]) for r in rows]) if rows else set()
    return sorted((Memento(str(r[0]), str(r[1])) for r in rows if str(r[0]) in public),
                  key=lambda m: (m.datetime, m.record_id))


def nearest(mementos: list[Memento], when: dt.datetime | None) -> Memento:
    """The memento nearest ``when`` (the latest when no date is asked, RFC 7089 §4.1.1); a tie goes
    to the earlier one. ``mementos`` must not be empty."""
    if when is None:
        return mementos[-1]
    return min(mementos, key=lambda m: (abs((m.datetime - when).total_seconds()), m.datetime))


def public_base(core: Store, request_base: str) -> str:
    """The base every public link is built on: ``web.public_url`` when set (permalinks are what
    citations carry), else the origin the request came to (a laptop, a test)."""
    from archiver.publication import check_public_url

    configured = core.config.str_("web.public_url")
    return check_public_url(configured) if configured else request_base.rstrip("/")


def in_path(original: str) -> str:
    """The original URL as written after ``/timegate/`` or ``/timemap/link/``: the path part escaped
    once (the server decodes it once; its own ``%XX`` survive), the query as it is."""
    path, sep, query = original.partition("?")
    return urllib.parse.quote(path, safe=_PATH_SAFE) + sep + query


class Where(Protocol):
    """Where the Memento resources of one original are: the server's or a static export's."""

    @property
    def original(self) -> str: ...

    def memento(self, record_id: str) -> str: ...

    @property
    def timegate(self) -> str | None: ...

    @property
    def timemap(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StaticEndpoints:
    """A static export's TimeMap file: mementos are the record pages beside it (``<prefix><ID>/``), and
    there is no TimeGate (negotiation needs a server)."""

    original: str
    name: str
    record_prefix: str = "../r/"

    def memento(self, record_id: str) -> str:
        return f"{self.record_prefix}{record_id}/"

    @property
    def timegate(self) -> str | None:
        return None

    @property
    def timemap(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the Memento resources of one original live on the server, under one public base."""

    base: str
    original: str

    def memento(self, record_id: str) -> str:
        return f"{self.base}/r/{record_id}"

    @property
    def timegate(self) -> str:
        return f"{self.base}/timegate/{in_path(self.original)}"

    @property
    def timemap(self) -> str:
        return f"{self.base}/timemap/link/{in_path(self.original)}"


def _q(uri: str) -> str:
    """A URI inside ``<…>`` of a Link header: nothing may end the reference or the header early."""
    return uri.replace("<", "%3C").replace(">", "%3E")


def _rel(mementos: list[Memento], m: Memento) -> str:
    rels = ["memento"]
    if m == mementos[0]:
        rels.insert(0, "first")
    if m == mementos[-1]:
        rels.insert(0, "last")
    return " ".join(rels)


def timegate_links(ep: Endpoints, mementos: list[Memento], chosen: Memento) -> str:
    """The TimeGate's ``Link`` header (RFC 7089 §4.1.2): original, timemap, the first, last and
    chosen mementos with their datetimes."""
    links = [f'<{_q(ep.original)}>; rel="original"',
             f'<{_q(ep.timemap)}>; rel="timemap"; type="{LINK_FORMAT}"']
    for m in dict.fromkeys([mementos[0], chosen, mementos[-1]]):
        links.append(f'<{_q(ep.memento(m.record_id))}>; rel="{_rel(mementos, m)}"; datetime="{m.http_date}"')
    return ", ".join(links)


def memento_headers(summary: RecordSummary, base: str) -> dict[str, str]:
    """The headers a public record page (a memento, URI-M) carries (RFC 7089 §2.1.2, §2.2.1):
    ``Memento-Datetime`` and a ``Link`` naming the original, the memento itself with its datetime,
    the TimeGate and the TimeMap. Built from the catalog row alone, with no query: the record page is
    served at CDN rates. ``base`` is the public base (``web.public_url``, else the request's origin)."""
    ep = Endpoints(base.rstrip("/"), summary.url)
    when = http_date(_parse_iso(summary.captured_at))
    link = ", ".join([f'<{_q(ep.original)}>; rel="original"',
                      f'<{_q(ep.memento(summary.record_id))}>; rel="memento"; datetime="{when}"',
                      f'<{_q(ep.timegate)}>; rel="timegate"',
                      f'<{_q(ep.timemap)}>; rel="timemap"; type="{LINK_FORMAT}"'])
    return {"Memento-Datetime": when, "Link": link}


def timemap(ep: Where, mementos: list[Memento]) -> str:
    """The TimeMap in application/link-format (RFC 7089 §5.1.1, RFC 6690): the original, the map
    itself with ``from``/``until``, the TimeGate (if there is one), then every memento oldest first
    with its datetime."""
    lines = [f'<{_q(ep.original)}>; rel="original"',
             f'<{_q(ep.timemap)}>; rel="self"; type="{LINK_FORMAT}"; '
             f'from="{mementos[0].http_date}"; until="{mementos[-1].http_date}"']
    if ep.timegate is not None:
        lines.append(f'<{_q(ep.timegate)}>; rel="timegate"')
    lines += [f'<{_q(ep.memento(m.record_id))}>; rel="{_rel(mementos, m)}"; datetime="{m.http_date}"'
              for m in mementos]
    return ",\n".join(lines) + "\n"


__all__ = [
    "LINK_FORMAT",
    "Endpoints",
    "Memento",
    "StaticEndpoints",
    "Where",
    "check_original",
    "http_date",
    "in_path",
    "memento_headers",
    "mementos_of",
    "nearest",
    "parse_accept_datetime",
    "public_base",
    "public_mementos",
    "timegate_links",
    "timemap",
]
