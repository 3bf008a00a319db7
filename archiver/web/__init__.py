"""``archiver serve``: the web app and HTTP API, a front-end over the ``Archive`` facade like the CLI.

Needs the ``web`` extra (``pip install 'archiver[web]'``).
"""

from __future__ import annotations

from archiver.extras import require

require("web", "fastapi")

from archiver.web.app import create_app  # noqa: E402

__all__ = ["create_app"]
