#!/usr/bin/env bash
# The book's overfitting experiment (ch. 3): [784, 30, 10] on the first 1,000 training images,
# 400 epochs, η = 0.5, cross-entropy, mini-batches of 10, and N(0, 1) initial weights
# (network2.py's large_weight_initializer, as the book's run) — without regularisation (λ = 0),
# then with λ = 0.1 — monitoring cost and accuracy on the training and the test data.
# Writes the metrics to results/overfitting-lambda-0.csv and results/overfitting-lambda-0.1.csv
# (untracked: they hold timings, which differ from run to run) and the figure
# docs/overfitting.png, which shows only what a seed repeats exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
mkdir -p results
for lambda in 0 0.1; do
  ./target/release/nndl train --net network3 --weight-init large --train-size 1000 \
    --epochs 400 --eta 0.5 --lambda "$lambda" --mini-batch 10 --seed 0 \
    --monitor train-cost,train-acc,eval-cost \
    --metrics "results/overfitting-lambda-$lambda.csv" --quiet
done
./target/release/nndl plot results/overfitting-lambda-0.csv results/overfitting-lambda-0.1.csv \
  -o docs/overfitting.png \
  --title "Overfitting: [784, 30, 10], 1,000 training images, η = 0.5, λ = 0 vs λ = 0.1"
