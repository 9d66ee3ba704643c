#!/usr/bin/env bash
# JAX and nndl on chapter 6's networks, one core each: sets up .venv-jax with the pinned JAX
# (scripts/requirements-jax.txt) if needed, builds nndl (target/release/nndl), and runs
# scripts/compare_jax.py pinned to one core with XLA on one thread.
#   scripts/compare_jax.sh [--core C | --all-cores] [--train-size N] [--networks fc,conv,...]
#                          [--precisions f32,f64] [--repeat R] [--peak F64,F32]
# --core picks the core (default 0). --all-cores runs both on every core instead: XLA with its
# default threads, nndl with its default --threads (the cores available). Every other option
# goes to compare_jax.py (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-jax
if ! "$venv/bin/python" -c 'import jax' 2>/dev/null; then
  echo "Setting up $venv with the pinned JAX (scripts/requirements-jax.txt)…" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r scripts/requirements-jax.txt
fi
core=0
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --all-cores) core=all; shift ;;
    --core) core=$2; shift 2 ;;
    --core=*) core=${1#--core=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
echo "Building nndl (cargo build --release)…" >&2
cargo build --release --quiet || echo "nndl could not be built; timing JAX alone" >&2
if [ "$core" = all ]; then
  export XLA_FLAGS=""
  exec "$venv/bin/python" scripts/compare_jax.py "${args[@]}"
fi
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
exec taskset -c "$core" "$venv/bin/python" scripts/compare_jax.py "${args[@]}"
