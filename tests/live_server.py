"""`archiver serve`'s app on 127.0.0.1 in a thread, for browser tests (uvicorn, a real socket)."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any, Self

import requests
import uvicorn

from tests.services import free_port


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base_url + "/healthz", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the app did not start")

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.app.state.web.runner.shutdown(wait=True)
