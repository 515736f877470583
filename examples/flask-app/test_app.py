"""The Flask example end to end, over real HTTP: a broker (``conveyor broker --in-memory`` on ports
it picks), a consumer, the gateway (a token file, a webhook secret file, ``--callback-allow
127.0.0.1``) and app.py under ``flask run``, each a child process of this test, started once for
the class and stopped at its end (and, through PR_SET_PDEATHSIG, if the test itself dies).

    CONVEYOR_BIN=.build/debug/conveyor python3 -m unittest discover -s examples/flask-app -v

Skipped without CONVEYOR_BIN, or without flask or standardwebhooks (pip install flask standardwebhooks).
"""
import base64
import ctypes
import hashlib
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid

CONVEYOR_BIN = os.environ.get("CONVEYOR_BIN")
APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.py")
MISSING = [name for name in ("flask", "standardwebhooks") if importlib.util.find_spec(name) is None]
TOKEN = "flask-example-" + uuid.uuid4().hex
# Requests to 127.0.0.1 only, never through a proxy named in the environment.
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def iterated_sha256(seed, iterations):
    """What the built-in sha256 task computes: SHA-256 of the seed, then of the digest `iterations` times."""
    digest = hashlib.sha256(seed.encode()).digest()
    for _ in range(iterations):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies, however it dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(method, url, body=None, headers=None):
    """(status, headers, parsed JSON body or None) of one HTTP request."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    call = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None and "Content-Type" not in call.headers:
        call.add_header("Content-Type", "application/json")
    try:
        with http.open(call, timeout=30) as answer:
            status, answer_headers, text = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, text = error.code, error.headers, error.read()
    return status, answer_headers, (json.loads(text) if text.strip() else None)


class Peer:
    """A child process whose output (standard output and error together) is read by a thread."""

    def __init__(self, name, arguments, environment=None):
        self.name = name
        self.lines = queue.Queue()
        self.transcript = []
        self.process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, universal_newlines=True, env=environment,
                                        preexec_fn=die_with_parent)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            self.transcript.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix, timeout):
        """The rest of the first line that starts with `prefix`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        raise AssertionError(f"{self.name} did not print '{prefix}…' within {timeout} s "
                             f"(exit status {self.process.poll()}); output:\n" + "\n".join(self.transcript))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process.stdout.close()


@unittest.skipUnless(CONVEYOR_BIN, "set CONVEYOR_BIN to a conveyor executable (e.g. .build/debug/conveyor)")
@unittest.skipIf(MISSING, f"{' and '.join(MISSING)} not installed (pip install flask standardwebhooks)")
class FlaskAppTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peers = []
        cls.directory = tempfile.mkdtemp(prefix="conveyor-flask-")
        try:
            cls.start_all()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_all(cls):
        if not (os.path.isfile(CONVEYOR_BIN) and os.access(CONVEYOR_BIN, os.X_OK)):
            raise AssertionError(f"CONVEYOR_BIN={CONVEYOR_BIN!r} is not an executable file")
        cls.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        secret_file = os.path.join(cls.directory, "webhook-secret")
        token_file = os.path.join(cls.directory, "tokens")
        with open(secret_file, "w") as f:
            f.write(cls.secret + "\n")
        with open(token_file, "w") as f:
            f.write(f"{TOKEN} scopes=submit,read rate=1000 name=flask-example\n")

        broker = cls.start("broker", [CONVEYOR_BIN, "broker", "--in-memory",
                                      "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"])
        frontend = broker.wait_for("frontend ", 30)
        backend = broker.wait_for("backend ", 5)
        cls.start("consumer", [CONVEYOR_BIN, "consumer", "--backend", backend, "--threads", "2"])
        gateway = cls.start("gateway", [CONVEYOR_BIN, "gateway", "--broker", frontend, "--backend", backend,
                                        "--listen", "127.0.0.1:0", "--token-file", token_file,
                                        "--webhook-secret-file", secret_file, "--callback-allow", "127.0.0.1"])
        cls.gateway = gateway.wait_for("listening ", 30)
        # The gateway refuses a task no connected consumer serves: wait for the consumer.
        deadline = time.monotonic() + 30
        while True:
            status, _, stats = request("GET", cls.gateway + "/v1/stats", headers={"Authorization": f"Bearer {TOKEN}"})
            if status == 200 and stats["broker"].get("consumers"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the broker saw no consumer within 30 s: {status} {stats}; consumer output:\n"
                                     + "\n".join(cls.peers[1].transcript))
            time.sleep(0.1)

        port = free_port()
        cls.app = f"http://127.0.0.1:{port}"
        environment = dict(os.environ, CONVEYOR_GATEWAY=cls.gateway, CONVEYOR_TOKEN=TOKEN,
                           WEBHOOK_SECRET=cls.secret, PUBLIC_URL=cls.app, PYTHONUNBUFFERED="1")
        flask = cls.start("flask", [sys.executable, "-m", "flask", "--app", APP, "run",
                                    "--host", "127.0.0.1", "--port", str(port)], environment)
        deadline = time.monotonic() + 30
        while True:
            try:
                if request("GET", cls.app + "/jobs/none")[0] == 404:
                    break
            except OSError:
                pass
            if flask.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the Flask app did not answer within 30 s; output:\n" + "\n".join(flask.transcript))
            time.sleep(0.1)

    @classmethod
    def start(cls, name, arguments, environment=None):
        peer = Peer(name, arguments, environment)
        cls.peers.append(peer)
        return peer

    @classmethod
    def tearDownClass(cls):
        for peer in reversed(cls.peers):
            peer.stop()
        shutil.rmtree(cls.directory, ignore_errors=True)

    def transcripts(self):
        return "\n".join(f"--- {peer.name}:\n" + "\n".join(peer.transcript[-30:]) for peer in self.peers)

    def post_digest(self, seed, iterations, key=None):
        headers = {"Idempotency-Key": key} if key else {}
        started = time.monotonic()
        status, answer_headers, answer = request("POST", self.app + "/digests", {"seed": seed, "iterations": iterations}, headers)
        return status, answer_headers, answer, time.monotonic() - started

    def wait_for_job(self, task_id, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            status, _, job = request("GET", f"{self.app}/jobs/{task_id}")
            self.assertEqual(status, 200, job)
            if job["status"] != "pending":
                return job
            if time.monotonic() > deadline:
                self.fail(f"job {task_id} still pending after {timeout} s\n{self.transcripts()}")
            time.sleep(0.1)

    def test_jobs_answer_at_once_and_the_callbacks_deliver_their_results(self):
        run = uuid.uuid4().hex[:8]
        jobs = {}
        for n in range(5):
            seed, iterations = f"{run}-{n}", 200_000 + n * 1000
            status, headers, answer, elapsed = self.post_digest(seed, iterations)
            self.assertEqual(status, 202, answer)
            self.assertLess(elapsed, 2.0, "POST /digests should answer at once, not after the work")
            self.assertEqual(answer["status"], "pending")
            self.assertEqual(headers["Location"], f"/jobs/{answer['id']}")
            jobs[answer["id"]] = (seed, iterations)
        self.assertEqual(len(jobs), 5, "five distinct task ids")
        for task_id, (seed, iterations) in jobs.items():
            job = self.wait_for_job(task_id)
            self.assertEqual(job["status"], "succeeded", job)
            self.assertEqual(job["id"], task_id)
            self.assertEqual(job["result"], {"digest": iterated_sha256(seed, iterations)})

    def test_a_job_is_pending_until_its_callback_and_a_forged_callback_is_refused(self):
        seed = uuid.uuid4().hex
        # Long enough (a few seconds) to still be running while the forgeries arrive.
        iterations = 20_000_000
        status, _, answer, elapsed = self.post_digest(seed, iterations)
        self.assertEqual(status, 202, answer)
        self.assertLess(elapsed, 2.0)
        task_id = answer["id"]
        self.assertEqual(request("GET", f"{self.app}/jobs/{task_id}")[2], {"id": task_id, "status": "pending"})

        forged = json.dumps({"id": task_id, "name": "sha256", "status": "succeeded", "result": {"digest": "0" * 64}})
        timestamp = str(int(time.time()))
        other_secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        from standardwebhooks.webhooks import Webhook
        signed_elsewhere = Webhook(other_secret).sign("forged-1", _utc(timestamp), forged)
        honest = Webhook(self.secret).sign("forged-2", _utc(timestamp), forged)
        attempts = {
            "signed with another secret": {"webhook-signature": signed_elsewhere},
            "a signature of another body": {"webhook-signature": Webhook(self.secret).sign("forged-2", _utc(timestamp), "{}")},
            "a signature of another id": {"webhook-signature": honest, "webhook-id": "forged-3"},
            "a malformed signature": {"webhook-signature": "v1"},
            "no signature": {},
        }
        for what, headers in attempts.items():
            with self.subTest(what):
                sent = {"webhook-id": "forged-2", "webhook-timestamp": timestamp, **headers}
                status, _, _ = request("POST", self.app + "/callbacks/conveyor", forged.encode(), sent)
                self.assertIn(status, (400, 401), what)
        self.assertEqual(request("GET", f"{self.app}/jobs/{task_id}")[2], {"id": task_id, "status": "pending"},
                         "a refused callback changes nothing (the task should still be running: raise its iterations "
                         "if this machine hashes faster)")

        job = self.wait_for_job(task_id)
        self.assertEqual(job["status"], "succeeded", job)
        # (Not checked against hashlib, which takes seconds for this many; the other tests check digests.)
        self.assertRegex(job["result"]["digest"], "^[0-9a-f]{64}$")
        self.assertNotEqual(job["result"]["digest"], "0" * 64)
        # A forgery after the end does not change the result either.
        status, _, _ = request("POST", self.app + "/callbacks/conveyor", forged.encode(),
                               {"webhook-id": "forged-2", "webhook-timestamp": timestamp, "webhook-signature": signed_elsewhere})
        self.assertEqual(status, 401)
        self.assertEqual(self.wait_for_job(task_id), job)

    def test_the_same_idempotency_key_is_the_same_task(self):
        key = "order-" + uuid.uuid4().hex
        first = self.post_digest("same", 1000, key)
        second = self.post_digest("same", 1000, key)
        self.assertEqual((first[0], second[0]), (202, 202), (first[2], second[2]))
        self.assertEqual(first[2]["id"], second[2]["id"])
        job = self.wait_for_job(first[2]["id"])
        self.assertEqual(job["result"], {"digest": iterated_sha256("same", 1000)})

    def test_a_bad_request_is_refused_before_the_gateway(self):
        status, _, answer = request("POST", self.app + "/digests", {"seed": 7})
        self.assertEqual(status, 400, answer)


def _utc(timestamp):
    from datetime import datetime, timezone
    return datetime.fromtimestamp(int(timestamp), tz=timezone.utc)


if __name__ == "__main__":
    unittest.main()
