"""Where evidence records live: immutable blobs, a rebuildable catalog, an append-only custody log."""

from store.blobs import BlobStore
from store.catalog import Catalog
from store.custody import CustodyEntry, CustodyLog

__all__ = ["BlobStore", "Catalog", "CustodyEntry", "CustodyLog"]
