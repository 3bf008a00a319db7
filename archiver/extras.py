"""Optional features and the extra that installs each: a missing one is a clear usage error, not a traceback.

The core install captures, stores, verifies, timestamps, cross-links with the Wayback Machine, cites,
bundles and watches. Heavier parts live in extras so one page can be captured without a browser
driver, an AWS SDK or a PostgreSQL client.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from archiver.errors import MissingExtraError

#: feature -> (extra, what it is for)
EXTRAS = {
    "browser": ("browser", "browser capture (--browser) through Playwright and Chromium"),
    "s3": ("s3", "S3-compatible blob storage (--blobs s3://...)"),
    "postgres": ("postgres", "a PostgreSQL catalog and the capture queue"),
    "web": ("web", "`archiver serve`, the web app and HTTP API"),
    "exhibits": ("exhibits", "signed exhibit PDFs and BagIt productions (pyHanko, bagit)"),
}


def require(extra: str, module: str) -> ModuleType:
    """Import ``module`` or say which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name, what = EXTRAS[extra]
        raise MissingExtraError(f"{what} needs the optional package {module.split('.')[0]!r}, which is not "
                                "installed", hint=f"pip install 'archiver[{name}]'") from exc
