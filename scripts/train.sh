#!/usr/bin/env bash
# Set everything up, then run the main job: train net4 and net5 on the built-in synthetic
# faces, print their epoch tables, write plots and the saved models. Pass --full for the
# recipe's epoch budget; other flags go to `facekeypoints recipe` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/facekeypoints recipe "$@"
