#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it (lint, unit, parity, browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

# Real-browser tests drive Debian's Chromium; install it when missing (root on this machine kind).
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi

python3 -m ruff check .
lint-imports  # the layers point one way and no import forms a cycle (contracts in pyproject.toml)
python3 -m pytest -n 2 "$@"
