#!/usr/bin/env python3
"""A webhook receiver for bench/gateway/deliveries.sh: answers 204 to every POST (HTTP/1.1,
keep-alive), checks each signature with the `standardwebhooks` package when --secret-file is
given, and prints the count and the time from the first to the last delivery once --expect
deliveries have come.

    receiver.py --expect N [--secret-file FILE]
Prints its port first.
"""
import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--expect", type=int, required=True)
parser.add_argument("--secret-file")
options = parser.parse_args()
verifier = None
if options.secret_file:
    from standardwebhooks.webhooks import Webhook
    verifier = Webhook(open(options.secret_file).read().strip())
lock = threading.Lock()
seen = set()
bad = 0
first = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        global first, bad
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = True
        if verifier:
            try:
                verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
            except Exception:
                ok = False
        self.send_response(204 if ok else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with lock:
            now = time.monotonic()
            first = first or now
            if not ok:
                bad += 1
            seen.add(self.headers.get("webhook-id"))
            if len(seen) == options.expect:
                print("deliveries %d in %.3f s: %.0f/s (bad signatures: %d)" % (len(seen), now - first, len(seen) / max(now - first, 1e-9), bad), flush=True)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
