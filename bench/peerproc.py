"""What the peers' drivers (bench/celery/run.py, bench/rabbitmq/run.py) share: stopping the servers
and workers they start, whatever happens to the driver, and finding a free port."""
import ctypes
import os
import signal
import socket
import subprocess
import sys


class GaveUp(BaseException):
    """The overall --timeout ran out (a BaseException, so that no workload's handler swallows it)."""


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies, however it dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def stop(child, name, grace=10.0):
    """SIGTERM to the child's process group (it leads one), then SIGKILL after `grace` seconds."""
    if child is None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if child.poll() is not None:
            break
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        try:
            child.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            if sig == signal.SIGKILL:
                print(f"run.py: {name} (pid {child.pid}) did not stop", file=sys.stderr)
    # Children of the group that outlived their leader (prefork pool processes).
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path, what, lines=40):
    """Copies the last `lines` lines of a log to stderr."""
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            text = log.readlines()[-lines:]
    except OSError:
        return
    if text:
        print(f"--- last lines of {what}:", "".join(text), sep="\n", end="", file=sys.stderr)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
