"""The Flask + Celery peer of bench/gateway/run.sh (bench/gateway/flask-celery.sh runs it under gunicorn).

POST /v1/tasks does what a Flask view that hands work to Celery does, and what the gateway does for
the same request: checks the bearer token ($TOKEN, compared in constant time), parses the JSON body
(the one bench/gateway/submit.lua sends), refuses a name it has no task for, calls the task's
`delay(args)` (Celery's producer: one message on the Redis list of the queue, answered by Redis
before delay() returns) and answers 202 {"id", "status": "accepted"}. The task is bench/celery/tasks.py's
`echo` (broker and result backend redis://127.0.0.1:$CELERY_BENCH_REDIS_PORT/0, JSON), the app the
Celery peer of bench/compare.sh runs. With a result backend, Celery's delay() also subscribes to
the task's result channel in Redis (and unsubscribes when the AsyncResult goes); with
$CELERY_BENCH_IGNORE_RESULT=1 the view calls apply_async(ignore_result=True) instead, which does not:
fire and forget, no result kept. GET /healthz answers without Celery (the floor).
"""
import hmac
import os
import sys

from flask import Flask, jsonify, request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "celery"))
import tasks  # noqa: E402  (bench/celery/tasks.py)

TOKEN = f"Bearer {os.environ['TOKEN']}".encode()
TASKS = {"echo": tasks.echo}
IGNORE_RESULT = os.environ.get("CELERY_BENCH_IGNORE_RESULT") == "1"
app = Flask(__name__)


@app.post("/v1/tasks")
def submit():
    if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), TOKEN):
        return jsonify(error={"code": "unauthorized", "message": "Authorization: a bearer token of the file"}), 401
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return jsonify(error={"code": "bad_json", "message": "send {\"name\", \"args\"?, \"options\"?}"}), 400
    task = TASKS.get(body["name"])
    if task is None:
        return jsonify(error={"code": "unknown_task", "message": f"name: no task {body['name']!r}"}), 422
    args = body.get("args", {})
    result = task.apply_async((args,), ignore_result=True) if IGNORE_RESULT else task.delay(args)
    return jsonify(id=result.id, status="accepted"), 202


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
