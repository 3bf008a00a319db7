"""The one place this package reaches a matter: its existence and its ordered exhibit list
(``archiver/matters/``: a matter owns a collection, ``matter-<name>``, which is its exhibit list)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archiver.ports import Store


def matter_records(core: Store, name: str) -> list[str]:
    """The matter's records in order; NotFoundError (from ``matters.get``) when there is no such matter."""
    from archiver import matters

    matters.get(core, name)
    return list(matters.record_ids(core, name))


__all__ = ["matter_records"]
