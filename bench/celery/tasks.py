"""The tasks of the workloads (docs/BENCHMARKS.md) as a Celery 5 app, for the Celery + Redis peer (bench/celery/run.py).

Broker and result backend are both redis://127.0.0.1:$CELERY_BENCH_REDIS_PORT/0 (default port
6379); the whole of the URL can be given instead as $CELERY_BENCH_REDIS_URL. Tasks and results
travel as JSON. The three tasks are registered under the plain names "echo", "sleep" and "sha256"
and run exactly the definitions of bench/python-seed/tasks.py (loaded from that file, so there is
one copy of them): each takes one argument, the task's args object, and returns the result object.

Worker: cd bench/celery && celery -A tasks worker --pool threads --concurrency 4
"""
import importlib.util
import os

from celery import Celery

_SEED_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python-seed", "tasks.py")
_spec = importlib.util.spec_from_file_location("conveyor_python_seed_tasks", _SEED_PATH)
seed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed)

REDIS_URL = os.environ.get("CELERY_BENCH_REDIS_URL") or \
    f"redis://127.0.0.1:{int(os.environ.get('CELERY_BENCH_REDIS_PORT', '6379'))}/0"

app = Celery("conveyor_bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    # Everything else stays at Celery's defaults (prefetch multiplier 4, acks on receipt, results
    # kept in Redis for a day): the peer is Celery as people run it.
)


@app.task(name="echo")
def echo(args):
    return seed.echo(args)


@app.task(name="sleep")
def sleep(args):
    return seed.sleep(args)


@app.task(name="sha256")
def sha256(args):
    return seed.sha256(args)


sha256_digest = seed.sha256_digest
