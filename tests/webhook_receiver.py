"""A webhook receiver on 127.0.0.1 for the tests: it keeps every request it gets (headers and
raw body), answers with the codes it is told to, one per request, and can redirect."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """The server, what it got, and what it answers next (the last code repeats)."""

    server: ThreadingHTTPServer
    codes: list[int] = field(default_factory=lambda: [200])
    location: str = ""  # sent with 3xx codes
    answer: bytes = b"ok"  # the body of every answer
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def start() -> Receiver:
    """A receiver listening on a free port of 127.0.0.1, served from a thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.received.append(Received(self.path, dict(self.headers.items()), body))
            code = receiver.codes.pop(0) if len(receiver.codes) > 1 else receiver.codes[0]
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", str(len(receiver.answer)))
            self.end_headers()
            self.wfile.write(receiver.answer)

        def log_message(self, *args) -> None:
            pass

    receiver = Receiver(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


def stop(receiver: Receiver) -> None:
    """Stop serving and close the socket."""
    receiver.server.shutdown()
    receiver.server.server_close()
