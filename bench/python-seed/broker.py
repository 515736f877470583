"""The seed design's broker: the ZeroMQ Guide's load-balancing (LRU) broker, in pyzmq.

A ROUTER frontend for producers and a ROUTER backend for consumers, both bound to
tcp://127.0.0.1:* (the OS picks free ports); the endpoints are printed on stdout as
"frontend ENDPOINT" and "backend ENDPOINT". A consumer sends one READY per free thread; every
READY and every result is one credit for that consumer, kept in least-recently-used order. The
broker reads the frontend only while it holds a credit, so tasks wait in ZeroMQ's queues, not here.
The first READY of each consumer prints "worker HEX" on stdout (so the runner knows who is online).

Frames:  producer -> frontend   [task id][name][args json]
         backend  -> consumer   [producer id][task id][name][args json]
         consumer -> backend    [READY]  or  [producer id][task id][status][body]
         frontend -> producer   [task id][status][body]

Stops by itself after --timeout seconds or when its parent process goes away.
"""
import argparse
import collections
import os
import sys
import time

import zmq

READY = b"READY"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=900, help="seconds before giving up")
    options = parser.parse_args()
    deadline = time.monotonic() + options.timeout
    parent = os.getppid()

    context = zmq.Context()
    frontend = context.socket(zmq.ROUTER)
    backend = context.socket(zmq.ROUTER)
    for socket in (frontend, backend):
        socket.setsockopt(zmq.SNDHWM, 0)
        socket.setsockopt(zmq.RCVHWM, 0)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind("tcp://127.0.0.1:*")
    print("frontend", frontend.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    print("backend", backend.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)

    credits = collections.deque()
    seen = set()
    backend_only = zmq.Poller()
    backend_only.register(backend, zmq.POLLIN)
    both = zmq.Poller()
    both.register(backend, zmq.POLLIN)
    both.register(frontend, zmq.POLLIN)

    while True:
        events = dict((both if credits else backend_only).poll(1000))
        if not events and (time.monotonic() > deadline or os.getppid() != parent):
            break
        if backend in events:
            while True:
                try:
                    message = backend.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                worker = message[0]
                credits.append(worker)
                if len(message) == 2 and message[1] == READY:
                    if worker not in seen:
                        seen.add(worker)
                        print("worker", worker.hex(), flush=True)
                else:
                    frontend.send_multipart(message[1:])
        if frontend in events:
            while credits:
                try:
                    message = frontend.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                backend.send_multipart([credits.popleft()] + message)
        if time.monotonic() > deadline or os.getppid() != parent:
            break
    context.destroy(linger=0)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(1)
