#!/usr/bin/env python3
"""Runs RabbitMQ as a durable peer on W1 of docs/BENCHMARKS.md (echo throughput), driven from Python with pika.

usage: run.py [W1] [--scale F] [--window N] [--w1-budget S] [--timeout S] [--threads N] [--prefetch N]
              [--reply-confirms]

It starts its own RabbitMQ node (Debian's rabbitmq-server, run as the current user from
/usr/lib/rabbitmq/bin, not through the wrapper that switches to the rabbitmq user), so that it
never touches a system instance: its own node name (bench<pid>@localhost), its own
RABBITMQ_MNESIA_BASE, RABBITMQ_LOG_BASE, configuration, enabled-plugins file (none), HOME (for the
Erlang cookie) and an epmd of its own, all in a scratch directory, the AMQP listener on 127.0.0.1
and a free port, the distribution port and epmd on other free ports, 127.0.0.1 only. It waits
until the node takes an AMQP connection, then runs W1:

  - a durable classic queue for the tasks and another for the replies (the default queue type of
    the Debian package's RabbitMQ);
  - a consumer process (like Conveyor's and Celery's W1: 1 process × --threads threads, default
    4), each thread with its own connection and channel, basic.qos --prefetch (default 100), that
    runs echo (bench/python-seed/tasks.py) on each task, publishes the reply to the reply queue
    as a persistent message (delivery_mode 2) and then acks the task (with --reply-confirms, its
    channel is in confirm mode and the ack waits for the reply's confirm);
  - this process as the producer, on one channel in confirm mode: it publishes 100,000 × scale
    echo tasks, {"id": i, "data": 64 characters}, persistent (delivery_mode 2), with at most
    --window (default 1,000) tasks in flight (published and not yet replied to) and at most
    --window unconfirmed, consumes the replies from the same connection (acking them, multiple,
    every 100), and checks every reply against its task (by correlation id) and every publish
    against its confirm (a nack or a missing confirm fails the run). 1,000 untimed warm-up tasks
    run first. tasks/s is from the first publish to the last reply.

RabbitMQ confirms a persistent message to a durable queue once it is written and fsynced (it
groups the fsyncs), so this is RabbitMQ with its durability on, as Conveyor's durable broker is.
Like Celery's W1, it stops submitting after --w1-budget seconds (default 150) and drains what is
in flight ("tasks" ran, "requestedTasks" were asked for, "capped" says whether the budget cut the
run short). It prints one JSON line with the field names of bench/celery/run.py's W1 line
("impl": "rabbitmq", "workload": "W1", "tasksPerSecond", "tasks", "latencyMicroseconds", ...).

The node and the consumer process are stopped in every case (finally, and on SIGTERM and SIGINT;
they also get SIGTERM if this process dies), and the whole run gives up after --timeout seconds
(default 800). Exit status: 0 when W1 ran and every reply and confirm was verified, 1 otherwise,
2 when pika or rabbitmq-server is missing (python3 -m pip install pika; apt-get install
rabbitmq-server).
"""
import argparse
import collections
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from peerproc import GaveUp, die_with_parent, free_port, stop, tail  # noqa: E402
PAYLOAD = "abcdefgh" * 8  # 64 ASCII characters, as Conveyor's W1, the Python seed's and Celery's
TASKS_QUEUE = "bench-tasks"
REPLIES_QUEUE = "bench-replies"
REPLY_ACK_EVERY = 100
SERVER_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server",  # Debian: as the current user
                     "/usr/lib/rabbitmq/sbin/rabbitmq-server")


def load_seed_tasks():
    """bench/python-seed/tasks.py, so that the echo task is the one every peer runs."""
    path = os.path.join(HERE, "..", "python-seed", "tasks.py")
    spec = importlib.util.spec_from_file_location("conveyor_python_seed_tasks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parameters(port, attempts=1):
    import pika

    return pika.ConnectionParameters(host="127.0.0.1", port=port, credentials=pika.PlainCredentials("guest", "guest"),
                                     connection_attempts=attempts, socket_timeout=5, blocked_connection_timeout=60,
                                     heartbeat=60)


def server_command():
    for path in SERVER_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("rabbitmq-server")
    if found and os.path.realpath(found).endswith("rabbitmq-script-wrapper"):
        return None  # Debian's wrapper runs the server as the rabbitmq user, with the system's directories
    return found


class RabbitServer:
    """A RabbitMQ node of its own: its node name, directories, ports and epmd, in a scratch directory."""

    def __init__(self, command, timeout=120.0):
        import pika

        self.child = None
        self.epmd = None
        self.base = tempfile.mkdtemp(prefix="rabbitmq-bench-")
        self.node = f"bench{os.getpid()}@localhost"
        self.log_base = os.path.join(self.base, "log")
        self.startup_log = os.path.join(self.log_base, "startup.log")
        for sub in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(self.base, sub))
        with open(os.path.join(self.base, "enabled_plugins"), "w", encoding="utf-8") as plugins:
            plugins.write("[].\n")
        open(os.path.join(self.base, "rabbitmq-env.conf"), "w").close()  # instead of /etc/rabbitmq's
        last_error = None
        for _ in range(3):  # another process may take a free port between probe and bind
            self.port, dist_port, epmd_port = free_port(), free_port(), free_port()
            if len({self.port, dist_port, epmd_port}) < 3:
                continue
            with open(os.path.join(self.base, "rabbitmq.conf"), "w", encoding="utf-8") as config:
                config.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
                             "log.console = false\n"
                             "log.file.level = warning\n")
            env = {key: value for key, value in os.environ.items() if not key.startswith("RABBITMQ_")}
            env.update({
                "HOME": os.path.join(self.base, "home"),  # the Erlang cookie goes there
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_USE_LONGNAME": "false",
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(dist_port),
                "RABBITMQ_MNESIA_BASE": os.path.join(self.base, "mnesia"),
                "RABBITMQ_LOG_BASE": self.log_base,
                "RABBITMQ_CONFIG_FILE": os.path.join(self.base, "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.base, "advanced.config"),
                "RABBITMQ_CONF_ENV_FILE": os.path.join(self.base, "rabbitmq-env.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.base, "enabled_plugins"),
                "RABBITMQ_PID_FILE": os.path.join(self.base, "rabbitmq.pid"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                "ERL_EPMD_PORT": str(epmd_port),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
            })
            # An epmd of its own, in the foreground, so that it can be stopped (the one the node
            # would start by itself daemonizes and outlives it).
            self.epmd = subprocess.Popen(["epmd", "-port", str(epmd_port), "-address", "127.0.0.1"],
                                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=die_with_parent)
            time.sleep(0.2)
            with open(self.startup_log, "ab") as log:
                self.child = subprocess.Popen([command], cwd=self.base, env=env, stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                              preexec_fn=die_with_parent)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.child.poll() is None:
                try:
                    connection = pika.BlockingConnection(parameters(self.port))
                except (pika.exceptions.AMQPError, OSError) as error:  # not listening yet
                    last_error = error
                else:
                    self.properties = dict(getattr(connection._impl, "server_properties", None) or {})
                    connection.close()
                    return
                time.sleep(0.25)
            last_error = last_error or f"exit status {self.child.returncode}"
            self.close(keep_directory=True)
            tail(self.startup_log, "rabbitmq-server's output")
            tail(os.path.join(self.log_base, f"{self.node}.log"), "the node's log")
        shutil.rmtree(self.base, ignore_errors=True)
        raise RuntimeError(f"rabbitmq-server did not start: {last_error!r}")

    def version(self):
        value = getattr(self, "properties", {}).get("version")
        return value.decode() if isinstance(value, bytes) else value

    def close(self, keep_directory=False):
        stop(self.child, "rabbitmq-server", grace=30.0)  # SIGTERM stops the node cleanly
        self.child = None
        stop(self.epmd, "epmd")
        self.epmd = None
        if not keep_directory:
            shutil.rmtree(self.base, ignore_errors=True)


# --- the consumer process ------------------------------------------------------------------------

def consume(port, threads, prefetch, reply_confirms):
    """The consumer process: `threads` threads, each with its own connection and channel, echo each
    task, publish its reply (persistent), ack the task. On SIGTERM it stops and prints one JSON line
    with the tasks each thread ran."""
    import pika

    seed = load_seed_tasks()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    counts = [0] * threads
    errors = []
    workers = []

    def serve(index, ready):
        try:
            connection = pika.BlockingConnection(parameters(port, attempts=3))
            channel = connection.channel()
            if reply_confirms:
                channel.confirm_delivery()
            channel.basic_qos(prefetch_count=prefetch)

            def on_task(ch, method, properties, body):
                try:
                    args = json.loads(body)
                    reply = json.dumps({"result": seed.echo(args)}, separators=(",", ":")).encode()
                    props = pika.BasicProperties(delivery_mode=2, correlation_id=properties.correlation_id,
                                                 content_type="application/json")
                    ch.basic_publish(exchange="", routing_key=REPLIES_QUEUE, body=reply, properties=props)
                    ch.basic_ack(delivery_tag=method.delivery_tag)
                    counts[index] += 1
                except Exception as error:  # the producer sees the missing reply and fails the run
                    errors.append(f"{type(error).__name__}: {error}")
                    ch.basic_reject(delivery_tag=method.delivery_tag, requeue=False)

            channel.basic_consume(queue=TASKS_QUEUE, on_message_callback=on_task, auto_ack=False)
            workers[index] = (connection, channel)
            ready.set()
            channel.start_consuming()
            connection.close()
        except Exception as error:
            if not stopping.is_set():
                errors.append(f"thread {index}: {type(error).__name__}: {error}")
                print(f"run.py consumer: thread {index}: {type(error).__name__}: {error}", file=sys.stderr)
            ready.set()

    threads_started = []
    for index in range(threads):
        workers.append(None)
        ready = threading.Event()
        thread = threading.Thread(target=serve, args=(index, ready), daemon=True)
        thread.start()
        ready.wait(60)
        threads_started.append(thread)
    while not stopping.wait(0.5):
        pass
    for worker in workers:
        if worker is not None:
            connection, channel = worker
            try:
                connection.add_callback_threadsafe(channel.stop_consuming)
            except Exception:
                pass
    for thread in threads_started:
        thread.join(5)
    print(json.dumps({"tasksPerThread": counts, "errors": errors[:5]}), flush=True)
    os._exit(0)


# --- the producer ----------------------------------------------------------------------------------

class Phase:
    """One pass of tasks through the queue: the warm-ups, then the timed run."""

    def __init__(self, name, tasks, window, budget=None):
        self.name = name
        self.tasks = tasks  # (correlation id, body, expected result)
        self.window = window
        self.budget = budget
        self.sent = 0
        self.replies = 0
        self.confirmed = 0
        self.nacked = 0
        self.duplicates = 0
        self.wrong = 0
        self.capped = False
        self.latencies = []
        self.first_error = None
        self.started = None
        self.last_reply = None
        self.index_of = {cid: i for i, (cid, _, _) in enumerate(tasks)}
        self.sent_at = [None] * len(tasks)
        self.replied = bytearray(len(tasks))

    def fail(self, message):
        if self.first_error is None:
            self.first_error = message

    @property
    def done(self):
        return self.replies + self.wrong >= self.sent and self.confirmed + self.nacked >= self.sent and (
            self.sent == len(self.tasks) or self.capped)

    @property
    def verified(self):
        return (self.sent > 0 and self.replies == self.sent and self.confirmed == self.sent and not self.nacked
                and not self.wrong and not self.duplicates and self.first_error is None)

    def percentiles(self):  # nearest rank, as bench/celery/run.py
        values = sorted(self.latencies)
        if not values:
            return {}

        def rank(p):
            index = max(1, min(len(values), -(-len(values) * p // 100)))
            return int(round(values[index - 1]))

        return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": int(round(values[-1]))}


class Producer:
    """One SelectConnection, one channel in confirm mode: publishes each phase's tasks within its
    window, consumes the replies, and checks replies and confirms."""

    def __init__(self, port, phases, stall_timeout=60.0):
        import pika

        self.pika = pika
        self.port = port
        self.phases = collections.deque(phases)
        self.phase = None
        self.stall_timeout = stall_timeout
        self.channel = None
        self.connection = None
        self.next_tag = 1
        self.tag_owner = {}  # delivery tag -> (phase, task index), until confirmed
        self.unacked_replies = 0
        self.last_progress = time.monotonic()
        self.error = None

    def run(self):
        pika = self.pika
        self.connection = pika.SelectConnection(
            parameters(self.port, attempts=3), on_open_callback=self.on_open,
            on_open_error_callback=lambda _, error: self.abort(f"connection failed: {error!r}"),
            on_close_callback=self.on_closed)
        try:
            self.connection.ioloop.start()
        finally:
            if self.connection.is_open:
                try:
                    self.connection.close()
                except Exception:
                    pass

    def abort(self, message):
        if self.error is None:
            self.error = message
        if self.phase is not None:
            self.phase.fail(message)
        if self.connection.is_open:
            self.connection.close()
        else:
            self.connection.ioloop.stop()

    def on_closed(self, _connection, reason):
        if self.phase is not None and not self.phase.done:
            self.phase.fail(f"connection closed: {reason!r}")
        self.connection.ioloop.stop()

    def on_open(self, connection):
        connection.channel(on_open_callback=self.on_channel)

    def on_channel(self, channel):
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.confirm_delivery(ack_nack_callback=self.on_confirm, callback=lambda _: self.on_confirm_mode())

    def on_channel_closed(self, _channel, reason):
        if self.phase is not None:  # not the close at the end
            self.abort(f"channel closed: {reason!r}")

    def on_confirm_mode(self):
        self.channel.basic_consume(queue=REPLIES_QUEUE, on_message_callback=self.on_reply, auto_ack=False,
                                   callback=lambda _: self.next_phase())
        self.connection.ioloop.call_later(1.0, self.watch)

    def next_phase(self):
        if not self.phases:
            self.phase = None
            self.connection.close()
            return
        self.phase = self.phases.popleft()
        self.phase.started = time.perf_counter()
        self.fill()

    def watch(self):
        if self.phase is None:
            return
        if time.monotonic() - self.last_progress > self.stall_timeout:
            phase = self.phase
            self.abort(f"no reply or confirm for {self.stall_timeout:g} s ({phase.name}: {phase.sent} sent, "
                       f"{phase.replies} replies, {phase.confirmed} confirms)")
            return
        self.fill()  # the budget may have run out with nothing else happening
        self.connection.ioloop.call_later(1.0, self.watch)

    def fill(self):
        phase = self.phase
        if phase is None:
            return
        clock = time.perf_counter
        deadline = phase.started + phase.budget if phase.budget else None
        while (phase.sent < len(phase.tasks) and not phase.capped
               and phase.sent - phase.replies < phase.window and phase.sent - phase.confirmed < phase.window):
            if deadline is not None and clock() >= deadline:
                phase.capped = True
                break
            index = phase.sent
            cid, body, _ = phase.tasks[index]
            props = self.pika.BasicProperties(delivery_mode=2, correlation_id=cid, content_type="application/json")
            phase.sent_at[index] = clock()
            self.channel.basic_publish(exchange="", routing_key=TASKS_QUEUE, body=body, properties=props)
            self.tag_owner[self.next_tag] = (phase, index)
            self.next_tag += 1
            phase.sent += 1
        self.check_done()

    def on_confirm(self, frame):
        method = frame.method
        positive = isinstance(method, self.pika.spec.Basic.Ack)
        tag = method.delivery_tag
        if method.multiple:  # every tag up to this one (the dict is in publishing order)
            tags = []
            for t in self.tag_owner:
                if t > tag:
                    break
                tags.append(t)
        else:
            tags = [tag]
        for t in tags:
            owner = self.tag_owner.pop(t, None)
            if owner is None:
                continue
            phase, index = owner
            if positive:
                phase.confirmed += 1
            else:
                phase.nacked += 1
                phase.fail(f"task {index} was nacked by the broker")
        self.last_progress = time.monotonic()
        self.fill()

    def on_reply(self, channel, method, properties, body):
        now = time.perf_counter()
        self.last_progress = time.monotonic()
        phase = self.phase
        index = phase.index_of.get(properties.correlation_id) if phase is not None else None
        if index is None:
            if phase is not None:
                phase.fail(f"a reply with an unknown correlation id {properties.correlation_id!r}")
                phase.wrong += 1
        elif phase.replied[index]:
            phase.duplicates += 1
            phase.fail(f"a second reply for task {index}")
        else:
            phase.replied[index] = 1
            expected = phase.tasks[index][2]
            try:
                result = json.loads(body).get("result")
            except ValueError:
                result = None
            if result == expected:
                phase.replies += 1
                phase.latencies.append((now - phase.sent_at[index]) * 1e6)
                phase.last_reply = now
            else:
                phase.wrong += 1
                phase.fail(f"wrong reply for task {index}: {body[:200]!r}")
        self.unacked_replies += 1
        if self.unacked_replies >= REPLY_ACK_EVERY or (phase is not None and phase.replies + phase.wrong >= phase.sent):
            channel.basic_ack(delivery_tag=method.delivery_tag, multiple=True)
            self.unacked_replies = 0
        self.fill()

    def check_done(self):
        phase = self.phase
        if phase is not None and phase.done:
            self.next_phase()


def echo_tasks(prefix, count):
    """(correlation id, JSON body, expected result) for `count` echo tasks."""
    tasks = []
    for i in range(count):
        args = {"id": i, "data": PAYLOAD}
        tasks.append((f"{prefix}{i}", json.dumps(args, separators=(",", ":")).encode(), args))
    return tasks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", type=str.upper, metavar="W1", help="W1 (the only one; the default)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the task count (100,000) by this")
    parser.add_argument("--window", type=int, default=1000,
                        help="tasks in flight, and unconfirmed publishes, at most (default 1000)")
    parser.add_argument("--w1-budget", type=float, default=150.0,
                        help="seconds after which W1 stops submitting (default 150)")
    parser.add_argument("--timeout", type=float, default=800, help="give up after this many seconds in all")
    parser.add_argument("--threads", type=int, default=4, help="consumer threads (default 4)")
    parser.add_argument("--prefetch", type=int, default=100, help="basic.qos prefetch per consumer thread (default 100)")
    parser.add_argument("--reply-confirms", action="store_true",
                        help="consumers publish replies in confirm mode and ack a task after its reply is confirmed")
    parser.add_argument("--consume", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the consumer process
    options = parser.parse_args()
    if any(workload != "W1" for workload in options.workloads):
        parser.error("W1 is the only workload")
    if options.scale <= 0:
        parser.error("--scale must be positive")
    if options.window < 1 or options.threads < 1 or options.prefetch < 0:
        parser.error("--window and --threads must be positive, --prefetch not negative")

    if options.consume is not None:
        consume(options.consume, options.threads, options.prefetch, options.reply_confirms)
        return 0

    command = server_command()
    missing = [] if importlib.util.find_spec("pika") is not None else ["pika"]
    if command is None:
        missing.append("rabbitmq-server")
    if shutil.which("epmd") is None:
        missing.append("epmd (erlang-base)")
    if missing:
        print(f"run.py: missing {', '.join(missing)} (python3 -m pip install pika; apt-get install rabbitmq-server)",
              file=sys.stderr)
        return 2
    import pika

    def on_alarm(*_):
        raise GaveUp(f"gave up after {options.timeout:g} s (--timeout)")

    def on_signal(signum, _):
        raise GaveUp(f"stopped by signal {signum}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.alarm(max(1, int(options.timeout)))

    requested = max(1, int(100_000 * options.scale))
    line = {"impl": "rabbitmq", "workload": "W1",
            "shape": f"1×{options.threads} threads, window {options.window}, durable queue, persistent, confirms",
            "processes": 1, "threads": options.threads, "prefetch": options.prefetch, "requestedTasks": requested,
            "durable": True, "publisherConfirms": True, "replyConfirms": options.reply_confirms,
            "queueType": "classic", "pikaVersion": getattr(pika, "__version__", None)}
    server = consumer = None
    verified = False
    try:
        try:
            server = RabbitServer(command)
            line["rabbitmqVersion"] = server.version()
            setup = pika.BlockingConnection(parameters(server.port))
            channel = setup.channel()
            for queue in (TASKS_QUEUE, REPLIES_QUEUE):
                channel.queue_declare(queue=queue, durable=True)
            consumer = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--consume", str(server.port), "--threads",
                 str(options.threads), "--prefetch", str(options.prefetch)]
                + (["--reply-confirms"] if options.reply_confirms else []),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sys.stderr, start_new_session=True,
                preexec_fn=die_with_parent)
            deadline = time.monotonic() + 60
            while channel.queue_declare(queue=TASKS_QUEUE, passive=True).method.consumer_count < options.threads:
                if consumer.poll() is not None:
                    raise RuntimeError(f"the consumer process exited ({consumer.returncode}) before it was ready")
                if time.monotonic() >= deadline:
                    raise RuntimeError("the consumer threads did not all subscribe within 60 s")
                time.sleep(0.1)
            setup.close()

            warmup = Phase("warm-up", echo_tasks("w", 1000), options.window)
            work = Phase("W1", echo_tasks("t", requested), options.window, options.w1_budget)
            producer = Producer(server.port, [warmup, work])
            producer.run()
            for phase in (warmup, work):
                if not phase.verified and phase.first_error is None:
                    phase.fail(producer.error or f"{phase.name} did not finish ({phase.sent} sent, {phase.replies} "
                                                 f"replies, {phase.confirmed} confirms)")
            wall = (work.last_reply - work.started) if work.last_reply is not None else 0.0
            verified = warmup.verified and work.verified
            line.update({
                "tasks": work.sent, "capped": work.capped, "verified": verified, "wallSeconds": round(wall, 6),
                "tasksPerSecond": round(work.replies / wall, 1) if wall > 0 else 0,
                "latencyMicroseconds": work.percentiles(), "replies": work.replies, "confirmed": work.confirmed,
                "nacked": work.nacked,
            })
            problem = work.first_error or warmup.first_error
            if problem:
                line["firstError"] = problem
        except GaveUp:
            raise
        except Exception as error:
            line.update({"verified": False, "firstError": f"{type(error).__name__}: {error}"})
        finally:
            if consumer is not None:
                stop(consumer, "the consumer process")
                try:
                    report = json.loads(consumer.stdout.read().decode().strip().splitlines()[-1])
                    line["tasksPerThread"] = report.get("tasksPerThread")
                    if report.get("errors") and "firstError" not in line:
                        line["firstError"] = "consumer: " + report["errors"][0]
                        line["verified"] = verified = False
                except (ValueError, IndexError, OSError):
                    pass
                consumer = None
    except GaveUp as error:
        print(f"run.py: {error}", file=sys.stderr)
        line.update({"verified": False, "firstError": str(error)})
        verified = False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if consumer is not None:
            stop(consumer, "the consumer process")
        if server is not None:
            server.close()
    print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
