#!/usr/bin/env python3
"""Submits a few tasks to a Conveyor broker with the Python client (clients/python) and prints their results.

    pip install ./clients/python              # once (or run from a checkout without installing)
    .build/debug/conveyor broker &            # frontend tcp://127.0.0.1:5555
    .build/debug/conveyor consumer &          # serves echo, sha256, sleep, fail
    python3 examples/python-producer/producer.py [--broker tcp://127.0.0.1:5555]

Exits 0 when every result is the one expected (the failing task included), 1 otherwise.
"""
import argparse
import hashlib
import sys
from pathlib import Path

try:
    import conveyor_client  # noqa: F401  (installed with pip)
except ImportError:         # not installed: use the package of this repository
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

from conveyor_client import BrokerTimeout, Client, TaskOptions


def sha256_of(seed, iterations):
    """What the built-in sha256 task computes: SHA-256 of the seed, then of the digest `iterations` times."""
    digest = hashlib.sha256(seed.encode()).digest()
    for _ in range(iterations):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def main():
    parser = argparse.ArgumentParser(description="Submit a few tasks to a Conveyor broker and print their results.")
    parser.add_argument("--broker", default="tcp://127.0.0.1:5555", help="the broker's frontend endpoint")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the results")
    args = parser.parse_args()

    words = ["alpha", "beta", "gamma"]
    with Client(args.broker) as client:
        # Many tasks go in one SUBMIT; the client picks their ids (or pass your own instead of None).
        echoes = client.submit_many([("echo", {"word": word}, None, None) for word in words])
        digest = client.submit("sha256", {"seed": "conveyor", "iterations": 1000},
                               options=TaskOptions(priority=5, timeout_ms=10_000))
        failing = client.submit("fail", {"message": "this one fails on purpose"})
        try:
            client.wait_accepted(echoes + [digest, failing], timeout=args.timeout)
        except BrokerTimeout:
            print(f"no broker answered at {args.broker}; start one with: conveyor broker", file=sys.stderr)
            return 1
        results = client.results(echoes + [digest, failing], timeout=args.timeout)

        right = 0
        for task_id, word in zip(echoes, words):
            result = results.get(task_id)
            good = result is not None and result.ok and result.value == {"word": word}
            right += good
            print(f"echo    {word:<6} -> {result.value if result else 'no result'} ({result.describe_worker() if result else ''})")
        result = results.get(digest)
        good = result is not None and result.ok and result.value == {"digest": sha256_of("conveyor", 1000)}
        right += good
        print(f"sha256  conveyor -> {result.value['digest'][:16] + '…' if good else result}")
        result = results.get(failing)
        good = result is not None and result.status == "error" and result.error == "this one fails on purpose"
        right += good
        print(f"fail    -> {result.status}: {result.kind}: {result.error}" if result else "fail    -> no result")
        print(f"status of the first echo: {client.status(echoes[0], timeout=10).state}; "
              f"broker: {client.stats(timeout=10)['totals'].get('submitted')} tasks submitted so far")

    print(f"{right}/5 results as expected")
    return 0 if right == 5 else 1


if __name__ == "__main__":
    sys.exit(main())
