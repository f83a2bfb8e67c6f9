#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it (lint, unit, parity, browser tests).
# One line per stage says what is happening (the installation takes a minute or two on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '==> %s\n' "$*"; }

stage "installing gdlab with its test and video extras (pip; PyTorch CPU, Playwright, imageio-ffmpeg, ...)"
python3 -m pip install --disable-pip-version-check --progress-bar on -e '.[test,video]'

# Real-browser tests drive Debian's Chromium; install it when missing (root on this machine kind).
if ! command -v chromium >/dev/null 2>&1; then
    stage "installing Chromium for the browser tests (apt-get)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi

stage "ruff: lint"
python3 -m ruff check .
stage "lint-imports: the layers point one way and no import forms a cycle (contracts in pyproject.toml)"
lint-imports
stage "pytest: the whole suite"
python3 -m pytest -n 2 "$@"
