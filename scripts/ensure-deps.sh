#!/usr/bin/env bash
# Installs what Conveyor needs when it is missing: libzmq (with pkg-config) for building, OpenSSL's
# libcrypto (libssl-dev) for the built-in sha256 task and the C SHA-256 baseline bench/c/sha256.c,
# and, with --python, what the tests run beside Swift: pyzmq and venv (the Python client), the
# Prometheus parser, standardwebhooks, openapi-spec-validator and schemathesis, chromium with
# chromium-driver and selenium (the dashboard), croniter and tzdata (the cron oracle).
# Debian/Ubuntu through apt-get (with sudo when not root); elsewhere it says what to install.
set -euo pipefail

want_python=0
[ "${1:-}" = "--python" ] && want_python=1

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "error: need root (or sudo) to run: $*" >&2; exit 1
    fi
}

apt_updated=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists libzmq; then
    echo "Installing libzmq3-dev and pkg-config…" >&2
    if ! apt_install libzmq3-dev pkg-config; then
        echo "error: libzmq was not found and this is not a Debian/Ubuntu system." >&2
        echo "Install libzmq 4.3 with its pkg-config file (macOS: brew install zeromq pkg-config), then rerun." >&2
        exit 1
    fi
fi

if ! pkg-config --exists libcrypto; then
    echo "Installing libssl-dev…" >&2
    if ! apt_install libssl-dev; then
        echo "error: OpenSSL's libcrypto was not found and this is not a Debian/Ubuntu system." >&2
        echo "Install OpenSSL 1.1 or 3 with its headers and pkg-config file (macOS: brew install openssl@3), then rerun." >&2
        exit 1
    fi
fi

if [ "$want_python" -eq 1 ] && ! python3 -c 'import zmq' >/dev/null 2>&1; then
    echo "Installing pyzmq…" >&2
    python3 -m pip install --quiet --disable-pip-version-check pyzmq >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages pyzmq >/dev/null 2>&1 \
        || apt_install python3-zmq \
        || { echo "error: could not install pyzmq (pip install pyzmq)" >&2; exit 1; }
    python3 -c 'import zmq' || { echo "error: pyzmq installed but 'import zmq' fails" >&2; exit 1; }
fi

# The metrics test parses /metrics with the Prometheus client's own text-format parser.
if [ "$want_python" -eq 1 ] && ! python3 -c 'import prometheus_client.parser' >/dev/null 2>&1; then
    echo "Installing prometheus-client…" >&2
    python3 -m pip install --quiet --disable-pip-version-check prometheus-client >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages prometheus-client >/dev/null 2>&1 \
        || apt_install python3-prometheus-client \
        || { echo "error: could not install prometheus-client (pip install prometheus-client)" >&2; exit 1; }
fi

# The webhook tests' receiver checks signatures with the Standard Webhooks project's own library.
if [ "$want_python" -eq 1 ] && ! python3 -c 'import standardwebhooks' >/dev/null 2>&1; then
    echo "Installing standardwebhooks…" >&2
    python3 -m pip install --quiet --disable-pip-version-check standardwebhooks >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages standardwebhooks >/dev/null 2>&1 \
        || { echo "error: could not install standardwebhooks (pip install standardwebhooks)" >&2; exit 1; }
fi

# The Flask example's test (examples/flask-app/test_app.py) runs the example app under `flask run`.
if [ "$want_python" -eq 1 ] && ! python3 -c 'import flask' >/dev/null 2>&1; then
    echo "Installing flask…" >&2
    python3 -m pip install --quiet --disable-pip-version-check flask >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages flask >/dev/null 2>&1 \
        || { echo "error: could not install flask (pip install flask)" >&2; exit 1; }
fi

# The gateway's OpenAPI test: openapi-spec-validator checks /openapi.json, schemathesis runs it
# against the live gateway (Tests/IntegrationTests/GatewayOpenAPITests.swift).
if [ "$want_python" -eq 1 ] && { ! command -v openapi-spec-validator >/dev/null 2>&1 || ! command -v schemathesis >/dev/null 2>&1; }; then
    echo "Installing openapi-spec-validator and schemathesis…" >&2
    python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator schemathesis >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages openapi-spec-validator schemathesis >/dev/null 2>&1 \
        || { echo "error: could not install openapi-spec-validator and schemathesis (pip install openapi-spec-validator schemathesis)" >&2; exit 1; }
fi

# The cron tests compare CronExpression with croniter (Tests/Support/cron/oracle.py), whose zones
# come from the system's zoneinfo or, without it, from the tzdata package.
if [ "$want_python" -eq 1 ] && [ ! -d /usr/share/zoneinfo ]; then
    echo "Installing tzdata…" >&2
    apt_install tzdata \
        || { echo "error: no /usr/share/zoneinfo and could not install tzdata (apt-get install tzdata)" >&2; exit 1; }
fi
if [ "$want_python" -eq 1 ] && ! python3 -c 'import croniter, tzdata' >/dev/null 2>&1; then
    echo "Installing croniter and tzdata…" >&2
    python3 -m pip install --quiet --disable-pip-version-check croniter tzdata >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages croniter tzdata >/dev/null 2>&1 \
        || { echo "error: could not install croniter and tzdata (pip install croniter tzdata)" >&2; exit 1; }
fi

# The Python client's install test makes a virtual environment; Debian ships venv's ensurepip apart.
if [ "$want_python" -eq 1 ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "Installing python3-venv…" >&2
    apt_install python3-venv \
        || { echo "error: python3 cannot make virtual environments; install its venv module (Debian: python3-venv)" >&2; exit 1; }
fi

# The dashboard's browser test: Debian's headless Chromium, driven through its own chromedriver
# by Selenium (Tests/IntegrationTests/DashboardBrowserTests.swift).
if [ "$want_python" -eq 1 ] && { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; }; then
    echo "Installing chromium and chromium-driver…" >&2
    apt_install chromium chromium-driver \
        || { echo "error: could not install chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2; exit 1; }
fi
if [ "$want_python" -eq 1 ] && ! python3 -c 'import selenium' >/dev/null 2>&1; then
    echo "Installing selenium…" >&2
    python3 -m pip install --quiet --disable-pip-version-check selenium >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages selenium >/dev/null 2>&1 \
        || { echo "error: could not install selenium (pip install selenium)" >&2; exit 1; }
fi
