"""The one place this package reaches a matter: its existence and its ordered exhibit list.

Matters are another subsystem (``archiver/matters/``: ``matters.get(core, name)`` raising a not-found
error, ``matters.record_ids(core, name)`` the ordered list). Until it is merged, a matter is read here
as what the design says its exhibit list is: a collection of the same name (``archiver/collections.py``).
At the merge, only :func:`matter_records` changes, to::

    matters.get(core, name)
    return list(matters.record_ids(core, name))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archiver.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from archiver.ports import Store


def matter_records(core: Store, name: str) -> list[str]:
    """The matter's records in order; NotFoundError when there is no such matter."""
    from archiver import collections

    try:
        return list(collections.get(core, name).record_ids)
    except (NotFoundError, UsageError) as exc:
        raise NotFoundError(f"no matter named {name!r}", hint="create it and add its records first") from exc


__all__ = ["matter_records"]
