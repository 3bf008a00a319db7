"""Collections: a named, ordered list of records with a title — one public page for every citation of
a book, a brief or a report, and one bundle of all of them (Perma's most requested feature).

The model is deliberately general (an ordered list of record IDs with a title, private until
published) so that a matter's exhibit list can be a collection. Every change (create, add, publish,
unpublish) is a custody entry naming the actor, committed with its rows in one unit of work of the
write path; the custody events are ``collection-create``, ``collection-add``, ``collection-remove``,
``collection-publish``, ``collection-unpublish``. A record under a legal hold (``store/holds.py``: in
the exhibit list of a matter with an active hold) cannot be removed from any collection.

The public side sees a collection only while it is published, and of it only the records that are
public themselves: a private record in a published collection is left out of the page, the JSON and
the bundle, with nothing in their place (no gap in numbering, no count), so publishing a collection
never publishes or hints at a record. An unpublished or unknown name is the same "not found".

The collection's bundle (one WACZ of its public records) is kept in the store under
``public/collections/`` and named by a key over exactly what it holds (the public record IDs in order,
their manifests and addenda). A reader is handed the bundle of the collection's key *now*: a record
unpublished since an earlier bundle was made changes the key, so a bundle that still holds it is never
served. Like a public record's bundle it is a cache made without a custody entry (reads write
neither catalog nor custody); ``collection publish`` and ``add`` make it at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import NotFoundError, StoreConflictError, UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.ports import Store
    from archiver.provenance.keys import PassphraseSource

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_TITLE = 300
#: What a collection's page is cited in on the public side (the legal style this project leads with).
CITATION_STYLE = "bluebook"
BUNDLE_DIR = Path("public") / "collections"


@dataclass(frozen=True, slots=True)
class Collection(Report):
    """A collection as its owner sees it: every record, public or not, in order."""

    name: str
    title: str
    public: bool
    created_at: str
    updated_at: str
    record_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CollectionChange(Report):
    """What a ``collection`` command did: ``changed`` false when there was nothing to do."""

    name: str
    action: str
    changed: bool
    added: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    bundle_sha256: str | None = None
    removed: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PublicItem(Report):
    """One public record of a published collection, as the public page lists it."""

    position: int
    record_id: str
    title: str
    entity: str | None
    document: str | None
    url: str
    captured_at: str
    content_sha256: str
    citation: str
    permalink: str | None


@dataclass(frozen=True, slots=True)
class PublicBundle(Report):
    """The collection's bundle as a reader downloads it."""

    filename: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PublicCollection(Report):
    """A published collection as anyone may see it: its title and its public records, in order."""

    name: str
    title: str
    items: tuple[PublicItem, ...]
    bundle: PublicBundle | None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_name(name: str) -> str:
    """A collection's name is part of public URLs and file names: lower-case letters, digits, ``.``,
    ``_`` and ``-``, at most 64, starting with a letter or digit (so no ``/`` and no ``..``)."""
    if "/" in name or "\\" in name or ".." in name or not NAME.fullmatch(name) or \
            name.endswith((".json", ".wacz", ".html")):
        shown = json.dumps(name[:70])
        raise UsageError(f"collection name {shown} must be 1-64 of a-z 0-9 . _ - starting with a letter or digit, "
                         "without '/', '..' or a .json/.wacz/.html ending")
    return name


def _check_title(title: str) -> str:
    title = title.strip()
    if len(title) > MAX_TITLE or any(ord(c) < 32 for c in title):
        raise UsageError(f"the title must be one line of at most {MAX_TITLE} characters")
    return title


def _row(d: Any, name: str) -> tuple[Any, ...] | None:
    row = d.one("SELECT name, title, public, created_at, updated_at FROM collections WHERE name=?", (name,))
    return tuple(row) if row else None


def _items(d: Any, name: str) -> tuple[str, ...]:
    return tuple(str(r[0]) for r in d.rows("SELECT record_id FROM collection_items WHERE name=? ORDER BY position",
                                           (name,)))


def _collection(d: Any, name: str) -> Collection:
    row = _row(d, name)
    if row is None:
        raise NotFoundError(f"no collection named {name!r}", hint="see `archiver collection list`")
    return Collection(name=str(row[0]), title=str(row[1]), public=bool(row[2]), created_at=str(row[3]),
                      updated_at=str(row[4]), record_ids=_items(d, name))


def insert(d: Any, name: str, title: str, now: str) -> None:
    """The row of a new collection, inside the caller's unit of work (a matter makes its exhibit list)."""
    d.run("INSERT INTO collections (name, title, public, created_at, updated_at) VALUES (?,?,0,?,?)",
          (name, title, now, now))


def create(core: Store, name: str, *, title: str = "", actor: str) -> Collection:
    """A new, empty, private collection (its title defaults to its name)."""
    from store.custody import Event

    name, title = check_name(name), _check_title(title) or name
    now = _now()

    def index(d: Any) -> None:
        insert(d, name, title, now)
    try:
        core.ledger.commit([Event("collection-create", detail={"name": name, "title": title})], actor=actor,
                           index=index)
    except StoreConflictError as exc:
        raise UsageError(f"a collection named {name!r} exists already",
                         hint=f"`archiver collection add {name} ID…` adds records to it") from exc
    return get(core, name)


def add(core: Store, name: str, record_ids: list[str], *, actor: str) -> CollectionChange:
    """Append records in the order given; one already in the collection keeps its place. Every ID is
    resolved first (a typo changes nothing)."""
    from store.custody import Event

    check_name(name)
    if not record_ids:
        raise UsageError("name at least one record ID")
    wanted = [s.record_id for s in core.resolve_many(list(dict.fromkeys(record_ids)))]

    def prepare(d: Any) -> tuple[list[Event], None, tuple[list[str], list[str]]]:
        _collection(d, name)
        present = set(_items(d, name))
        new = [rid for rid in wanted if rid not in present]
        if not new:
            return [], None, ([], wanted)
        row = d.one("SELECT COALESCE(MAX(position), 0) FROM collection_items WHERE name=?", (name,))
        start, now = int(row[0]) if row else 0, _now()
        d.many("INSERT INTO collection_items (name, position, record_id, added_at) VALUES (?,?,?,?)",
               [(name, start + i, rid, now) for i, rid in enumerate(new, 1)])
        d.run("UPDATE collections SET updated_at=? WHERE name=?", (now, name))
        # the record is named in the detail, not as the entry's record: a record's custody travels in
        # every bundle of it, and must not tell its readers which (possibly private) lists hold it
        return ([Event("collection-add", detail={"name": name, "record_id": rid, "position": str(start + i)})
                 for i, rid in enumerate(new, 1)], None, (new, [r for r in wanted if r in present]))
    _, (new, already) = core.ledger.run(prepare, actor=actor)
    if new:  # a record joining a held matter's list (by `matter add` or this command) is held at once: on
        from store.holds import held  # S3 with Object Lock its objects get the server's legal hold too

        with core.catalog.db() as d:
            now_held = list(held(d, new))
        if now_held:
            from archiver.matters.holds import apply_server_holds

            apply_server_holds(core, now_held)
    return CollectionChange(name=name, action="add", changed=bool(new), added=tuple(new), already=tuple(already))


def remove(core: Store, name: str, record_ids: list[str], *, actor: str) -> CollectionChange:
    """Take records out of a collection (the others keep their order). Refused, changing nothing, when
    any of them is under a legal hold: the refusal names the hold (``HoldError``)."""
    from store.custody import Event
    from store.holds import refuse_records

    check_name(name)
    if not record_ids:
        raise UsageError("name at least one record ID")
    wanted = [s.record_id for s in core.resolve_many(list(dict.fromkeys(record_ids)))]

    def prepare(d: Any) -> tuple[list[Event], None, list[str]]:
        _collection(d, name)
        present = set(_items(d, name))
        gone = [rid for rid in wanted if rid in present]
        if not gone:
            return [], None, []
        refuse_records(d, gone, f"removing records from collection {name!r}")
        for rid in gone:
            d.run("DELETE FROM collection_items WHERE name=? AND record_id=?", (name, rid))
        d.run("UPDATE collections SET updated_at=? WHERE name=?", (_now(), name))
        return [Event("collection-remove", detail={"name": name, "record_id": rid}) for rid in gone], None, gone
    _, gone = core.ledger.run(prepare, actor=actor)
    return CollectionChange(name=name, action="remove", changed=bool(gone), removed=tuple(gone),
                            absent=tuple(r for r in wanted if r not in gone))


def set_public(core: Store, name: str, public: bool, *, actor: str) -> CollectionChange:
    """Publish or unpublish a collection (its records keep their own state: see the module docstring)."""
    from store.custody import Event

    check_name(name)
    kind = "publish" if public else "unpublish"

    def prepare(d: Any) -> tuple[list[Event], None, bool]:
        c = _collection(d, name)
        if c.public == public:
            return [], None, False
        d.run("UPDATE collections SET public=?, updated_at=? WHERE name=?", (int(public), _now(), name))
        return [Event(f"collection-{kind}", detail={"name": name})], None, True
    _, changed = core.ledger.run(prepare, actor=actor)
    return CollectionChange(name=name, action=kind, changed=changed)


def get(core: Store, name: str) -> Collection:
    check_name(name)
    with core.catalog.db() as d:
        return _collection(d, name)


def list_all(core: Store) -> list[Collection]:
    with core.catalog.db() as d:
        names = [str(r[0]) for r in d.rows("SELECT name FROM collections ORDER BY name")]
        return [_collection(d, n) for n in names]


# ---- the public side -----------------------------------------------------------------------------
def public_records(core: Store, name: str) -> list[str] | None:
    """The public records of a published collection, in order; None when the name is unknown, not a
    valid name or not published (the public side cannot tell these apart)."""
    from archiver.publication import public_ids

    if not NAME.fullmatch(name):
        return None
    with core.catalog.db() as d:
        row = _row(d, name)
        ids = list(_items(d, name)) if row is not None and row[2] else None
    if ids is None:
        return None
    public = public_ids(core, ids)
    return [rid for rid in ids if rid in public]


def bundle_key(core: Store, record_ids: list[str]) -> str:
    """What a collection's bundle holds, as one digest: the records in order, each manifest and every
    addendum (a later timestamp, an unpublication) — any change gives another key."""
    parts: list[Any] = []
    with core.catalog.db() as d:
        for rid in record_ids:
            row = d.one("SELECT manifest_sha256 FROM records WHERE record_id=?", (rid,))
            adds = sorted(str(r[0]) for r in d.rows("SELECT sha256 FROM addenda WHERE record_id=?", (rid,)))
            parts.append([rid, str(row[0]) if row else "", adds])
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def _bundle_dir(core: Store) -> Path:
    return Path(core.root) / BUNDLE_DIR


def _env_passphrase() -> str | None:  # a server has no one to ask: the key's passphrase comes from its env
    return os.environ.get("ARCHIVER_KEY_PASSPHRASE") or None


def collection_bundle(core: Store, name: str, record_ids: list[str], *,
                      passphrase: PassphraseSource | None = None) -> tuple[Path, str] | None:
    """The WACZ of exactly ``record_ids`` (a published collection's public records, in order), made
    once per key (:func:`bundle_key`) into ``<store>/public/collections/`` and kept, with its SHA-256;
    None for no records. Like a public record's bundle (``publication.public_bundle``) it is a cache:
    written without a custody entry (each record's ``publish`` entry says it is given to anyone), so a
    reader's GET writes neither catalog nor custody. Bundles of the collection's earlier states are
    removed once the new one is in place: one that holds a record unpublished since is never served."""
    from archiver.bundle.export import export

    if not record_ids:
        return None
    check_name(name)
    folder = _bundle_dir(core)
    path = folder / f"{name}-{bundle_key(core, record_ids)[:32]}.wacz"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"  # threads of one server too
        try:
            result = export(core, record_ids, tmp, passphrase=passphrase or _env_passphrase, actor="public",
                            log=False)
            _sidecar(path).write_text(result.sha256 + "\n", "ascii")  # before the bundle: never without it
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        for old in folder.glob(f"{name}-*.wacz"):
            if old != path and re.fullmatch(re.escape(name) + r"-[0-9a-f]{32}\.wacz", old.name):
                old.unlink(missing_ok=True)
                _sidecar(old).unlink(missing_ok=True)
    return path, _bundle_sha256(path)


def _sidecar(bundle: Path) -> Path:
    return bundle.with_name(bundle.name + ".sha256")


def _bundle_sha256(bundle: Path) -> str:
    """The bundle's digest, from its sidecar (written with it) or, failing that, by reading it."""
    try:
        text = _sidecar(bundle).read_text("ascii").strip()
        if re.fullmatch(r"[0-9a-f]{64}", text):
            return text
    except OSError:
        pass
    h = hashlib.sha256()
    with bundle.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def public_view(core: Store, name: str, *, only: set[str] | None = None) -> PublicCollection | None:
    """A published collection as anyone may see it, or None (unknown, unpublished: the same None).
    ``only`` narrows it to the records a static export holds; when that leaves some public record out,
    the view has no bundle (the caller makes the bundle of exactly its items)."""
    from archiver.cite import citation_data, render
    from archiver.publication import permalink

    public = public_records(core, name)
    if public is None:
        return None
    ids = [r for r in public if only is None or r in only]
    with core.catalog.db() as d:
        title = str(_row(d, name)[1])  # type: ignore[index]
    summaries = core.catalog.get_many(ids)
    items = []
    for pos, rid in enumerate(ids, 1):
        s = summaries[rid]
        items.append(PublicItem(position=pos, record_id=rid, title=s.title or s.document or s.url, entity=s.entity,
                                document=s.document, url=s.url, captured_at=s.captured_at,
                                content_sha256=s.content_sha256,
                                citation=render(citation_data(core, rid), CITATION_STYLE),
                                permalink=permalink(core, rid)))
    made = collection_bundle(core, name, ids) if ids == public else None
    bundle = None
    if made is not None:
        bundle = PublicBundle(filename=f"{name}.wacz", size=made[0].stat().st_size, sha256=made[1])
    return PublicCollection(name=name, title=title, items=tuple(items), bundle=bundle)


def published_names(core: Store) -> list[str]:
    """The names of the published collections (what a static export writes pages for)."""
    with core.catalog.db() as d:
        return [str(r[0]) for r in d.rows("SELECT name FROM collections WHERE public=1 ORDER BY name")]


ListOf = list  # the class below defines a method named list


class Collections:
    """The collections of one store (``archive.collections``)."""

    def __init__(self, core: Store) -> None:
        self.core = core

    def create(self, name: str, *, title: str = "", actor: str) -> Collection:
        return create(self.core, name, title=title, actor=actor)

    def add(self, name: str, record_ids: list[str], *, actor: str, passphrase: PassphraseSource) -> CollectionChange:
        return self._warm(add(self.core, name, record_ids, actor=actor), passphrase)

    def publish(self, name: str, *, actor: str, passphrase: PassphraseSource) -> CollectionChange:
        return self._warm(set_public(self.core, name, True, actor=actor), passphrase)

    def unpublish(self, name: str, *, actor: str) -> CollectionChange:
        return set_public(self.core, name, False, actor=actor)

    def remove(self, name: str, record_ids: ListOf[str], *, actor: str) -> CollectionChange:
        return remove(self.core, name, record_ids, actor=actor)

    def _warm(self, change: CollectionChange, passphrase: PassphraseSource) -> CollectionChange:
        """Make the bundle a published collection's page offers now (asking for the key's passphrase
        here), so the first reader does not wait for it."""
        from dataclasses import replace

        ids = public_records(self.core, change.name)
        made = collection_bundle(self.core, change.name, ids, passphrase=passphrase) if ids else None
        return replace(change, bundle_sha256=made[1]) if made else change

    def get(self, name: str) -> Collection:
        return get(self.core, name)

    def list(self) -> list[Collection]:
        return list_all(self.core)

    def public_view(self, name: str, *, only: set[str] | None = None) -> PublicCollection | None:
        return public_view(self.core, name, only=only)

    def published(self) -> ListOf[str]:
        return published_names(self.core)

    def public_records(self, name: str) -> ListOf[str] | None:
        return public_records(self.core, name)

    def bundle(self, name: str, record_ids: ListOf[str]) -> tuple[Path, str] | None:
        return collection_bundle(self.core, name, record_ids)


__all__ = ["CITATION_STYLE", "Collection", "CollectionChange", "Collections", "PublicBundle", "PublicCollection",
           "PublicItem", "add", "bundle_key", "check_name", "collection_bundle", "create", "get", "insert", "list_all",
           "public_records", "public_view", "published_names", "remove", "set_public"]
