#!/usr/bin/env bash
# NumPy and nndl side by side on this machine: sets up .venv with the pinned NumPy if needed,
# builds nndl for every available backend, and prints a timing table.
#   scripts/compare_numpy.sh [--epochs N] [--repeat R] [--variants network1,...] [--threads T] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if ! "$venv/bin/python" -c 'import numpy, threadpoolctl' 2>/dev/null; then
  echo "Setting up $venv with the pinned NumPy (scripts/requirements.txt)…" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r scripts/requirements.txt
fi
exec "$venv/bin/python" scripts/compare_numpy.py "$@"
