#!/usr/bin/env bash
# nndl writes small studies (a failed and a complete trial; a TPE search over every kind of
# parameter with median pruning) to SQLite and, if NNDL_TEST_POSTGRES is set, to PostgreSQL;
# Optuna (`optuna.load_study`) must read every trial as `nndl tune export` writes it, and
# optuna-dashboard must serve the studies (scripts/optuna_reads_nndl.py). Needs the Python
# environment of scripts/requirements-optuna-store.txt in .venv-optuna.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv-optuna/bin/python
cargo build --release --quiet
nndl=target/release/nndl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Each study: its name, then its arguments.
run_studies() {
  local storage=$1
  "$nndl" tune --storage "$storage" --study diverge --data data/mnist.pkl.gz --train-size 2000 \
    --epochs 2 --sampler grid --trials 2 --activation relu --cost log-likelihood \
    --param eta=choice:1000,0.5 >/dev/null
  "$nndl" tune --storage "$storage" --study search --data data/mnist.pkl.gz --train-size 2000 \
    --epochs 3 --sampler tpe --seed 7 --trials 8 --pruner median \
    --param eta=log:0.1:5 --param lambda=float:0:5 --param mini-batch=choice:10,20 \
    --param hidden=intlog:10:40 --param epochs=int:2:3 >/dev/null
}

check() {
  local storage=$1 sqlalchemy=$2 dashboard=$3
  run_studies "$storage"
  for study in diverge search; do
    "$nndl" tune export --storage "$storage" --study "$study" -o "$work/$study.jsonl" >/dev/null
    $python scripts/optuna_reads_nndl.py "$sqlalchemy" "$study" "$work/$study.jsonl" $dashboard
  done
}

check "sqlite:$work/study.db" "sqlite:///$work/study.db" --dashboard
if [ -n "${NNDL_TEST_POSTGRES:-}" ]; then
  # A database of its own, made afresh, on the server NNDL_TEST_POSTGRES names.
  db=nndl_optuna_reads_$$
  base=${NNDL_TEST_POSTGRES%/*}
  $python - "$base/postgres" "$db" <<'PY'
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1]); conn.autocommit = True
conn.cursor().execute(f"DROP DATABASE IF EXISTS {sys.argv[2]}")
conn.cursor().execute(f"CREATE DATABASE {sys.argv[2]}")
PY
  check "$base/$db" "postgresql+psycopg2://${base#postgres://}/$db" --dashboard
  $python - "$base/postgres" "$db" <<'PY'
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1]); conn.autocommit = True
conn.cursor().execute(f"DROP DATABASE {sys.argv[2]}")
PY
else
  echo "skipped PostgreSQL: NNDL_TEST_POSTGRES is not set"
fi
