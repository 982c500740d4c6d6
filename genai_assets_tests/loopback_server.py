"""A tiny threaded HTTP server on 127.0.0.1 for scraping tests: routes → canned responses.

Usage::

    with LoopbackServer() as server:
        server.route("/author", Reply.json({"authors": ["Emily Dickinson"]}))
        server.route("/flaky", Reply(status=500), Reply.text("ok"))  # 500 first, then "ok" forever
        client = PoliteClient(server.url, ...)

A route is a sequence of replies served in order (the last one repeats) or a callable
``handler(request) -> Reply``. Every request is logged in ``server.requests``. The server only
ever binds the loopback interface, on a free port chosen by the OS (port 0).

The ``loopback_server`` pytest fixture starts one per test and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

LOOPBACK_HOST = "127.0.0.1"


@dataclass
class Reply:
    """One canned HTTP response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (to provoke client timeouts)
    send_length: bool = True  # False: no Content-Length, body delimited by closing the connection
    drip_s: float = 0.0  # > 0: send the body one byte at a time, this long apart (slow-drip server)

    @classmethod
    def text(cls, text: str, content_type: str = "text/plain; charset=utf-8", **kwargs: Any) -> Reply:
        charset = content_type.split("charset=")[-1] if "charset=" in content_type else "utf-8"
        headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
        return cls(body=text.encode(charset), headers=headers, **kwargs)

    @classmethod
    def html(cls, html: str, charset: str = "utf-8", **kwargs: Any) -> Reply:
        return cls.text(html, content_type=f"text/html; charset={charset}", **kwargs)

    @classmethod
    def json(cls, payload: Any, **kwargs: Any) -> Reply:
        return cls.text(json.dumps(payload), content_type="application/json", **kwargs)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status=status, headers={"Location": location})


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived


Handler = Callable[[LoggedRequest], Reply]


class LoopbackServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1:<free port> serving registered routes from a thread."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Reply] | Handler] = {}
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self.requests: list[LoggedRequest] = []
        self._server = ThreadingHTTPServer((LOOPBACK_HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        assert host == LOOPBACK_HOST, f"loopback server bound {host}, not {LOOPBACK_HOST}"
        self.url = f"http://{LOOPBACK_HOST}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="loopback-http",
            daemon=True,
        )

    def route(self, path: str, *replies: Reply | Handler) -> None:
        """Serve ``replies`` in order at ``path`` (exact path incl. query; the last repeats), or a handler."""
        if len(replies) == 1 and callable(replies[0]) and not isinstance(replies[0], Reply):
            self._routes[path] = replies[0]
        else:
            if not replies or not all(isinstance(reply, Reply) for reply in replies):
                raise ValueError("route() takes one handler or one or more Reply objects")
            self._routes[path] = list(replies)  # type: ignore[arg-type]
        self._served[path] = 0

    def hits(self, path: str) -> int:
        """How many requests arrived for ``path``."""
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (also fine on a server that was never started)."""
        if self._thread.is_alive():
            self._server.shutdown()  # blocks until serve_forever returns: only if it runs
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _reply_for(self, request: LoggedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            route = self._routes.get(request.path)
            if route is None:
                return Reply.text("not found", status=404)
            if callable(route):
                handler = route
            else:
                index = min(self._served[request.path], len(route) - 1)
                self._served[request.path] += 1
                return route[index]
        return handler(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class RouteHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so the client's connection pool is exercised

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                request = LoggedRequest("GET", self.path, dict(self.headers.items()), time.monotonic())
                reply = server._reply_for(request)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.send_length:
                        self.send_header("Content-Length", str(len(reply.body)))
                    else:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    if reply.drip_s:
                        for index in range(len(reply.body)):
                            self.wfile.write(reply.body[index : index + 1])
                            self.wfile.flush()
                            time.sleep(reply.drip_s)
                    else:
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout or size cap): expected in fault tests

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean; requests are in server.requests

        return RouteHandler


@pytest.fixture
def loopback_server():
    """A started :class:`LoopbackServer`, stopped after the test."""
    with LoopbackServer() as server:
        yield server


def main() -> None:
    """Serve the fixture sites by hand: ``python -m genai_assets_tests.loopback_server poetrydb``."""
    import sys

    # Import by package name: run as __main__, this module's own classes are distinct objects.
    from genai_assets_tests.fixtures import serve_poetrydb, serve_poets_org
    from genai_assets_tests.loopback_server import LoopbackServer as PackageLoopbackServer

    sites = sys.argv[1:] or ["poetrydb"]
    with PackageLoopbackServer() as server:
        for site in sites:
            {"poetrydb": serve_poetrydb, "poets_org": serve_poets_org}[site](server)
        print(f"Serving fixture site(s) {', '.join(sites)} at {server.url} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
