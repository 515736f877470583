"""The seed design's consumer: a DEALER to the broker's backend, tasks run on a ThreadPoolExecutor.

Sends one READY per thread (plus --prefetch more: credits for tasks that wait in the pool's
queue), then for every [producer id][task id][name][args json] received runs the task (json.loads
the args, json.dumps the result) on the pool. ZeroMQ sockets are not thread-safe, so pool threads
put their results on a queue.SimpleQueue and wake the main thread through a pipe; the main thread
polls the DEALER and the pipe and sends each result [producer id][task id][status][body] to the
broker (which counts it as a new credit).

Stops by itself after --timeout seconds or when its parent process goes away.
"""
import argparse
import concurrent.futures
import json
import os
import queue
import threading
import time

import zmq

from tasks import TASKS

READY = b"READY"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect", required=True, help="the broker's backend endpoint")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=0,
                        help="credits beyond the threads (tasks that wait in the pool's queue); 0: one per thread")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before giving up")
    options = parser.parse_args()
    deadline = time.monotonic() + options.timeout
    parent = os.getppid()

    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.SNDHWM, 0)
    dealer.setsockopt(zmq.RCVHWM, 0)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(options.connect)

    done = queue.SimpleQueue()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    signalled = threading.Event()

    def reply(frames):
        done.put(frames)
        if not signalled.is_set():
            signalled.set()
            os.write(wake_write, b"x")

    def run(client, task_id, name, args):
        try:
            result = TASKS[name.decode()](json.loads(args))
            reply([client, task_id, b"ok", json.dumps(result).encode()])
        except Exception as error:  # the producer sees every failure
            reply([client, task_id, b"error", f"{type(error).__name__}: {error}".encode()])

    executor = concurrent.futures.ThreadPoolExecutor(max_workers=options.threads)
    for _ in range(options.threads + options.prefetch):
        dealer.send(READY)

    poller = zmq.Poller()
    poller.register(dealer, zmq.POLLIN)
    poller.register(wake_read, zmq.POLLIN)
    while True:
        events = dict(poller.poll(1000))
        if dealer in events:
            while True:
                try:
                    message = dealer.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                executor.submit(run, *message)
        if wake_read in events:
            os.read(wake_read, 4096)
            signalled.clear()
            while True:
                try:
                    message = done.get_nowait()
                except queue.Empty:
                    break
                dealer.send_multipart(message)
        if time.monotonic() > deadline or os.getppid() != parent:
            break
    # Pool threads may still be running: leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    main()
