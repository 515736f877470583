/*
 * PUSH/PULL throughput with plain libzmq, the baseline for the Swift wrapper's
 * `conveyor bench pushpull` (Sources/ConveyorCLI/Bench/PushPullBenchmark.swift), which runs the
 * same loop.
 *
 * One process: a PULL bound on tcp://127.0.0.1:* in the main thread, a PUSH connected to it from
 * a second thread. The sender sends COUNT messages of SIZE bytes with zmq_send; the receiver
 * receives them with zmq_recv. The clock runs from just before the sender thread starts until
 * the last message has been received. High-water marks are libzmq's defaults.
 *
 * usage: pushpull [COUNT [SIZE]]    (defaults 1000000 and 100)
 * prints: {"impl":"c","messages":...,"size":...,"seconds":...,"msgs_per_sec":...}
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct sender_args {
    void *context;
    char endpoint[256];
    long count;
    size_t size;
};

static void die(const char *what) {
    fprintf(stderr, "pushpull: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static void *sender(void *raw) {
    struct sender_args *args = raw;
    void *push = zmq_socket(args->context, ZMQ_PUSH);
    if (!push) die("zmq_socket PUSH");
    if (zmq_connect(push, args->endpoint) != 0) die("zmq_connect");
    char *payload = malloc(args->size ? args->size : 1);
    if (!payload) die("malloc");
    memset(payload, 'x', args->size);
    for (long i = 0; i < args->count; i++) {
        if (zmq_send(push, payload, args->size, 0) < 0) die("zmq_send");
    }
    free(payload);
    zmq_close(push); /* default linger: close waits until everything queued is delivered */
    return NULL;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 1000000;
    long size_arg = argc > 2 ? atol(argv[2]) : 100;
    if (count <= 0 || size_arg < 0) {
        fprintf(stderr, "usage: %s [COUNT [SIZE]]\n", argv[0]);
        return 2;
    }
    size_t size = (size_t)size_arg;

    void *context = zmq_ctx_new();
    if (!context) die("zmq_ctx_new");
    void *pull = zmq_socket(context, ZMQ_PULL);
    if (!pull) die("zmq_socket PULL");
    if (zmq_bind(pull, "tcp://127.0.0.1:*") != 0) die("zmq_bind");

    struct sender_args args = {.context = context, .count = count, .size = size};
    size_t endpoint_size = sizeof args.endpoint;
    if (zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, args.endpoint, &endpoint_size) != 0)
        die("ZMQ_LAST_ENDPOINT");

    char *buffer = malloc(size ? size : 1);
    if (!buffer) die("malloc");

    double start = now_seconds();
    pthread_t thread;
    if (pthread_create(&thread, NULL, sender, &args) != 0) {
        fprintf(stderr, "pushpull: pthread_create failed\n");
        return 1;
    }
    for (long i = 0; i < count; i++) {
        int received = zmq_recv(pull, buffer, size, 0);
        if (received < 0) die("zmq_recv");
        if ((size_t)received != size) {
            fprintf(stderr, "pushpull: message %ld has %d bytes, expected %zu\n", i, received, size);
            return 1;
        }
    }
    double seconds = now_seconds() - start;

    pthread_join(thread, NULL);
    free(buffer);
    zmq_close(pull);
    zmq_ctx_term(context);

    printf("{\"impl\":\"c\",\"messages\":%ld,\"size\":%zu,\"seconds\":%.6f,\"msgs_per_sec\":%.1f}\n",
           count, size, seconds, (double)count / seconds);
    return 0;
}
