"""The Wayback Machine as an independent witness: lookup, Save Page Now, digest corroboration.

Lookups go through ``waybackpy`` (availability and CDX APIs). waybackpy has hard-coded hosts and no
timeouts, so its endpoint attributes are set from configuration (``wayback.base_url``,
``wayback.availability_url``) and every call runs under a deadline in a daemon thread; the library
itself is never edited. Save Page Now 2 (authenticated POST /save, then polling
/save/status/<job>) is not in waybackpy and is spoken directly with ``requests``.

Corroboration compares the CDX ``digest`` (base32 SHA-1 of the payload the Archive stored) with
our ``payload_sha1_b32``; a Wayback *replay* is never hashed (replays are rewritten).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from archiver._version import __version__
from archiver.errors import RateLimitedError, WaybackError
from archiver.records import Addendum, WaybackEvidence

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.config import Config
    from archiver.ports import Store

T = TypeVar("T")
MAX_CONCURRENT_SAVES = 5  # the Internet Archive's stated limit for SPN2 sessions
_save_slots = threading.BoundedSemaphore(MAX_CONCURRENT_SAVES)
_TS14 = re.compile(r"/web/(\d{14})")
CAVEAT = ("a different digest does not show tampering: dynamic pages, content-encoding and the moment "
          "of capture make byte-identical copies uncommon")


@dataclass(frozen=True, slots=True)
class WaybackConfig:
    base_url: str = "https://web.archive.org"
    availability_url: str = "https://archive.org/wayback/available"
    timeout: float = 30.0
    save_deadline: float = 300.0
    poll_interval: float = 5.0
    access_key: str | None = None
    secret_key: str | None = None
    user_agent: str = f"archiver/{__version__}"

    @property
    def cdx_url(self) -> str:
        return self.base_url.rstrip("/") + "/cdx/search/cdx"

    def snapshot_url(self, timestamp: str, url: str) -> str:
        return f"{self.base_url.rstrip('/')}/web/{timestamp}/{url}"


@dataclass(frozen=True, slots=True)
class CDXRow:
    urlkey: str
    timestamp: str
    original: str
    mimetype: str
    statuscode: str
    digest: str
    length: str

    def fields(self) -> tuple[str, ...]:
        return (self.urlkey, self.timestamp, self.original, self.mimetype, self.statuscode, self.digest, self.length)


def wayback_timestamp(iso: str) -> str:
    """``2026-11-23T13:11:19.482Z`` → ``20261123131119`` (the Archive's 14-digit UTC form)."""
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def _ts_seconds(ts: str) -> float:
    return dt.datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC).timestamp()


def bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` with a deadline. waybackpy passes no timeout to requests, so a stalled Archive
    would block forever; the daemon thread is abandoned instead of the caller."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name=f"wayback-{what}")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise WaybackError(f"the Wayback Machine did not answer the {what} within {timeout:g} s")
    if "error" in box:
        raise _wrap(box["error"], what) from box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _wrap(exc: BaseException, what: str) -> WaybackError:
    import waybackpy.exceptions as wex

    if isinstance(exc, WaybackError):
        return exc
    if isinstance(exc, wex.BlockedSiteError):
        return WaybackError("the URL is excluded from the Wayback Machine (robots.txt or an exclusion request)",
                            hint="no snapshot can be looked up or saved for it")
    if isinstance(exc, wex.TooManyRequestsError):
        return RateLimitedError(f"the Wayback Machine refused the {what}: too many requests (429)")
    if isinstance(exc, requests.ConnectionError):
        return WaybackError(f"cannot reach the Wayback Machine for the {what}: {type(exc).__name__}")
    if isinstance(exc, requests.RequestException | wex.WaybackError | ValueError | KeyError | IndexError):
        return WaybackError(f"the Wayback Machine's {what} failed: {type(exc).__name__}: {exc}".splitlines()[0])
    return WaybackError(f"the Wayback Machine's {what} failed unexpectedly: {type(exc).__name__}: {exc}")


def _raise_for_status(resp: requests.Response, what: str) -> None:
    if resp.status_code == 429:
        raise RateLimitedError(f"the Wayback Machine refused the {what}: HTTP 429 too many requests")
    if resp.status_code >= 400:
        raise WaybackError(f"the Wayback Machine's {what} answered HTTP {resp.status_code}")


# ---- lookup --------------------------------------------------------------------------------------
def availability(url: str, timestamp: str, cfg: WaybackConfig) -> tuple[str, str] | None:
    """The availability API's closest snapshot: (14-digit timestamp, snapshot URL), or None."""
    from waybackpy import WaybackMachineAvailabilityAPI
    from waybackpy.exceptions import WaybackError as WaybackpyError

    def call() -> Any:
        api = WaybackMachineAvailabilityAPI(url, user_agent=cfg.user_agent, max_tries=1)
        api.endpoint = cfg.availability_url
        api.api_call_time_gap = 0  # its rate-limit sleep would delay our first call by 5 s
        try:
            api.near(unix_timestamp=int(_ts_seconds(timestamp)))
        except WaybackpyError:
            if api.response is not None:  # a status says more than "invalid JSON"
                _raise_for_status(api.response, "availability lookup")
            raise
        if api.response is not None:
            _raise_for_status(api.response, "availability lookup")
        if api.json is None:
            raise WaybackError("the Wayback Machine's availability API did not return JSON")
        return api.json

    data = bounded(call, cfg.timeout, "availability lookup")
    try:
        closest = (data.get("archived_snapshots") or {}).get("closest")
    except AttributeError as exc:
        raise WaybackError("the availability API answered JSON of an unexpected shape") from exc
    if not closest or not closest.get("available", True) or not closest.get("timestamp"):
        return None
    ts = str(closest["timestamp"])
    if not re.fullmatch(r"\d{14}", ts):
        raise WaybackError(f"the availability API gave a malformed timestamp {ts!r}")
    return ts, cfg.snapshot_url(ts, url)


_CDX_FIELDS = ("urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length")


def cdx_near(url: str, timestamp: str, cfg: WaybackConfig, limit: int = 25) -> list[CDXRow]:
    """CDX rows for ``url`` sorted by closeness to ``timestamp`` (exact URL match).

    The query URL and row parsing are waybackpy's (``full_url``, ``CDXSnapshot``, its blocked-site
    check); the GET is ours, because waybackpy's CDX client neither times out nor exposes the
    HTTP status (a 503 page would read as "no snapshots")."""
    from waybackpy.cdx_snapshot import CDXSnapshot
    from waybackpy.cdx_utils import check_for_blocked_site, full_url

    query = full_url(cfg.cdx_url, {"url": url, "closest": timestamp, "sort": "closest", "limit": str(limit)})
    try:
        resp = requests.get(query, headers={"User-Agent": cfg.user_agent}, timeout=cfg.timeout)
    except requests.Timeout as exc:
        raise WaybackError(f"the Wayback Machine did not answer the CDX lookup within {cfg.timeout:g} s") from exc
    except requests.RequestException as exc:
        raise _wrap(exc, "CDX lookup") from exc
    try:
        check_for_blocked_site(resp, url)
    except Exception as exc:  # waybackpy's BlockedSiteError
        raise _wrap(exc, "CDX lookup") from exc
    _raise_for_status(resp, "CDX lookup")
    rows: list[CDXRow] = []
    for line in resp.text.splitlines():
        if not line.strip():
            continue
        fields = line.split(" ")
        if len(fields) != len(_CDX_FIELDS) or not re.fullmatch(r"\d{14}", fields[1]):
            raise WaybackError(f"the CDX API answered a malformed row: {line[:120]!r}")
        snap = CDXSnapshot(dict(zip(_CDX_FIELDS, fields, strict=True)))
        rows.append(CDXRow(snap.urlkey, snap.timestamp, snap.original, snap.mimetype, snap.statuscode,
                           snap.digest, snap.length))
    return rows[:limit]


def corroborate(rows: Sequence[CDXRow], timestamp: str, our_sha1_b32: str, *, checked_at: str, cfg: WaybackConfig,
                saved: bool = False, availability_ts: str | None = None,
                our_chunked_sha1_b32: str | None = None) -> WaybackEvidence:
    """Pick the snapshot that speaks to our capture and say whether its digest is ours.

    For a chunked response the Archive's digest may be of the de-chunked payload (our
    ``payload_sha1_b32``) or of the body as sent, chunk framing included (heritrix3 over HTTP/1.1
    digests that: heritrix3 issue #769); both are compared and the evidence says which form matched."""
    forms = {our_sha1_b32: "de-chunked"}
    if our_chunked_sha1_b32:
        forms.setdefault(our_chunked_sha1_b32, "chunked")
    if not rows:
        return WaybackEvidence(verdict="no-snapshot", checked_at=checked_at, api="cdx", our_digest=our_sha1_b32,
                               our_digest_chunked=our_chunked_sha1_b32, saved=saved,
                               note="the Wayback Machine holds no snapshot of this URL")
    ours = _ts_seconds(timestamp)
    by_distance = sorted(rows, key=lambda r: (abs(_ts_seconds(r.timestamp) - ours), r.timestamp))
    nearest = by_distance[0]
    before = max((r.timestamp for r in rows if r.timestamp <= timestamp), default=None)
    after = min((r.timestamp for r in rows if r.timestamp > timestamp), default=None)
    around = f"nearest before {before or 'none'}, after {after or 'none'}"
    match = next((r for r in by_distance if r.digest in forms), None)
    form: str | None = None
    if match is not None:
        delta = _ts_seconds(match.timestamp) - ours
        form = forms[match.digest]
        what = ("payload" if form == "de-chunked" else
                "response body as sent, chunk framing included (the Archive digested it without de-chunking)")
        note = (f"the Archive independently stored the same {what} (SHA-1 {match.digest}) "
                f"{_human(delta)} {'after' if delta >= 0 else 'before'} our capture; {around}")
        row, verdict = match, "identical"
    else:
        both = f" or {our_chunked_sha1_b32} (chunked, as sent)" if our_chunked_sha1_b32 else ""
        note = (f"nearest snapshot's digest {nearest.digest} differs from ours ({our_sha1_b32}{both}); "
                f"{CAVEAT}; {around}")
        row, verdict = nearest, "differs"
    if availability_ts and availability_ts != nearest.timestamp:
        note += f"; the availability API's closest is {availability_ts}"
    return WaybackEvidence(verdict=verdict, checked_at=checked_at, api="cdx",
                           snapshot_url=cfg.snapshot_url(row.timestamp, row.original),
                           snapshot_timestamp=row.timestamp, cdx=row.fields(), archive_digest=row.digest,
                           our_digest=our_sha1_b32, saved=saved, note=note,
                           our_digest_chunked=our_chunked_sha1_b32, matched_form=form)


def _human(seconds: float) -> str:
    s = abs(seconds)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if s >= size * 2:
            return f"{s / size:.0f} {unit}"
    return f"{s:.0f} s"


# ---- Save Page Now ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SaveResult:
    timestamp: str
    snapshot_url: str
    job_id: str | None
    method: str  # "spn2" | "legacy"


def save(url: str, cfg: WaybackConfig, *, if_not_archived_within: str | None = None,
         sleep: Callable[[float], None] = time.sleep) -> SaveResult:
    """Ask the Archive to capture ``url`` now; SPN2 with keys, else waybackpy's legacy save."""
    with _save_slots:
        if cfg.access_key and cfg.secret_key:
            return _spn2(url, cfg, if_not_archived_within, sleep)
        return _legacy_save(url, cfg)


def _spn2(url: str, cfg: WaybackConfig, within: str | None, sleep: Callable[[float], None]) -> SaveResult:
    headers = {"Accept": "application/json", "User-Agent": cfg.user_agent,
               "Authorization": f"LOW {cfg.access_key}:{cfg.secret_key}"}
    data = {"url": url}
    if within:
        data["if_not_archived_within"] = within
    deadline = time.monotonic() + cfg.save_deadline
    base = cfg.base_url.rstrip("/")
    backoff = 2.0
    while True:  # submit, honouring 429 with Retry-After / exponential backoff, within the deadline
        try:
            resp = requests.post(f"{base}/save", data=data, headers=headers, timeout=cfg.timeout)
        except requests.Timeout as exc:
            raise WaybackError(f"Save Page Now did not answer within {cfg.timeout:g} s") from exc
        except requests.RequestException as exc:
            raise WaybackError(f"cannot reach Save Page Now: {type(exc).__name__}") from exc
        if resp.status_code != 429:
            break
        wait = _retry_after(resp, backoff)
        if time.monotonic() + wait > deadline:
            raise RateLimitedError("Save Page Now kept answering 429 (too many requests) until the deadline")
        sleep(wait)
        backoff = min(backoff * 2, 60.0)
    _raise_for_status(resp, "Save Page Now request")
    job = _json(resp, "Save Page Now")
    if job.get("status") == "error" or "job_id" not in job:
        raise WaybackError(f"Save Page Now refused {url}: {job.get('status_ext') or ''} {job.get('message') or ''}"
                           .strip())
    job_id = str(job["job_id"])
    while True:
        if time.monotonic() > deadline:
            raise WaybackError(f"Save Page Now job {job_id} did not finish within {cfg.save_deadline:g} s",
                               hint="the Archive may still finish it; run `archiver wayback ID` later")
        try:
            st = requests.get(f"{base}/save/status/{job_id}", headers=headers, timeout=cfg.timeout)
        except requests.RequestException as exc:
            raise WaybackError(f"cannot poll Save Page Now job {job_id}: {type(exc).__name__}") from exc
        if st.status_code == 429:
            sleep(_retry_after(st, cfg.poll_interval))
            continue
        _raise_for_status(st, "Save Page Now status")
        status = _json(st, "Save Page Now status")
        if status.get("status") == "success":
            ts = str(status.get("timestamp", ""))
            if not re.fullmatch(r"\d{14}", ts):
                raise WaybackError(f"Save Page Now reported success without a valid timestamp ({ts!r})")
            return SaveResult(ts, cfg.snapshot_url(ts, str(status.get("original_url") or url)), job_id, "spn2")
        if status.get("status") == "error":
            raise WaybackError(f"Save Page Now job {job_id} failed: {status.get('status_ext') or ''} "
                               f"{status.get('message') or ''}".strip())
        sleep(min(cfg.poll_interval, max(0.0, deadline - time.monotonic())))


def _retry_after(resp: requests.Response, default: float) -> float:
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else default


def _json(resp: requests.Response, what: str) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError as exc:
        raise WaybackError(f"{what} did not answer JSON") from exc
    if not isinstance(data, dict):
        raise WaybackError(f"{what} answered JSON of an unexpected shape")
    return data


def _legacy_save(url: str, cfg: WaybackConfig) -> SaveResult:
    from waybackpy import WaybackMachineSaveAPI

    def call() -> str:
        api = WaybackMachineSaveAPI(url, user_agent=cfg.user_agent, max_tries=1)
        api.request_url = f"{cfg.base_url.rstrip('/')}/save/{api.url}"
        return str(api.save())

    archive_url = bounded(call, cfg.save_deadline, "Save Page Now (legacy) request")
    m = _TS14.search(archive_url)
    if not m:
        raise WaybackError(f"Save Page Now (legacy) answered no snapshot URL ({archive_url!r})")
    return SaveResult(m.group(1), cfg.snapshot_url(m.group(1), url), None, "legacy")


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def config_of(config: Config) -> WaybackConfig:
    """The client settings from the store's configuration; IA's S3 keys only from the environment."""
    return WaybackConfig(base_url=config.str_("wayback.base_url"),
                         availability_url=config.str_("wayback.availability_url"),
                         timeout=config.float_("wayback.timeout"),
                         save_deadline=config.float_("wayback.save_deadline"),
                         poll_interval=config.float_("wayback.poll_interval"),
                         access_key=os.environ.get("ARCHIVER_IA_ACCESS_KEY") or None,
                         secret_key=os.environ.get("ARCHIVER_IA_SECRET_KEY") or None)


def cross_link(archive: Store, record_id: str, *, save_first: bool, if_not_archived_within: str | None,
               key: Callable[[], Ed25519PrivateKey], actor: str) -> Addendum:
    """Ask the Archive about a record and keep its answer as a signed ``wayback`` addendum."""
    from archiver.provenance.signing import addendum_file_bytes, sign_addendum

    summary = archive.resolve(record_id)
    manifest = archive.manifest(summary.record_id)
    private = key()  # a wrong passphrase fails before any request
    cfg = config_of(archive.config)
    url = manifest.subject.final_url
    ts = wayback_timestamp(manifest.captured_at)
    if save_first:
        save(url, cfg, if_not_archived_within=if_not_archived_within)
    avail = availability(url, ts, cfg)
    rows = cdx_near(url, ts, cfg)
    evidence = corroborate(rows, ts, manifest.digests.payload_sha1_b32,
                           checked_at=_now_iso(), cfg=cfg,
                           saved=save_first, availability_ts=avail[0] if avail else None,
                           our_chunked_sha1_b32=manifest.digests.payload_sha1_b32_chunked)
    add = sign_addendum(Addendum(kind="wayback", record_id=summary.record_id,
                                 manifest_sha256=summary.manifest_sha256, created_at=evidence.checked_at,
                                 wayback=evidence), private)
    archive.commit_addendum(add, addendum_file_bytes(add), actor=actor)
    return add


def still_listed(evidence: WaybackEvidence, cfg: WaybackConfig) -> tuple[bool, str]:
    """Is the recorded snapshot still listed by the CDX API, with the same digest?"""
    if not evidence.snapshot_timestamp or not evidence.cdx:
        return True, "nothing to re-check (no snapshot was recorded)"
    rows = cdx_near(evidence.cdx[2], evidence.snapshot_timestamp, cfg, limit=5)
    same = [r for r in rows if r.timestamp == evidence.snapshot_timestamp]
    if not same:
        return False, f"snapshot {evidence.snapshot_timestamp} is no longer listed by the Wayback Machine"
    if same[0].digest != evidence.archive_digest:
        return False, (f"snapshot {evidence.snapshot_timestamp} now reports digest {same[0].digest}, "
                       f"recorded {evidence.archive_digest}")
    return True, f"snapshot {evidence.snapshot_timestamp} still listed, digest {same[0].digest}"


__all__ = ["CAVEAT", "CDXRow", "SaveResult", "WaybackConfig", "availability", "cdx_near", "config_of",
           "corroborate", "cross_link", "save", "still_listed", "wayback_timestamp"]
