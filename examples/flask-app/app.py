"""A Flask service that hands its slow work to Conveyor and answers at once.

POST /digests {"seed": "...", "iterations": N}  posts the built-in `sha256` task to the gateway, with
                                                 a callback URL, and answers 202 with the task's id
POST /callbacks/conveyor                         the gateway's callback: signature checked with the
                                                 `standardwebhooks` package, the result kept
GET  /jobs/<id>                                  "pending" until the callback came, then its result

Configuration (environment): CONVEYOR_GATEWAY (default http://127.0.0.1:8080), CONVEYOR_TOKEN (a
token with the submit scope), WEBHOOK_SECRET (the whsec_... secret of the gateway's
--webhook-secret-file) and PUBLIC_URL (how the gateway reaches this app, default http://127.0.0.1:5000).
Run with `flask --app app run` (see README.md).
"""
import json
import os
import threading
import urllib.error
import urllib.request
import uuid

from flask import Flask, jsonify, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

GATEWAY = os.environ.get("CONVEYOR_GATEWAY", "http://127.0.0.1:8080").rstrip("/")
TOKEN = os.environ["CONVEYOR_TOKEN"]
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
webhook = Webhook(os.environ["WEBHOOK_SECRET"])

app = Flask(__name__)
jobs = {}  # task id -> None while pending, then the callback's event
jobs_lock = threading.Lock()


def submit(task, key):
    """POSTs `task` to the gateway; returns (HTTP status, its JSON answer)."""
    post = urllib.request.Request(
        f"{GATEWAY}/v1/tasks", data=json.dumps(task).encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                 "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(post, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:  # the gateway's refusal: {"error": {"code", "message"}}
        return error.code, json.load(error)
    except urllib.error.URLError as error:
        return 503, {"error": {"code": "gateway_unreachable", "message": str(error.reason)}}


@app.post("/digests")
def create_digest():
    body = request.get_json(force=True, silent=True)
    body = body if isinstance(body, dict) else {}
    seed, iterations = body.get("seed"), body.get("iterations", 1_000_000)
    if not isinstance(seed, str) or type(iterations) is not int or not 0 <= iterations <= 100_000_000:
        return jsonify(error='send {"seed": a string, "iterations": 0 to 100000000}'), 400
    # The client's key, or a new one: a retried POST with the same key is the same task.
    key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    status, answer = submit({"name": "sha256", "args": {"seed": seed, "iterations": iterations},
                             "callback_url": f"{PUBLIC_URL}/callbacks/conveyor"}, key)
    if status != 202:  # the gateway refused it, or cannot be reached
        return jsonify(error=answer.get("error")), 502
    task_id = answer["id"]
    with jobs_lock:
        jobs.setdefault(task_id, None)  # the callback may already have come
    return jsonify(id=task_id, status="pending"), 202, {"Location": f"/jobs/{task_id}"}


@app.post("/callbacks/conveyor")
def conveyor_callback():
    try:
        event = webhook.verify(request.get_data(), dict(request.headers))
    except (WebhookVerificationError, ValueError):  # ValueError: a malformed signature header
        return jsonify(error="bad signature"), 401
    with jobs_lock:
        jobs[event["id"]] = event  # deliveries are at least once: a repeat writes the same event
    return "", 204


@app.get("/jobs/<task_id>")
def show_job(task_id):
    with jobs_lock:
        if task_id not in jobs:
            return jsonify(error="no such job"), 404
        event = jobs[task_id]
    if event is None:
        return jsonify(id=task_id, status="pending")
    # status: succeeded (with result), failed, timed_out or cancelled (with error)
    return jsonify({key: event[key] for key in ("id", "status", "result", "error", "finished_at") if key in event})
