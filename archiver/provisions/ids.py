"""Provision IDs: ``P-XXXX-XXXX``, the record ID's alphabet with a ``P-`` in front.

A provision ID is cited beside record IDs in the same filings, so the two must never be taken for
each other: a record ID has 8 symbols, a provision ID 9 (a leading ``P`` and 8), so neither
normaliser accepts the other's form, with or without hyphens. Input is forgiving in the same way
(lower case, missing hyphens, I/L → 1 and O → 0 after the prefix).
"""

from __future__ import annotations

import re
import secrets

from archiver.errors import UsageError
from archiver.provenance.ids import ALPHABET

_VALID = re.compile(r"^P-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


def new_provision_id() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"P-{chars[:4]}-{chars[4:]}"


def normalize_provision_id(text: str) -> str:
    raw = re.sub(r"[\s-]", "", text).upper()
    if len(raw) != 9 or raw[0] != "P":
        raise UsageError(f"not a provision ID: {text[:40]!r}", hint="provision IDs look like P-7KQ2-M9XD "
                         "(record IDs, without the P-, are cited with `archiver cite RECORD_ID`)")
    body = raw[1:].translate(str.maketrans("ILO", "110"))
    candidate = f"P-{body[:4]}-{body[4:]}"
    if not _VALID.match(candidate):
        raise UsageError(f"not a provision ID: {text[:40]!r}", hint="provision IDs look like P-7KQ2-M9XD")
    return candidate


def is_provision_id(text: str) -> bool:
    try:
        normalize_provision_id(text)
    except UsageError:
        return False
    return True


__all__ = ["is_provision_id", "new_provision_id", "normalize_provision_id"]
