"""The command line: ``conveyor-client`` (the console script) or ``python -m conveyor_client``.

Without a mode it submits ``--count`` echo and ``--sha256`` sha256 tasks to ``--broker``, checks
every result and the rest of the API, and exits 0 only if everything was right; ``--raw-checks``
sends malformed messages instead and checks the broker's answers; ``--self-test`` checks the
encoders against the golden bytes of PROTOCOL.md, without a broker or pyzmq.

Exit status: 0 all good, 1 a result missing or wrong (or a check failed), 2 the watchdog fired,
3 pyzmq is not installed.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Optional, Sequence

from . import __version__
from .checks import run_raw_checks, run_tasks, self_test
from .client import _require_zmq
from .protocol import TAGS


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="conveyor-client",
        description="Submit echo and sha256 tasks to a Conveyor broker and check the results.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (protocol CVY3; speaks CVY3, CVY2)")
    parser.add_argument("--broker", default="tcp://127.0.0.1:5555", help="the broker's frontend endpoint")
    parser.add_argument("--count", type=int, default=100, help="echo tasks to submit (default 100)")
    parser.add_argument("--sha256", type=int, default=10, help="sha256 tasks to submit (default 10)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed in all (default 60)")
    parser.add_argument("--quiet", dest="verbose", action="store_false", help="print only wrong results and the summary")
    parser.add_argument("--skip-api-checks", action="store_true", help="only submit tasks and check their results")
    parser.add_argument("--raw-checks", action="store_true",
                        help="send malformed messages and check the broker's answers instead")
    parser.add_argument("--self-test", action="store_true",
                        help="check the encoders against the golden bytes of PROTOCOL.md, without a broker")
    parser.add_argument("--protocol", type=int, choices=sorted(TAGS), default=3,
                        help="the protocol version to speak (default 3)")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    try:
        _require_zmq()
    except ImportError as error:
        sys.stderr.write(f"error: {error}\n")
        return 3
    if args.count < 0 or args.sha256 < 0 or args.timeout <= 0:
        parser.error("--count and --sha256 must not be negative; --timeout must be positive")

    # A last resort so that the program never hangs, whatever happens to the broker.
    def watchdog(signum, frame):
        sys.stderr.write(f"FAILED: still running after {args.timeout + 15:.0f} s; giving up\n")
        os._exit(2)
    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(int(args.timeout) + 15)
    try:
        return run_raw_checks(args) if args.raw_checks else run_tasks(args)
    finally:
        signal.alarm(0)
