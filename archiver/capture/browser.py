"""Browser capture: what a person saw — screenshot, print PDF, rendered DOM — with every network
exchange of the page in the WARC, byte-exact.

Headless Chromium (Debian's package, never ``playwright install``) is driven by Playwright. Every
request the page makes is intercepted (``page.route``) and fetched by *our* recording fetcher, so
each sub-resource gets the same treatment as the page itself: scheme check, the private-network
guard on every resolved address, size caps, raw bytes into the WARC. The browser is then fed the
decoded response (``route.fulfill``). A sub-request to a private address is refused and listed in
the manifest. Chromium runs with the flags that keep it off the network except for the target.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from archiver.capture.fetch import FetchResult, fetch
from archiver.decode import decode_stream
from archiver.errors import (
    ArchiverError,
    BlockedAddressError,
    CaptureError,
    CaptureTimeoutError,
    ConfigError,
)
from archiver.options import BrowserOptions, parse_viewport
from archiver.records import BrowserInfo, Manifest, StepOutcome

if TYPE_CHECKING:
    from archiver.core import StoreCore
    from archiver.options import CaptureOptions
    from archiver.provenance.keys import PassphraseSource

CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--disable-gpu", "--no-default-browser-check",
                 "--disable-features=Translate,MediaRouter,OptimizationHints"]
_HOP_BY_HOP = {"content-encoding", "transfer-encoding", "content-length", "connection", "keep-alive"}


def find_chromium() -> str:
    for cand in (os.environ.get("ARCHIVER_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                 shutil.which("google-chrome")):
        if cand and os.path.exists(cand):
            return cand
    raise ConfigError("Chromium is not installed",
                      hint="install Debian's package (sudo apt-get install chromium) or point ARCHIVER_CHROMIUM "
                           "at a Chromium binary; `make test` installs it when missing")


class BrowserSession:
    """One Chromium for many captures (a fresh context per page). Use as a context manager; not
    thread-safe (Playwright's sync API), so batches with a browser run one page at a time."""

    def __init__(self) -> None:
        self._pw: Any = None
        self.browser: Any = None

    def __enter__(self) -> BrowserSession:
        from archiver.extras import require

        sync_playwright = require("browser", "playwright.sync_api").sync_playwright
        exe = find_chromium()
        self._pw = sync_playwright().start()
        args = list(CHROMIUM_ARGS)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to sandbox as root
        try:
            self.browser = self._pw.chromium.launch(executable_path=exe, args=args, headless=True)
        except Exception as exc:
            self._pw.stop()
            raise CaptureError(f"Chromium at {exe} did not start: {str(exc).splitlines()[0]}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.browser is not None:
                self.browser.close()
        finally:
            if self._pw is not None:
                self._pw.stop()

    def capture(self, archive: StoreCore, url: str, opts: CaptureOptions, bopts: BrowserOptions,
                passphrase: PassphraseSource, *, actor: str) -> Manifest:
        from archiver.capture import Rendered, capture_url, fetch_options

        archive.keys.load_private(passphrase)  # a wrong passphrase fails before the browser loads anything
        fopts = fetch_options(archive, opts)
        cap_decoded = archive.config.int_("capture.max_decoded_bytes")
        fetches: list[FetchResult] = []
        blocked: list[str] = []
        failed: list[str] = []
        late: list[str] = []  # sub-resources still loading when the page's time ran out
        total = [0]
        main: list[FetchResult] = []
        context = self.browser.new_context(viewport={"width": bopts.viewport[0], "height": bopts.viewport[1]},
                                           service_workers="block", accept_downloads=False,
                                           ignore_https_errors=False)
        page = context.new_page()

        def handle(route: Any) -> None:
            req = route.request
            target = req.url
            if target.startswith(("data:", "blob:", "about:")):
                route.continue_()
                return
            if req.method not in ("GET", "HEAD"):
                blocked.append(f"{req.method} {target} (only GET is recorded)")
                route.abort("blockedbyclient")
                return
            # A handler blocks the browser's event loop, so no fetch may outlive the page's own deadline.
            remaining = page_deadline - time.monotonic()
            if remaining <= 0.05:
                late.append(target)
                route.abort("timedout")
                return
            sub_opts = dataclasses.replace(fopts, deadline=min(fopts.deadline, remaining),
                                           timeout=min(fopts.timeout, remaining))
            try:
                res = fetch(target, sub_opts, archive.blobs.new_temp)
            except BlockedAddressError as exc:
                blocked.append(f"{target} ({exc.message})")
                route.abort("blockedbyclient")
                return
            except CaptureTimeoutError:
                late.append(target)
                route.abort("timedout")
                return
            except ArchiverError as exc:
                failed.append(f"{target} ({exc.message})")
                route.abort("failed")
                return
            final = res.final
            total[0] += sum(h.payload_size for h in res.hops)
            if total[0] > bopts.max_page_bytes:
                res.cleanup()
                failed.append(f"{target} (page over {bopts.max_page_bytes:,} bytes)")
                route.abort("failed")
                return
            if not main and target.split("#")[0] == url.split("#")[0]:
                main.append(res)
            else:
                fetches.append(res)
            body = io.BytesIO()
            try:
                with open(final.body_path, "rb") as fh:
                    decode_stream(fh, body, final.header("Content-Encoding"), cap_decoded)
            except ArchiverError as exc:
                failed.append(f"{target} ({exc.message})")
                route.abort("failed")
                return
            headers = {k: v for k, v in final.headers if k.lower() not in _HOP_BY_HOP}
            route.fulfill(status=final.status, headers=headers, body=body.getvalue())

        steps: list[StepOutcome] = []
        partial = False
        captured = time.time()
        page_deadline = time.monotonic() + bopts.timeout
        try:
            page.route("**/*", handle)
            try:
                page.goto(url, wait_until=bopts.wait, timeout=bopts.timeout * 1000)
                steps.append(StepOutcome("browser", "ok", f"reached {bopts.wait}"))
            except Exception as exc:
                text = str(exc)
                if "Download is starting" in text:
                    steps.append(StepOutcome("browser", "skipped", "the URL is a download, not a page"))
                    for r in fetches + main:
                        r.cleanup()
                    context.close()
                    return capture_url(archive, url, opts, passphrase, actor=actor)
                if type(exc).__name__ != "TimeoutError" or not main:
                    if not main:
                        reason = failed[0] if failed else (blocked[0] if blocked else text.splitlines()[0])
                        if blocked and not failed and blocked[0].startswith(url):
                            raise BlockedAddressError(f"refusing to capture {url}: {blocked[0]}") from exc
                        raise CaptureError(f"the browser could not load {url}: {reason}") from exc
                    raise CaptureError(f"the browser failed on {url}: {text.splitlines()[0]}") from exc
                if bopts.strict:
                    raise CaptureTimeoutError(f"{url} did not reach '{bopts.wait}' within {bopts.timeout:g} s "
                                              "(--strict)") from exc
                partial = True
                steps.append(StepOutcome("browser", "partial", f"did not reach {bopts.wait} within "
                                                               f"{bopts.timeout:g} s; captured what loaded"))
            if late and not partial:
                if bopts.strict:
                    raise CaptureTimeoutError(f"{url}: {len(late)} resource(s) still loading after "
                                              f"{bopts.timeout:g} s (--strict)")
                partial = True
                steps.append(StepOutcome("browser", "partial", f"{len(late)} resource(s) still loading after "
                                                               f"{bopts.timeout:g} s: {', '.join(late[:5])}"))
            shot = page.screenshot(full_page=bopts.full_page, type="png", timeout=bopts.timeout * 1000)
            pdf = page.pdf(print_background=True)
            dom = page.content().encode("utf-8")
            title = page.title() or None
            # the rendered DOM through the same extractor as a plain capture, so switching between
            # modes never shows up as a text change
            from archiver.capture.extract import html_text

            text, dom_title = html_text(dom, "text/html; charset=utf-8")
            title = title or dom_title
            agent = page.evaluate("() => navigator.userAgent")
        except ArchiverError:
            for r in fetches + main:
                r.cleanup()
            raise
        except Exception as exc:
            for r in fetches + main:
                r.cleanup()
            raise CaptureError(f"the browser failed on {url}: {str(exc).splitlines()[0]}") from exc
        finally:
            try:
                context.close()
            except Exception:  # noqa: S110 - a crashed browser has nothing left to close
                pass
        if failed:
            steps.append(StepOutcome("subresources", "failed", "; ".join(failed[:10])[:1000]))
        if blocked:
            steps.append(StepOutcome("blocked", "ok", f"{len(blocked)} sub-request(s) refused"))
        info = BrowserInfo(name="chromium", version=str(self.browser.version), user_agent=str(agent),
                           viewport=f"{bopts.viewport[0]}x{bopts.viewport[1]}", wait=bopts.wait,
                           full_page=bopts.full_page, partial=partial, resources=len(fetches),
                           blocked=tuple(blocked))
        rendered = Rendered(main=main[0], subresources=fetches, captured=captured, text=str(text), title=title,
                            artifacts=[("screenshot", "screenshot.png", shot, "image/png"),
                                       ("pdf", "page.pdf", pdf, "application/pdf"),
                                       ("dom", "dom.html", dom, "text/html; charset=utf-8")],
                            browser=info, steps=steps)
        return capture_url(archive, url, opts, passphrase, actor=actor, rendered=rendered)


__all__ = ["BrowserOptions", "BrowserSession", "find_chromium", "parse_viewport"]
