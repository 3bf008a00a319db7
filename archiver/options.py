"""What a capture is asked to do: one value from the front-end to the fetch.

Why one value: a capture option used to travel through eleven files as fifteen keyword arguments
(CLI → facade → batch → pool worker → capture → fetch), and adding one meant touching all of them.
The CLI, the web app, the queue worker and the watch runner build a :class:`CaptureOptions`; the
facade, the batch pool and the capture pipeline pass it along unchanged (``dataclasses.replace`` for
a batch item's entity and document). It sits at the bottom layer so every front-end can build one
without importing the capture machinery (start-up time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archiver.errors import UsageError

WAITS = ("load", "domcontentloaded", "networkidle", "commit")


@dataclass(frozen=True, slots=True)
class BrowserOptions:
    """A capture through Chromium (``--browser``): what to wait for and what to render."""

    full_page: bool = True
    viewport: tuple[int, int] = (1440, 900)
    wait: str = "networkidle"
    strict: bool = False
    timeout: float = 60.0  # seconds for the page to reach ``wait`` (Scoop's default)
    max_page_bytes: int = 200_000_000  # all sub-resources together

    def __post_init__(self) -> None:
        if self.wait not in WAITS:
            raise UsageError(f"--wait must be one of {', '.join(WAITS)}, not {self.wait!r}")
        if min(self.viewport) < 100 or max(self.viewport) > 10000:
            raise UsageError(f"viewport {self.viewport[0]}x{self.viewport[1]} is out of range")


def parse_viewport(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError as exc:
        raise UsageError(f"--viewport takes WIDTHxHEIGHT, e.g. 1440x900, not {text!r}") from exc


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    entity: str | None = None
    document: str | None = None
    allow_private: bool | None = None  # None: take the store's setting / environment
    insecure: bool = False
    allow_status: bool = False
    job_key: str | None = None  # the queue job making this capture: at most one record per job
    select: tuple[str, ...] = ()  # declared extraction (Open Terms Archive rules): the main-text artifact
    remove: tuple[str, ...] = ()
    # nothing declared: find the document automatically (watches always do); None: the store's
    # ``capture.main_content`` setting, decided by the facade
    main_content: bool | None = None
    browser: BrowserOptions | None = None  # render in Chromium instead of a plain fetch
    # called once the page is downloaded, before the CPU-bound steps: a batch then starts its next
    # download at once, so waits on slow servers overlap with the processing of pages already here
    on_fetched: Callable[[], None] | None = None


__all__ = ["WAITS", "BrowserOptions", "CaptureOptions", "parse_viewport"]
