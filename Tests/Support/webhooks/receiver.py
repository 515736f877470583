#!/usr/bin/env python3
"""A webhook receiver for Conveyor's tests: verifies every delivery's signature with the
`standardwebhooks` package from PyPI (not with Conveyor's code), and answers as told.

    receiver.py --secret-file FILE [--fail-first N] [--port-file FILE]

Paths: POST /hook           verified; the first N attempts of each webhook-id get 503, then 204
       POST /slow           never answers (sleeps 3600 s)
       POST /redirect       302 to /hook on the same server
       POST /gone           410
       GET  /log            JSON: every attempt [{"id", "path", "verified", "status", "body"}]
Prints the port it listens on (and writes it to --port-file) once it is ready.
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

parser = argparse.ArgumentParser()
parser.add_argument("--secret-file", required=True)
parser.add_argument("--fail-first", type=int, default=0)
parser.add_argument("--port-file")
options = parser.parse_args()
secret = open(options.secret_file).read().strip()
verifier = Webhook(secret)
lock = threading.Lock()
log = []
attempts = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/log":
            with lock:
                body = json.dumps(log).encode()
            return self.answer(200, body, [("Content-Type", "application/json")])
        self.answer(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            verifier.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        webhook_id = headers.get("webhook-id", "")
        if self.path == "/slow":
            with lock:
                log.append({"id": webhook_id, "path": self.path, "verified": verified, "status": 0, "body": body.decode()})
            time.sleep(3600)
            return
        if not verified:
            status = 401
        elif self.path == "/hook":
            with lock:
                attempts[webhook_id] = attempts.get(webhook_id, 0) + 1
                status = 503 if attempts[webhook_id] <= options.fail_first else 204
        elif self.path == "/redirect":
            status = 302
        elif self.path == "/gone":
            status = 410
        else:
            status = 404
        with lock:
            log.append({"id": webhook_id, "path": self.path, "verified": verified, "status": status, "body": body.decode()})
        if status == 302:
            return self.answer(302, b"", [("Location", "/hook")])
        self.answer(status)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
port = server.server_address[1]
if options.port_file:
    with open(options.port_file + ".tmp", "w") as f:
        f.write(str(port))
    import os
    os.rename(options.port_file + ".tmp", options.port_file)
print(port, flush=True)
server.serve_forever()
