#!/usr/bin/env bash
# Runs Conveyor's tests: installs what is missing (libzmq3-dev, libssl-dev, pyzmq), builds everything
# (library, CLI, examples, benchmark code), then runs the whole test suite, real processes included,
# and last builds the release tarball and checks it on a clean environment (scripts/release.sh
# --check). Arguments go to `swift test` (e.g. --filter NAME); a run with arguments skips the
# release check, and so does CONVEYOR_RELEASE_CHECK=0.
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

# The release: a static build of conveyor in .build-release-static (a few minutes from clean),
# packed, unpacked into a temporary folder and run with a clean environment: --version, a broker,
# two consumer processes and real tasks.
if [ "$#" -eq 0 ] && [ "${CONVEYOR_RELEASE_CHECK:-1}" != 0 ]; then
    bash scripts/release.sh --check
else
    echo "release check skipped (a run with arguments, or CONVEYOR_RELEASE_CHECK=0): scripts/release.sh --check runs it" >&2
fi
