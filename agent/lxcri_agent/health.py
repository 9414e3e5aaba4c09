"""``/healthz`` and ``/readyz`` for the DaemonSet's probes, and ``/metrics`` when given one.

Live while the agent's loop runs; ready only when the runtime is installed, registered and
nothing is owed (a CRI runtime restart that could not be done keeps the pod unready, which
is what an admin looking at ``kubectl get pods`` needs to see).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Health:
    ready: bool = False
    detail: str = "starting"
    address: str = ""  # where the server listens, once it does (port 0 picks a free one)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, ready: bool, detail: str) -> None:
        with self.lock:
            self.ready, self.detail = ready, detail

    def get(self) -> tuple[bool, str]:
        with self.lock:
            return self.ready, self.detail


def serve(listen: str, health: Health, metrics: Callable[[], bytes] | None = None) -> ThreadingHTTPServer:
    """Start the server in a daemon thread; ``listen`` is HOST:PORT (port 0 picks a free one).
    ``metrics`` renders the Prometheus text for ``/metrics``."""
    host, _, port = listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics" and metrics is not None:
                from .metrics import CONTENT_TYPE

                try:
                    body, code, ctype = metrics(), 200, CONTENT_TYPE
                except Exception as err:  # a scrape must not take the probes down
                    body, code, ctype = f"metrics failed: {err!r}\n".encode(), 500, "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            ready, detail = health.get()
            if self.path == "/healthz":
                code = 200
            elif self.path == "/readyz":
                code = 200 if ready else 503
            else:
                code = 404
            body = json.dumps({"ready": ready, "detail": detail}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: not logged
            pass

    server = ThreadingHTTPServer((host.strip("[]") or "0.0.0.0", int(port)), Handler)
    bound = server.server_address
    name = bound[0].decode() if isinstance(bound[0], bytes) else str(bound[0])
    health.address = f"{name}:{bound[1]}"
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
