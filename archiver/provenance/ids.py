"""Short, typable record IDs for filings: ``XXXX-XXXX`` over Crockford's 32-symbol alphabet.

Crockford's alphabet drops I, L, O and U, so an ID read aloud or retyped from paper survives:
lower case, missing hyphens and the look-alikes I/L (→1) and O (→0) are accepted on input.
"""

from __future__ import annotations

import re
import secrets

from archiver.errors import UsageError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


def new_record_id() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalize_record_id(text: str) -> str:
    raw = re.sub(r"[\s-]", "", text).upper().translate(str.maketrans("ILO", "110"))
    candidate = f"{raw[:4]}-{raw[4:]}"
    if len(raw) != 8 or not _VALID.match(candidate):
        raise UsageError(f"not a record ID: {text!r}", hint="record IDs look like 7KQ2-M9XD")
    return candidate


def is_canonical_record_id(text: str) -> bool:
    """Exactly the form we issue and store (no normalising): what a record ID read from a bundle or a
    catalog row must be, since it becomes file names, catalog keys and terminal output."""
    return bool(_VALID.match(text))


def is_record_id(text: str) -> bool:
    try:
        normalize_record_id(text)
    except UsageError:
        return False
    return True
