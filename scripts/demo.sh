#!/usr/bin/env bash
# The main job: builds conveyor (release) when needed, then starts a local broker and consumer
# processes × threads on free ports, runs a mixed workload through them, and prints a summary.
# Extra arguments go to `conveyor demo` (see `conveyor demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh
swift build -c release --product conveyor
exec .build/release/conveyor demo "$@"
