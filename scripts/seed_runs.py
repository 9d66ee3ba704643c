#!/usr/bin/env python3
"""Runs the book's seed experiments with `nndl train` and prints the README's results table.

For each backend (Cargo feature set) and variant it trains with each seed, reads the
`Epoch k: c / n (p%)` and `Training took S seconds` lines, and prints, per variant and
backend, the test accuracy every 5 epochs (mean over seeds), the mean final and the lowest
best-epoch accuracy over seeds, and the median training time. Raw results go to
results/seed_runs.json.

    python3 scripts/seed_runs.py                       # 4 seeds, all variants, default backend
    python3 scripts/seed_runs.py --backends default,openblas --seeds 0,1,2,3

Standard library only.
"""

import argparse
import json
import os
import statistics

from runlib import ROOT, build, run_logged, short_backend


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3")
    p.add_argument("--variants", default="network1,network2,network3")
    p.add_argument("--backends", default="default")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.pkl.gz"))
    p.add_argument("--out", default=os.path.join(ROOT, "results", "seed_runs.json"))
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    backends = args.backends.split(",")
    exes = {b: build(b) for b in backends}

    runs = []
    # Seeds outermost and backends innermost, so slow drift of the machine hits all alike.
    for seed in seeds:
        for variant in variants:
            for b in backends:
                r = run_logged([exes[b], "train", "--net", variant, "--seed", str(seed),
                                "--epochs", str(args.epochs), "--data", args.data], f"{variant} {b} seed {seed}")
                r.update(variant=variant, seed=seed, features=b)
                runs.append(r)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(runs, f, indent=1)

    marks = [e for e in range(5, args.epochs + 1, 5)] or [args.epochs]
    head = "| variant | backend | " + " | ".join(f"epoch {e}" for e in marks)
    print(head + " | mean final | lowest best | median time (s) |")
    print("|" + "---|" * (len(marks) + 5))
    for variant in variants:
        for b in backends:
            rs = [r for r in runs if r["variant"] == variant and r["features"] == b]
            cols = [f"{statistics.mean(r['accuracy'][e - 1] for r in rs):.2f}" for e in marks]
            final = statistics.mean(r["accuracy"][-1] for r in rs)
            best = min(max(r["accuracy"]) for r in rs)
            t = statistics.median(r["seconds"] for r in rs)
            backend = short_backend(rs[0]["backend"])
            print(f"| {variant} | {backend} | " + " | ".join(cols) +
                  f" | {final:.2f} | {best:.2f} | {t:.2f} |")
    print(f"\n{len(seeds)} seeds ({args.seeds}) per row; accuracy on the 10,000 test images, %.")


if __name__ == "__main__":
    main()
