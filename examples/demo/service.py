"""A small HTTP service to break on purpose (standard library only).

GET /health  200 "ok" (slow while /slow is on)
GET /crash   exits at once with code 1
GET /hang    stops itself with SIGSTOP (a hang: the port still accepts connections)
GET /leak    keeps 50 MB more memory on every call
GET /slow    makes /health take 5 s from now on
"""

from __future__ import annotations

import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("DEMO_PORT", "8765"))
LEAK: list[bytearray] = []
SLOW = {"on": False}


class Handler(BaseHTTPRequestHandler):
    def _reply(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            if SLOW["on"]:
                time.sleep(5)
            self._reply(200, "ok\n")
        elif self.path == "/crash":
            self._reply(200, "crashing\n")
            self.wfile.flush()
            os._exit(1)
        elif self.path == "/hang":
            self._reply(200, "hanging\n")
            self.wfile.flush()
            os.kill(os.getpid(), signal.SIGSTOP)
        elif self.path == "/leak":
            LEAK.append(bytearray(50 * 1024 * 1024))
            self._reply(200, f"holding {len(LEAK) * 50} MB\n")
        elif self.path == "/slow":
            SLOW["on"] = True
            self._reply(200, "health is slow now\n")
        else:
            self._reply(404, "try /health /crash /hang /leak /slow\n")

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"demo service on http://127.0.0.1:{PORT}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
