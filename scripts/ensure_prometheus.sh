#!/usr/bin/env bash
# Make sure a Prometheus server binary is on PATH (Debian's `prometheus` package).
#
# Idempotent: does nothing when `prometheus` is already installed. Used by .ci/run and
# by developers before `pytest -m prometheus`. Only Debian's own package is installed
# (no binaries are downloaded from elsewhere). The packaged systemd service is never
# started: tests run their own Prometheus on 127.0.0.1 with a temporary config.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1; then
    echo "ensure_prometheus: $(prometheus --version 2>&1 | head -n 1)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_prometheus: 'prometheus' is not on PATH and apt-get is unavailable;" \
         "install Prometheus >= 2.40 by hand and put it on PATH." >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ensure_prometheus: installing 'prometheus' needs root (or sudo)." >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit code 101 stops dpkg from starting the packaged service during install;
# the file is removed again whatever happens.
POLICY_RC=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC" >/dev/null
    $SUDO chmod +x "$POLICY_RC"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        $SUDO rm -f "$POLICY_RC"
    fi
}
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null

if ! command -v prometheus >/dev/null 2>&1; then
    echo "ensure_prometheus: apt-get installed 'prometheus' but it is not on PATH." >&2
    exit 1
fi
echo "ensure_prometheus: installed $(prometheus --version 2>&1 | head -n 1)"
