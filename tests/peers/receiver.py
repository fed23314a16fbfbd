#!/usr/bin/env python3
"""A webhook receiver for Grito's integration tests, on loopback.

It verifies every request with code that is not Grito's: the brief's plain
HMAC check (``hmac.compare_digest`` of ``sha256=<hex>``) and the Standard
Webhooks reference library from PyPI (``pip install standardwebhooks``).
Each request is appended to a JSONL log with the verification results, and
answered according to a mode:

- a status code such as ``200``, ``404``, ``500`` or ``503``;
- ``redirect``: 301 to another path (Grito must not follow it);
- ``retry-after``: 503 with ``Retry-After: 600`` (ten minutes);
- ``hang``: answer only after ``--hang-seconds`` (past Grito's timeout);
- ``reset``: close the connection with a TCP reset and no response.

The mode comes from the path (``/mode/<mode>/anything``) or, for any other
path, from the default mode, which ``POST /_control/mode`` (body: the mode)
changes. A request whose signatures fail is answered 401 whatever the mode.

Usage: receiver.py --secret SECRET --log FILE [--port 0] [--mode 200]
The first line on stdout is ``PORT <number>``.
"""

import argparse
import hashlib
import hmac
import io
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class State:
    def __init__(self, secret, log_path, mode, hang_seconds):
        self.secret = secret
        self.log_path = log_path
        self.mode = mode
        self.hang_seconds = hang_seconds
        self.lock = threading.Lock()

    def standard_webhook(self):
        # The library base64-decodes a str secret, so a plain secret is passed
        # as its UTF-8 bytes, as Grito documents.
        if self.secret.startswith("whsec_"):
            return Webhook(self.secret)
        return Webhook(self.secret.encode())

    def record(self, entry):
        with self.lock:
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")


def grito_signature_ok(secret, raw, header):
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header or "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set by main

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path == "/_control/mode":
            self.state.mode = raw.decode().strip()
            return self.answer(200, "mode " + self.state.mode)

        mode = self.state.mode
        if self.path.startswith("/mode/"):
            mode = self.path.split("/")[2]

        standard_ok, standard_error = True, None
        try:
            self.state.standard_webhook().verify(raw, dict(self.headers.items()))
        except WebhookVerificationError as error:
            standard_ok, standard_error = False, str(error)
        grito_ok = grito_signature_ok(self.state.secret, raw, self.headers.get("X-Grito-Signature"))

        self.state.record(
            {
                "path": self.path,
                "mode": mode,
                "received_at": time.time(),
                "webhook_id": self.headers.get("webhook-id"),
                "webhook_timestamp": self.headers.get("webhook-timestamp"),
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": raw.decode("utf-8", "replace"),
                "grito_signature_ok": grito_ok,
                "standard_signature_ok": standard_ok,
                "standard_error": standard_error,
            }
        )

        if not (grito_ok and standard_ok):
            return self.answer(401, "invalid signature")
        if mode == "redirect":
            return self.answer(301, "moved", {"Location": "/moved-here"})
        if mode == "retry-after":
            return self.answer(503, "busy", {"Retry-After": "600"})
        if mode == "hang":
            time.sleep(self.state.hang_seconds)
            return self.answer(200, "late")
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.wfile = io.BytesIO()
            self.close_connection = True
            return None
        status = int(mode)
        return self.answer(status, json.dumps({"received": status < 300, "mode": mode}))

    def answer(self, status, text, headers=None):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--secret", required=True, help="the subscription's signing secret")
    parser.add_argument("--log", required=True, help="JSONL file that receives one line per request")
    parser.add_argument("--mode", default="200", help="default answer mode (see the module documentation)")
    parser.add_argument("--hang-seconds", type=float, default=30.0, help="delay of the hang mode, in seconds")
    args = parser.parse_args()

    Handler.state = State(args.secret, args.log, args.mode, args.hang_seconds)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
