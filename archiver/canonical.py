"""RFC 8785 (JCS) canonical JSON: the bytes every signature and custody hash is computed over.

``rfc8785`` writes JCS value by value in Python (about a millisecond for a manifest, three times per
capture). For the plain data our records hold (str, bool, None, integers within ±(2**53 - 1), lists,
and dicts with ASCII keys) the C JSON encoder with sorted keys and no whitespace writes the same
bytes: JCS escapes exactly what it escapes (``"``, ``\\``, control characters as ``\\b \\f \\n \\r \\t``
or ``\\u00xx``), leaves every other character as UTF-8, and sorts keys by UTF-16 code units, which
for ASCII keys is the encoder's order. Anything else (a float, a non-ASCII key, a string subclass, a
lone surrogate) is handed to ``rfc8785`` itself, so its rules and its errors apply unchanged.
"""

from __future__ import annotations

import json
from typing import Any

_INT_MAX = 2**53 - 1
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_INT_MAX <= value <= _INT_MAX)
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(_plain(v) for v in value)
    return False


def canonical(obj: Any) -> bytes:
    """JCS bytes of ``obj``; raises ``rfc8785``'s errors (ValueError) for what JCS cannot represent."""
    if _plain(obj):
        try:
            return _encode(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 says so in its own words
    import rfc8785

    return rfc8785.dumps(obj)


__all__ = ["canonical"]
