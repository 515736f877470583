/*
 * The C baseline for W4 ("CPU work") of docs/BENCHMARKS.md: the same SHA-256 work with no
 * queue at all, with OpenSSL's libcrypto (the "libzmq limit (C)" column's W4 figure).
 *
 * Task i (0 ≤ i < TASKS) hashes the UTF-8 bytes of the decimal string of i ("0", "1", …), then
 * hashes the previous 32-byte digest ITERATIONS more times, and formats the last digest as
 * lowercase hex: exactly Sources/Consumer/BuiltinTasks.swift `iteratedSHA256(seed:iterations:)`.
 * THREADS pthreads take the next task from a shared atomic counter until none is left. The clock
 * runs from just before the threads start until the last one has been joined.
 *
 * Hashing uses SHA256_Init/SHA256_Update/SHA256_Final on a context on the stack. OpenSSL 3's
 * one-shot SHA256() is not used: it fetches the algorithm from the provider on every call
 * (EVP_Q_digest), which made this run about 6 times slower (2.2 s instead of 0.37 s for W4 on one
 * thread here) and slower still on 2 threads (the look-up takes a shared lock). The EVP interface
 * with a fetched EVP_MD and a reused EVP_MD_CTX took 0.54 s. Swift's SHA256 (swift-crypto, on
 * BoringSSL on Linux) hashes without such a look-up too.
 *
 * Verification (the expected values come from Python's hashlib): a known-answer test of
 * SHA-256("abc"); with 20,000 iterations the digest of task 0; with 400 tasks of 20,000 iterations
 * (the whole of W4) also the SHA-256 of all 400 hex digests concatenated in task order, which
 * checks every task. A wrong digest exits 1. Other iteration counts cannot be checked:
 * "verified" is then false (exit status 0).
 *
 * usage: sha256 [--tasks N] [--iterations N] [--threads T] [--json]
 *          (defaults 400, 20000, 1)
 * prints: sha256: 400 tasks × 20000 iterations on 1 thread in 0.381 s = 1050.0 tasks/s
 *                 (every digest verified); task 0: 79ca…
 *    or, with --json:
 *         {"impl":"c-sha256","workload":"W4","tasks":400,"iterations":20000,"threads":1,
 *          "seconds":...,"tasks_per_sec":...,"verified":true,"digest0":"..."}
 */
/* SHA256_Init/Update/Final are deprecated in OpenSSL 3.0 (in favour of EVP) but still there; this
 * declares them without the deprecation warning that -Werror would turn into an error. */
#define OPENSSL_API_COMPAT 10101
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEX_SIZE (2 * SHA256_DIGEST_LENGTH + 1)

/* hashlib.sha256(b"abc").hexdigest() */
#define ABC_DIGEST "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/* The iterated digest of seed "0" with 20,000 iterations. */
#define CHECKED_ITERATIONS 20000
#define TASK0_DIGEST "79ca694ff0661ed733d7f35a33328f2b4e18da8200b3d037bf562419051f88e4"
/* hashlib.sha256("".join(digest(str(i), 20000) for i in range(400)).encode()).hexdigest() */
#define CHECKED_TASKS 400
#define ALL_DIGEST "cc1511fba7baf151c1ac8ece5af3b1cac2f6813382540d3e7cf3e9abbb1822ff"

struct work {
    long tasks;
    long iterations;
    atomic_long next;
    char (*digests)[HEX_SIZE]; /* one lowercase hex digest per task */
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void to_hex(const unsigned char *digest, char *hex) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0xf];
    }
    hex[2 * SHA256_DIGEST_LENGTH] = '\0';
}

/* SHA-256 of `data` into `digest` with the low-level interface: no provider look-up per call. */
static void sha256(const void *data, size_t size, unsigned char *digest) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, data, size);
    SHA256_Final(digest, &context); /* the input is read before the digest is written */
}

static void iterated_sha256(long seed, long iterations, char *hex) {
    char text[32];
    int length = snprintf(text, sizeof text, "%ld", seed);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    sha256(text, (size_t)length, digest);
    for (long i = 0; i < iterations; i++) sha256(digest, sizeof digest, digest);
    to_hex(digest, hex);
}

static void *worker(void *raw) {
    struct work *work = raw;
    for (;;) {
        long task = atomic_fetch_add_explicit(&work->next, 1, memory_order_relaxed);
        if (task >= work->tasks) return NULL;
        iterated_sha256(task, work->iterations, work->digests[task]);
    }
}

static void usage(const char *name) {
    fprintf(stderr, "usage: %s [--tasks N] [--iterations N] [--threads T] [--json]\n", name);
    exit(2);
}

/* A non-negative integer option value, or usage(). */
static long option_value(const char *name, int argc, char **argv, int *index) {
    if (*index + 1 >= argc) usage(name);
    char *end;
    const char *text = argv[++*index];
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < 0) usage(name);
    return value;
}

int main(int argc, char **argv) {
    long tasks = 400, iterations = CHECKED_ITERATIONS, threads = 1;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tasks") == 0) tasks = option_value(argv[0], argc, argv, &i);
        else if (strcmp(argv[i], "--iterations") == 0) iterations = option_value(argv[0], argc, argv, &i);
        else if (strcmp(argv[i], "--threads") == 0) threads = option_value(argv[0], argc, argv, &i);
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else usage(argv[0]);
    }
    if (tasks < 1 || threads < 1 || threads > 1024) usage(argv[0]);

    /* Known-answer test: a broken libcrypto fails here, before anything is timed. */
    unsigned char abc[SHA256_DIGEST_LENGTH];
    char abc_hex[HEX_SIZE];
    sha256("abc", 3, abc);
    to_hex(abc, abc_hex);
    if (strcmp(abc_hex, ABC_DIGEST) != 0) {
        fprintf(stderr, "sha256: SHA-256(\"abc\") is %s, expected %s\n", abc_hex, ABC_DIGEST);
        return 1;
    }

    struct work work = {.tasks = tasks, .iterations = iterations};
    atomic_init(&work.next, 0);
    work.digests = calloc((size_t)tasks, HEX_SIZE);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    if (!work.digests || !ids) {
        fprintf(stderr, "sha256: out of memory\n");
        return 1;
    }

    double start = now_seconds();
    for (long t = 0; t < threads; t++) {
        if (pthread_create(&ids[t], NULL, worker, &work) != 0) {
            fprintf(stderr, "sha256: pthread_create failed\n");
            return 1;
        }
    }
    for (long t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    double seconds = now_seconds() - start;

    int verified = 0;
    if (iterations == CHECKED_ITERATIONS) {
        if (strcmp(work.digests[0], TASK0_DIGEST) != 0) {
            fprintf(stderr, "sha256: task 0 gave %s, expected %s\n", work.digests[0], TASK0_DIGEST);
            return 1;
        }
        if (tasks == CHECKED_TASKS) {
            unsigned char all[SHA256_DIGEST_LENGTH];
            char all_hex[HEX_SIZE];
            char joined[CHECKED_TASKS * (HEX_SIZE - 1)];
            for (long i = 0; i < tasks; i++) memcpy(joined + i * (HEX_SIZE - 1), work.digests[i], HEX_SIZE - 1);
            sha256(joined, sizeof joined, all);
            to_hex(all, all_hex);
            if (strcmp(all_hex, ALL_DIGEST) != 0) {
                fprintf(stderr, "sha256: the 400 digests hash to %s, expected %s\n", all_hex, ALL_DIGEST);
                return 1;
            }
        }
        verified = 1;
    } else {
        fprintf(stderr, "sha256: no expected digest for %ld iterations: results not verified\n", iterations);
    }

    if (json) {
        printf("{\"impl\":\"c-sha256\",\"workload\":\"W4\",\"tasks\":%ld,\"iterations\":%ld,\"threads\":%ld,"
               "\"seconds\":%.6f,\"tasks_per_sec\":%.1f,\"verified\":%s,\"digest0\":\"%s\"}\n",
               tasks, iterations, threads, seconds, (double)tasks / seconds, verified ? "true" : "false",
               work.digests[0]);
    } else {
        printf("sha256: %ld tasks × %ld iterations on %ld thread%s in %.3f s = %.1f tasks/s (%s); task 0: %s\n",
               tasks, iterations, threads, threads == 1 ? "" : "s", seconds, (double)tasks / seconds,
               verified ? (tasks == CHECKED_TASKS ? "every digest verified" : "task 0 verified") : "not verified",
               work.digests[0]);
    }
    free(ids);
    free(work.digests);
    return 0;
}
