"""Prometheus text-format metrics, kept in memory by each server process (no client library needed).

With ``archiver serve --http-workers N`` every process counts the requests, captures and verifications
it handled itself, and a scrape of the port reaches one of them: sum the series over scrapes of each
process, or run N servers with ``--http-workers 1`` on their own ports. The capture-job gauges are
read from the catalog and so are the whole site's. Why not aggregate through the catalog: a write per
request would cost more than the request and break "a GET never writes the catalog"."""

from __future__ import annotations

import threading
from collections import defaultdict

#: Upper bounds of the request-latency histogram, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(**kv: str) -> str:
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in sorted(kv.items()))
    return "{" + inner + "}" if inner else ""


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency_buckets: dict[tuple[str, float], int] = defaultdict(int)
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_count: dict[str, int] = defaultdict(int)
        self.captures: dict[str, int] = defaultdict(int)
        self.verifications: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, str(status))] += 1
            for b in BUCKETS:
                if seconds <= b:
                    self.latency_buckets[(route, b)] += 1
            self.latency_sum[route] += seconds
            self.latency_count[route] += 1

    def capture(self, result: str) -> None:
        with self._lock:
            self.captures[result] += 1

    def verification(self, result: str) -> None:
        with self._lock:
            self.verifications[result] += 1

    def render(self, queue_depth: dict[str, int]) -> str:
        out = ["# HELP archiver_http_requests_total HTTP requests by method, route and status.",
               "# TYPE archiver_http_requests_total counter"]
        with self._lock:
            for (m, r, s), n in sorted(self.requests.items()):
                out.append(f"archiver_http_requests_total{_labels(method=m, route=r, status=s)} {n}")
            out += ["# HELP archiver_http_request_duration_seconds Time to answer a request.",
                    "# TYPE archiver_http_request_duration_seconds histogram"]
            for route in sorted(self.latency_count):
                for b in BUCKETS:
                    n = self.latency_buckets.get((route, b), 0)
                    out.append(f"archiver_http_request_duration_seconds_bucket{_labels(route=route, le=str(b))} {n}")
                out.append(f"archiver_http_request_duration_seconds_bucket{_labels(route=route, le='+Inf')} "
                           f"{self.latency_count[route]}")
                out.append(f"archiver_http_request_duration_seconds_sum{_labels(route=route)} "
                           f"{self.latency_sum[route]:.6f}")
                out.append(f"archiver_http_request_duration_seconds_count{_labels(route=route)} "
                           f"{self.latency_count[route]}")
            out += ["# HELP archiver_captures_total Captures run by the server, by result.",
                    "# TYPE archiver_captures_total counter"]
            for result in ("done", "failed"):
                out.append(f"archiver_captures_total{_labels(result=result)} {self.captures.get(result, 0)}")
            out += ["# HELP archiver_verifications_total Verifications run by the server, by result.",
                    "# TYPE archiver_verifications_total counter"]
            for result in ("pass", "fail"):
                out.append(f"archiver_verifications_total{_labels(result=result)} "
                           f"{self.verifications.get(result, 0)}")
        out += ["# HELP archiver_capture_jobs Capture jobs by status.", "# TYPE archiver_capture_jobs gauge"]
        for status in ("queued", "running", "done", "failed"):
            out.append(f"archiver_capture_jobs{_labels(status=status)} {queue_depth.get(status, 0)}")
        return "\n".join(out) + "\n"


__all__ = ["Metrics"]
