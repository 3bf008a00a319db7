"""Whom a verifier trusts: keys in its keyring, keys it pins (``--trust-key``), and keys vouched for
by a valid rotation statement signed by a key it already trusts. A key is never trusted because
the evidence carries it: a bundle can carry any key, and a rotation statement only passes trust on
from a key the verifier trusts, from the old key to the new (never backwards: untrusting an old,
perhaps compromised key must not be undone by its successor)."""

from __future__ import annotations

from collections.abc import Callable

from archiver.provenance.keys import Rotation

_MAX_HOPS = 32  # rotations in a key's history; a longer (or circular) walk is refused


class TrustDecision:
    """``roots``: key id → why it is trusted ("in the keyring", "pinned"); ``rotations_to``: the
    checked rotation statements whose new key is the given key id."""

    def __init__(self, roots: dict[str, str], rotations_to: Callable[[str], list[Rotation]]) -> None:
        self._roots = roots
        self._rotations_to = rotations_to
        self._cache: dict[str, str | None] = {}

    def why(self, key_id: str) -> str | None:
        """How ``key_id`` is trusted, in words; None when it is not."""
        if key_id not in self._cache:
            self._cache[key_id] = self._walk(key_id, frozenset(), 0)
        return self._cache[key_id]

    def trusted(self, key_id: str) -> bool:
        return self.why(key_id) is not None

    def _walk(self, key_id: str, seen: frozenset[str], hops: int) -> str | None:
        if key_id in self._roots:
            return self._roots[key_id]
        if hops >= _MAX_HOPS or key_id in seen:
            return None
        for rot in self._rotations_to(key_id):
            if rot.new_key_id != key_id:
                continue
            how = self._walk(rot.old_key_id, seen | {key_id}, hops + 1)
            if how is not None:
                return f"vouched for by {rot.old_key_id} (key rotation of {rot.rotated_at}), which is {how}"
        return None


def short(key_id: str) -> str:
    return key_id[:23] + "…" if len(key_id) > 24 else key_id
