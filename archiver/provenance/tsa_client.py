"""HTTP transport to an RFC 3161 TSA (RFC 3161 §3.4): POST the query, read a bounded answer.

Retries only what retrying can fix (timeouts, refused connections, 5xx), with a short backoff;
a TSA that answers garbage or refuses is reported at once.
"""

from __future__ import annotations

import time

import requests

from archiver._version import __version__
from archiver.errors import TimestampError

MAX_REPLY_BYTES = 1 << 20  # tokens are a few KB; a megabyte is already absurd


def post_query(url: str, query: bytes, *, timeout: float = 10.0, retries: int = 2,
               backoff: float = 0.5) -> bytes:
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * (2 ** (attempt - 1)))
        try:
            with requests.post(url, data=query, timeout=timeout, stream=True, allow_redirects=False,
                               headers={"Content-Type": "application/timestamp-query",
                                        "Accept": "application/timestamp-reply",
                                        "User-Agent": f"archiver/{__version__}"}) as resp:
                if resp.status_code >= 500:
                    last = f"HTTP {resp.status_code} from {url}"
                    continue
                if resp.status_code != 200:
                    raise TimestampError(f"TSA {url} answered HTTP {resp.status_code}")
                body = b""
                for chunk in resp.iter_content(1 << 14):
                    body += chunk
                    if len(body) > MAX_REPLY_BYTES:
                        raise TimestampError(f"TSA {url} sent more than {MAX_REPLY_BYTES} bytes")
                return body
        except requests.Timeout:
            last = f"TSA {url} did not answer within {timeout:g} s"
        except requests.ConnectionError as exc:
            last = f"cannot reach TSA {url}: {type(exc).__name__}"
        except requests.RequestException as exc:
            raise TimestampError(f"request to TSA {url} failed: {exc}") from exc
    raise TimestampError(f"{last} (after {retries + 1} attempts)")


__all__ = ["post_query"]
