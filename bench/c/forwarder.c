/*
 * The libzmq limit for a brokered task queue: round trips through a ROUTER/ROUTER forwarder with
 * plain libzmq, the peer "libzmq limit (C)" of docs/BENCHMARKS.md (W1 and W2).
 *
 * One process, three threads, everything over tcp on 127.0.0.1 (wildcard ports):
 *
 *   client (DEALER, main thread)
 *     -> forwarder: frontend ROUTER (clients) / backend ROUTER (workers)
 *     -> worker (DEALER, echoes) -> forwarder -> client
 *
 * The worker first sends a one-frame READY message so that the forwarder learns its routing id;
 * the forwarder reads nothing from the frontend before that. A request [client id][payload] from
 * the frontend goes to the backend as [worker id][client id][payload]; the worker echoes
 * [client id][payload]; the forwarder receives [worker id][client id][payload] and sends
 * [client id][payload] back to the client. Frames are moved with zmq_msg_t (no copies), and each
 * ready socket is drained without blocking before polling again. High-water marks are 0 (no limit):
 * the client's window bounds what is in flight. Every reply is checked: it must be 100 bytes and
 * carry the sequence number of the next expected request (one worker, so order is preserved).
 *
 * usage: forwarder pipelined COUNT WINDOW   (100-byte payloads, WINDOW requests in flight)
 *          prints {"impl":"c-forwarder","mode":"pipelined","messages":N,"window":W,"seconds":S,
 *                  "round_trips_per_sec":R}
 *        forwarder latency COUNT            (one in flight, after 100 untimed warm-up trips)
 *          prints {"impl":"c-forwarder","mode":"latency","messages":N,"p50_us":...,"p90_us":...,
 *                  "p99_us":...,"max_us":...}
 * The pipelined clock runs from the first timed send to the last reply (after 100 untimed warm-up
 * trips that make sure every connection is up).
 *
 * Both modes also print the CPU time (user + system, getrusage(RUSAGE_SELF): all threads of this
 * one process, libzmq's I/O threads included) over the timed window: "user_seconds",
 * "system_seconds", "cpu_seconds" and "cpu_us_per_round_trip", comparable with the CPU per task of
 * `conveyor bench --json` (whose processes are the producer, the broker and the consumers).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zmq.h>

#define PAYLOAD_SIZE 100
#define WARMUP 100
#define READY "READY"

static void die(const char *what) {
    fprintf(stderr, "forwarder: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User and system CPU seconds of this process (all threads) so far. */
static void cpu_seconds(double *user, double *system) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) {
        perror("forwarder: getrusage");
        exit(1);
    }
    *user = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6;
    *system = (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

/* The CPU fields of the JSON line: the time from (user0, system0) to (user1, system1), in all and
 * per round trip. */
static void print_cpu(double user0, double system0, double user1, double system1, long count) {
    double user = user1 - user0, system = system1 - system0;
    printf(",\"user_seconds\":%.6f,\"system_seconds\":%.6f,\"cpu_seconds\":%.6f,\"cpu_us_per_round_trip\":%.3f",
           user, system, user + system, (user + system) * 1e6 / (double)count);
}

static void *make_socket(void *context, int type) {
    void *socket = zmq_socket(context, type);
    if (!socket) die("zmq_socket");
    int zero = 0;
    if (zmq_setsockopt(socket, ZMQ_SNDHWM, &zero, sizeof zero) != 0) die("ZMQ_SNDHWM");
    if (zmq_setsockopt(socket, ZMQ_RCVHWM, &zero, sizeof zero) != 0) die("ZMQ_RCVHWM");
    if (zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero) != 0) die("ZMQ_LINGER");
    return socket;
}

static void bind_wildcard(void *socket, char *endpoint, size_t size) {
    if (zmq_bind(socket, "tcp://127.0.0.1:*") != 0) die("zmq_bind");
    if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, endpoint, &size) != 0) die("ZMQ_LAST_ENDPOINT");
}

/* After zmq_ctx_shutdown, blocking calls fail with ETERM: that is how the helper threads stop. */
static int terminated(void) { return zmq_errno() == ETERM; }

/* ---------------------------------------------------------------------------------------------- */
/* forwarder thread */

struct forwarder_args {
    void *context;
    void *frontend; /* created and bound by main, used only by this thread */
    void *backend;
};

/* Receives one whole message (up to `max` frames) into `frames`; returns the frame count, 0 when
 * nothing is waiting (ZMQ_DONTWAIT), -1 on ETERM. */
static int recv_message(void *socket, zmq_msg_t *frames, int max, int flags) {
    int count = 0;
    for (;;) {
        if (count == max) {
            fprintf(stderr, "forwarder: message with more than %d frames\n", max);
            exit(1);
        }
        zmq_msg_init(&frames[count]);
        if (zmq_msg_recv(&frames[count], socket, count == 0 ? flags : 0) < 0) {
            zmq_msg_close(&frames[count]);
            if (count == 0 && zmq_errno() == EAGAIN) return 0;
            if (terminated()) return -1;
            die("zmq_msg_recv");
        }
        int more = zmq_msg_more(&frames[count]);
        count++;
        if (!more) return count;
    }
}

/* Sends frames[first..count) (moving them) and closes frames[0..first). Returns -1 on ETERM. */
static int send_frames(void *socket, zmq_msg_t *frames, int first, int count) {
    for (int i = 0; i < first; i++) zmq_msg_close(&frames[i]);
    for (int i = first; i < count; i++) {
        if (zmq_msg_send(&frames[i], socket, i + 1 < count ? ZMQ_SNDMORE : 0) < 0) {
            if (terminated()) {
                for (int j = i; j < count; j++) zmq_msg_close(&frames[j]);
                return -1;
            }
            die("zmq_msg_send");
        }
    }
    return 0;
}

static void *forwarder(void *raw) {
    struct forwarder_args *args = raw;
    zmq_msg_t frames[8];
    zmq_msg_t worker;

    /* Wait for the worker's READY: [worker id]["READY"]. */
    int count = recv_message(args->backend, frames, 8, 0);
    if (count < 0) goto done_unready;
    if (count != 2 || zmq_msg_size(&frames[1]) != strlen(READY) ||
        memcmp(zmq_msg_data(&frames[1]), READY, strlen(READY)) != 0) {
        fprintf(stderr, "forwarder: expected READY from the worker\n");
        exit(1);
    }
    zmq_msg_init(&worker);
    zmq_msg_move(&worker, &frames[0]);
    zmq_msg_close(&frames[1]);

    zmq_pollitem_t items[2] = {
        {.socket = args->frontend, .events = ZMQ_POLLIN},
        {.socket = args->backend, .events = ZMQ_POLLIN},
    };
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (terminated()) break;
            die("zmq_poll");
        }
        if (items[0].revents & ZMQ_POLLIN) {
            /* [client id][payload] -> [worker id][client id][payload] */
            while ((count = recv_message(args->frontend, frames + 1, 7, ZMQ_DONTWAIT)) > 0) {
                zmq_msg_init(&frames[0]);
                zmq_msg_copy(&frames[0], &worker);
                if (send_frames(args->backend, frames, 0, count + 1) < 0) goto done;
            }
            if (count < 0) goto done;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            /* [worker id][client id][payload] -> [client id][payload] */
            while ((count = recv_message(args->backend, frames, 8, ZMQ_DONTWAIT)) > 0) {
                if (count < 3) {
                    fprintf(stderr, "forwarder: short reply from the worker\n");
                    exit(1);
                }
                if (send_frames(args->frontend, frames, 1, count) < 0) goto done;
            }
            if (count < 0) goto done;
        }
    }
done:
    zmq_msg_close(&worker);
done_unready:
    zmq_close(args->frontend);
    zmq_close(args->backend);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* worker thread: echoes every [client id][payload] back */

struct worker_args {
    void *context;
    char endpoint[256];
};

static void *worker(void *raw) {
    struct worker_args *args = raw;
    void *dealer = make_socket(args->context, ZMQ_DEALER);
    if (zmq_connect(dealer, args->endpoint) != 0) die("zmq_connect worker");
    if (zmq_send(dealer, READY, strlen(READY), 0) < 0) {
        if (!terminated()) die("zmq_send READY");
        goto done;
    }
    zmq_msg_t frames[8];
    for (;;) {
        int count = recv_message(dealer, frames, 8, 0);
        if (count < 0) break;
        if (send_frames(dealer, frames, 0, count) < 0) break;
    }
done:
    zmq_close(dealer);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* client (main thread) */

static void fill(char *payload, uint64_t sequence) {
    memcpy(payload, &sequence, sizeof sequence);
}

static void send_request(void *dealer, char *payload, uint64_t sequence) {
    fill(payload, sequence);
    if (zmq_send(dealer, payload, PAYLOAD_SIZE, 0) != PAYLOAD_SIZE) die("zmq_send");
}

static void receive_reply(void *dealer, uint64_t expected) {
    char buffer[PAYLOAD_SIZE + 1];
    int received = zmq_recv(dealer, buffer, sizeof buffer, 0);
    if (received < 0) die("zmq_recv");
    uint64_t sequence;
    memcpy(&sequence, buffer, sizeof sequence);
    if (received != PAYLOAD_SIZE || sequence != expected) {
        fprintf(stderr, "forwarder: reply %llu is wrong (%d bytes, sequence %llu)\n",
                (unsigned long long)expected, received, (unsigned long long)sequence);
        exit(1);
    }
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, long count, double p) {
    long rank = (long)((p / 100.0) * (double)count + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > count) rank = count;
    return sorted[rank - 1];
}

static void usage(const char *name) {
    fprintf(stderr, "usage: %s pipelined COUNT WINDOW\n       %s latency COUNT\n", name, name);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) usage(argv[0]);
    int pipelined = strcmp(argv[1], "pipelined") == 0;
    if (!pipelined && strcmp(argv[1], "latency") != 0) usage(argv[0]);
    if (pipelined ? argc != 4 : argc != 3) usage(argv[0]);
    long count = atol(argv[2]);
    long window = pipelined ? atol(argv[3]) : 1;
    if (count <= 0 || window <= 0) usage(argv[0]);

    void *context = zmq_ctx_new();
    if (!context) die("zmq_ctx_new");

    struct forwarder_args fargs = {.context = context};
    fargs.frontend = make_socket(context, ZMQ_ROUTER);
    fargs.backend = make_socket(context, ZMQ_ROUTER);
    int one = 1;
    if (zmq_setsockopt(fargs.frontend, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0) die("ROUTER_MANDATORY");
    if (zmq_setsockopt(fargs.backend, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0) die("ROUTER_MANDATORY");
    char frontend_endpoint[256];
    struct worker_args wargs = {.context = context};
    bind_wildcard(fargs.frontend, frontend_endpoint, sizeof frontend_endpoint);
    bind_wildcard(fargs.backend, wargs.endpoint, sizeof wargs.endpoint);

    pthread_t forwarder_thread, worker_thread;
    if (pthread_create(&forwarder_thread, NULL, forwarder, &fargs) != 0 ||
        pthread_create(&worker_thread, NULL, worker, &wargs) != 0) {
        fprintf(stderr, "forwarder: pthread_create failed\n");
        return 1;
    }

    void *dealer = make_socket(context, ZMQ_DEALER);
    if (zmq_connect(dealer, frontend_endpoint) != 0) die("zmq_connect client");
    char payload[PAYLOAD_SIZE];
    memset(payload, 'x', sizeof payload);

    uint64_t sequence = 0;
    for (int i = 0; i < WARMUP; i++, sequence++) {
        send_request(dealer, payload, sequence);
        receive_reply(dealer, sequence);
    }

    double user0, system0;
    if (pipelined) {
        uint64_t first = sequence, sent = sequence, received = sequence, end = sequence + (uint64_t)count;
        cpu_seconds(&user0, &system0);
        double start = now_seconds();
        while (sent < end && sent - received < (uint64_t)window) send_request(dealer, payload, sent++);
        while (received < end) {
            receive_reply(dealer, received++);
            if (sent < end) send_request(dealer, payload, sent++);
        }
        double seconds = now_seconds() - start;
        double user1, system1;
        cpu_seconds(&user1, &system1);
        printf("{\"impl\":\"c-forwarder\",\"mode\":\"pipelined\",\"messages\":%llu,\"window\":%ld,"
               "\"seconds\":%.6f,\"round_trips_per_sec\":%.1f",
               (unsigned long long)(end - first), window, seconds, (double)count / seconds);
        print_cpu(user0, system0, user1, system1, count);
        printf("}\n");
    } else {
        double *micros = malloc(sizeof(double) * (size_t)count);
        if (!micros) die("malloc");
        cpu_seconds(&user0, &system0);
        for (long i = 0; i < count; i++, sequence++) {
            double start = now_seconds();
            send_request(dealer, payload, sequence);
            receive_reply(dealer, sequence);
            micros[i] = (now_seconds() - start) * 1e6;
        }
        double user1, system1;
        cpu_seconds(&user1, &system1);
        qsort(micros, (size_t)count, sizeof(double), compare_doubles);
        printf("{\"impl\":\"c-forwarder\",\"mode\":\"latency\",\"messages\":%ld,\"p50_us\":%.1f,"
               "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f",
               count, percentile(micros, count, 50), percentile(micros, count, 90),
               percentile(micros, count, 99), micros[count - 1]);
        print_cpu(user0, system0, user1, system1, count);
        printf("}\n");
        free(micros);
    }
    fflush(stdout);

    zmq_close(dealer);
    zmq_ctx_shutdown(context); /* wakes the forwarder and the worker with ETERM */
    pthread_join(forwarder_thread, NULL);
    pthread_join(worker_thread, NULL);
    zmq_ctx_term(context);
    return 0;
}
