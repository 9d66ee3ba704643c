#!/usr/bin/env python3
"""Trains network3 with chapter 3's other output layer, the other hidden activations and
dropout, and prints the README's table of them.

Every run is `nndl train` with network3's settings ([784, 30, 10], η = 0.5, λ = 5.0, 30 epochs,
mini-batches of 10, cross-entropy on sigmoid neurons) and the options its row names, once
per seed; the table gives the mean final and mean best test accuracy over the seeds and the
median training time. The last two rows are dropout where it helps: a wider network
overfitting 1,000 training images without L2 regularisation. Raw results go to
results/chapter3_runs.json.

    python3 scripts/chapter3_runs.py                      # seeds 0,1,2, OpenBLAS if installed
    python3 scripts/chapter3_runs.py --seeds 0 --backend default

Standard library only.
"""

import argparse
import json
import os
import statistics

from runlib import ROOT, available_backends, build, run_logged, short_backend

RUNS = [
    [],
    ["--cost", "log-likelihood"],
    ["--activation", "tanh", "--eta", "0.1"],
    ["--activation", "relu", "--cost", "log-likelihood", "--eta", "0.1"],
    ["--dropout", "0.2"],
    ["--sizes", "784,100,10", "--cost", "log-likelihood"],
    ["--sizes", "784,100,10", "--cost", "log-likelihood", "--dropout", "0.5"],
    ["--sizes", "784,100,10", "--train-size", "1000", "--lambda", "0", "--epochs", "200"],
    ["--sizes", "784,100,10", "--train-size", "1000", "--lambda", "0", "--epochs", "200", "--dropout", "0.5"],
]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--backend", default=None, help="default, openblas or accelerate [the fastest available]")
    p.add_argument("--epochs", type=int, default=30, help="for the rows that do not set their own")
    p.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.pkl.gz"))
    p.add_argument("--out", default=os.path.join(ROOT, "results", "chapter3_runs.json"))
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    backend = args.backend or available_backends()[-1]
    exe = build(backend)

    results = []
    for seed in seeds:
        for options in RUNS:
            epochs = [] if "--epochs" in options else ["--epochs", str(args.epochs)]
            r = run_logged([exe, "train", "--net", "network3", "--seed", str(seed), *epochs, "--data", args.data,
                            *options], f"{' '.join(options) or '(network3)'} seed {seed}")
            r.update(options=options, seed=seed)
            results.append(r)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)

    print("| options (on top of network3) | mean final (%) | mean best (%) | median time (s) |")
    print("|---|---|---|---|")
    for options in RUNS:
        rs = [r for r in results if r["options"] == options]
        final = statistics.mean(r["accuracy"][-1] for r in rs)
        best = statistics.mean(max(r["accuracy"]) for r in rs)
        t = statistics.median(r["seconds"] for r in rs)
        label = f"`{' '.join(options)}`" if options else "*(none: sigmoid, cross-entropy)*"
        print(f"| {label} | {final:.2f} | {best:.2f} | {t:.2f} |")
    print(f"\n{len(seeds)} seeds ({args.seeds}) per row, {args.epochs} epochs unless the row says "
          f"otherwise, {short_backend(results[0]['backend'])}; accuracy on the 10,000 test images.")


if __name__ == "__main__":
    main()
