#!/usr/bin/env bash
# nndl tune against Optuna driving `nndl train`, trials per minute with --jobs 1 and 2, and the
# best [784, H, 10] network found: sets up .venv with the pinned Optuna if needed, builds nndl,
# runs, and prints Markdown tables (raw results in results/compare_optuna-<time>.json).
#   scripts/compare_optuna.sh [--parts compare,jobs,best] [--trials N] [--epochs N]
#                             [--train-size N] [--seeds 0-4] [--quick]   (--help for all)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if ! "$venv/bin/python" -c 'import optuna' 2>/dev/null; then
  echo "Setting up $venv with the pinned Optuna (scripts/requirements-optuna.txt)…" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r scripts/requirements-optuna.txt
fi
exec "$venv/bin/python" scripts/compare_optuna.py "$@"
