#!/usr/bin/env bash
# Runs Conveyor's tests: installs what is missing (libzmq3-dev, libssl-dev, pyzmq), builds everything
# (library, CLI, examples, benchmark code), then runs the whole test suite, real processes included.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh --python

# Rules the compiler cannot check (a task's state changes only in the broker's state machine; file sizes).
bash scripts/check-sources.sh

# The C benchmark programs are built too, so that they cannot rot (-lcrypto: OpenSSL for sha256.c).
mkdir -p bench/out
for source in bench/c/*.c; do
    [ -e "$source" ] || continue
    gcc -O2 -Wall -Werror -o "bench/out/$(basename "${source%.c}")" "$source" $(pkg-config --cflags --libs libzmq) -lpthread -lcrypto
done

swift build --build-tests
# Serially: the integration suites start real processes and measure liveness in wall time, so
# running them side by side on a 2-core machine would starve the processes they test.
swift test --skip-build --no-parallel "$@"
