"""The tasks of the workloads (docs/BENCHMARKS.md), as the seed design's consumer runs them (and the producer checks them).

echo    returns its arguments unchanged
sleep   {"ms": n}: sleeps n milliseconds, returns {"slept_ms": n}
sha256  {"seed": s, "iterations": k}: SHA-256 of the UTF-8 of str(s), then of the previous 32-byte
        digest k times; returns {"digest": lowercase hex} (the same as Conveyor's built-in task)
"""
import hashlib
import time


def echo(args):
    return args


def sleep(args):
    ms = args["ms"]
    if ms < 0:
        raise ValueError("ms must not be negative")
    time.sleep(ms / 1000)
    return {"slept_ms": ms}


def sha256_digest(seed, iterations):
    digest = hashlib.sha256(str(seed).encode()).digest()
    for _ in range(iterations):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def sha256(args):
    if args["iterations"] < 0:
        raise ValueError("iterations must not be negative")
    return {"digest": sha256_digest(args["seed"], args["iterations"])}


TASKS = {"echo": echo, "sleep": sleep, "sha256": sha256}
