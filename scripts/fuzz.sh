#!/usr/bin/env bash
# Runs nndl's coverage-guided fuzz targets (fuzz/, cargo-fuzz with libFuzzer) for a number of
# executions each, and prints each target's count and whether it found a crash.
#
#   scripts/fuzz.sh [TARGET...] [--runs N] [--jobs J]
#
# TARGETs: pickle, idx, model_file, png, layers, space, checkpoint (default: all of them). N
# defaults to 1,000,000.
# Needs a nightly toolchain (`cargo +nightly --version`) and cargo-fuzz (`cargo install
# cargo-fuzz`). Each target starts from the seeds in fuzz/seeds/ and, for the pickle, the
# decompressed pickles of tests/fixtures/; what it learns stays in fuzz/corpus/ (not kept in
# git). A crash leaves its input in fuzz/artifacts/TARGET/ and ends the script with status 1:
# turn that input into a regression test in tests/.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=1000000
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --runs=*) runs="${1#--runs=}"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    pickle|idx|model_file|png|layers|space|checkpoint) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown target or option '$1' (targets: pickle idx model_file png layers space checkpoint)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(pickle idx model_file png layers space checkpoint)

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: no nightly toolchain ('cargo +nightly --version' fails); cargo-fuzz needs one" >&2
  exit 3
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
  exit 3
fi

# Seeds: small real files of each kind.
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  if [ -d "fuzz/seeds/$t" ]; then
    cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
  fi
done
if [[ " ${targets[*]} " == *" pickle "* ]]; then
  for f in tests/fixtures/*.pkl.gz; do
    out="fuzz/corpus/pickle/seed-$(basename "$f" .gz)"
    [ -e "$out" ] || gzip -dc "$f" >"$out"
  done
fi

# The pickle seeds are 10–40 KB; let inputs grow that far.
max_len=65536
status=0
summary=()
for t in "${targets[@]}"; do
  echo "== fuzz $t: $runs executions"
  log="fuzz/artifacts/$t.log"
  mkdir -p "fuzz/artifacts/$t"
  if cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" -- \
      -runs="$runs" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 2>&1 | tee "$log" | grep -E '^(#[0-9]+ +(INITED|DONE)|Done|==[0-9]+==|SUMMARY|stat::number_of_executed_units)'; then
    :
  fi
  executed=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  if grep -qE '^(==[0-9]+==ERROR|SUMMARY: libFuzzer)|panicked at|deadly signal' "$log"; then
    summary+=("$t: CRASH after ${executed:-?} executions (input in fuzz/artifacts/$t/)")
    status=1
  else
    summary+=("$t: ${executed:-?} executions, no crash")
  fi
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
