"""The bundled sample site, served on 127.0.0.1 so the demo (and tests) never touch the web."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Self

Route = Callable[[BaseHTTPRequestHandler], None]


def site_file(name: str) -> bytes:
    return resources.files("archiver.demo").joinpath("site", name).read_bytes()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
         extra: dict[str, str] | None = None, *, chunked: bool = False, chunk_size: int = 1000) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Last-Modified", "Tue, 05 May 2026 09:00:00 GMT")
    handler.send_header("ETag", '"demo-' + str(len(body)) + '"')
    for k, v in (extra or {}).items():
        handler.send_header(k, v)
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for i in range(0, len(body), chunk_size):
            part = body[i:i + chunk_size]
            handler.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")
    else:
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def demo_routes(state: dict[str, int] | None = None) -> dict[str, Route]:
    """``state["privacy_version"]`` (1 or 2) picks which version of the policy ``/privacy`` serves."""
    st = state if state is not None else {"privacy_version": 1}

    def privacy(h: BaseHTTPRequestHandler) -> None:
        name = "privacy-v2.html" if st.get("privacy_version", 1) == 2 else "privacy.html"
        send(h, 200, site_file(name), "text/html; charset=utf-8", chunked=True)

    return {
        "/privacy": privacy,
        "/terms.pdf": lambda h: send(h, 200, site_file("terms.pdf"), "application/pdf"),
        "/old-privacy": lambda h: send(h, 301, b"", "text/html", {"Location": "/privacy"}),
        "/news": lambda h: send(h, 200, gzip.compress(site_file("news.html"), mtime=0), "text/html; charset=utf-8",
                                {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}),
        "/": lambda h: send(h, 200, b'<html><head><title>Example Inc.</title></head><body><a href="/privacy">'
                                  b"Privacy</a> <a href=\"/terms.pdf\">Terms</a></body></html>", "text/html"),
    }


class QuietHTTPServer(ThreadingHTTPServer):
    """Threaded, daemonic, and silent about clients that hang up (they are not the server's fault)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackService:
    """A threaded HTTP server on a free 127.0.0.1 port, run as a context manager."""

    httpd: QuietHTTPServer

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = QuietHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SampleSite(LoopbackService):
    """The sample site: a threaded HTTP/1.1 server on a free loopback port."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.state: dict[str, int] = {"privacy_version": 1}
        table = routes if routes is not None else demo_routes(self.state)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                route = table.get(self.path.split("?", 1)[0])
                if route is None:
                    send(self, 404, b"not found", "text/plain")
                else:
                    route(self)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._serve(Handler)
