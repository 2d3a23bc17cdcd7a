"""A hostile "supervisord": answers every XML-RPC POST with a huge, well-formed answer.

`python -m tests.exporter._hostile_server <port> <MiB>` serves on 127.0.0.1:<port>:
POST /RPC2 streams a valid XML-RPC answer holding one string of <MiB> MiB (chunked, no
Content-Length, so the size is only known by reading); GET /health answers 200 `ok`, the
healthy neighbour another collector probes meanwhile.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEAD = b"<?xml version='1.0'?><methodResponse><params><param><value><string>"
TAIL = b"</string></value></param></params></methodResponse>"
CHUNK = b"A" * (1 << 20)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mebibytes = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for part in [HEAD, *([CHUNK] * self.mebibytes), TAIL]:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what a capped reader does

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


if __name__ == "__main__":
    Handler.mebibytes = int(sys.argv[2])
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
