#!/usr/bin/env python3
"""Checks that nndl and the NumPy programs compute the same thing: for each variant, nndl
trains one epoch and writes its initial weights (--save-init), the epoch's shuffled order
(--dump-order) and its trained weights (--save); the NumPy program starts from those weights,
follows that order, and saves its own result. The two must agree to 1e-9 relative (each
weight matrix and bias vector: max |rust - numpy| / max |rust|) and print the same epoch line.

    .venv/bin/python scripts/crosscheck.py [--backend default|openblas] [--variants ...]
        [--train-size N] [--sensitivity]

By default the epoch covers the first 10,000 training images. With η = 3 and N(0, 1)
weights, network1/2 amplify any rounding difference as training goes on, so
over all 50,000 no two implementations that round differently stay within 1e-9 — not even
NumPy and itself started one ulp apart. `--sensitivity` measures exactly that (NumPy against
NumPy from initial weights moved by one ulp) and prints it beside the nndl/NumPy difference.

Besides the three programs, two cases check chapter 3's other pieces the same way: network3
with a softmax output layer, the log-likelihood cost and ReLU hidden neurons, and network3
with tanh hidden neurons (dropout cannot be compared: the two programs draw their masks from
different generators).

Exits 1 when any variant disagrees. Run it with a Python that has NumPy (scripts/requirements.txt).
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np

from runlib import ROOT, build, run

TOLERANCE = 1e-9

# Each case: the program (`nndl train --net` and scripts/numpy/<program>.py) and the options both
# are given.
CASES = {
    "network1": ("network1", []),
    "network2": ("network2", []),
    "network3": ("network3", []),
    "network3-softmax-relu": ("network3", ["--cost", "log-likelihood", "--activation", "relu", "--eta", "0.1"]),
    "network3-tanh": ("network3", ["--activation", "tanh", "--eta", "0.1"]),
}


def weights(path):
    with open(path) as f:
        m = json.load(f)
    return [np.array(w) for w in m["weights"]] + [np.array(b) for b in m["biases"]]


def difference(path_a, path_b):
    """max over arrays of max |a - b| / max |a|."""
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(a))) for a, b in zip(weights(path_a), weights(path_b)))


def nudge(src, dst):
    """Copies a model file with every weight moved one ulp up."""
    with open(src) as f:
        m = json.load(f)
    m["weights"] = [np.nextafter(np.array(w), np.inf).tolist() for w in m["weights"]]
    with open(dst, "w") as f:
        json.dump(m, f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="default")
    p.add_argument("--variants", default=",".join(CASES), help=f"any of {', '.join(CASES)}")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--train-size", type=int, default=10_000, help="training images (the first N)")
    p.add_argument("--sensitivity", action="store_true",
                   help="also run NumPy from initial weights one ulp away and report that difference")
    args = p.parse_args()
    exe = build(args.backend)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            if variant not in CASES:
                sys.exit(f"unknown variant {variant!r}: choose from {', '.join(CASES)}")
            name, options = CASES[variant]
            f = {k: os.path.join(tmp, f"{variant}-{k}.json") for k in ("init", "order", "rust", "numpy", "ulp", "numpy-ulp")}
            common = ["--epochs", str(args.epochs), "--seed", str(args.seed), "--train-size", str(args.train_size),
                      *options]
            rust = run([exe, "train", "--net", name, *common, "--save-init", f["init"],
                        "--dump-order", f["order"], "--save", f["rust"]])
            program = [sys.executable, os.path.join(ROOT, "scripts", "numpy", name + ".py"), *common,
                       "--order", f["order"]]
            numpy = run(program + ["--init", f["init"], "--save", f["numpy"]])
            worst = difference(f["rust"], f["numpy"])
            same_lines = rust["epoch_lines"] == numpy["epoch_lines"]
            ok = worst <= TOLERANCE and same_lines
            failed |= not ok
            extra = ""
            if args.sensitivity:
                nudge(f["init"], f["ulp"])
                run(program + ["--init", f["ulp"], "--save", f["numpy-ulp"]])
                extra = f"; NumPy vs NumPy started 1 ulp apart: {difference(f['numpy'], f['numpy-ulp']):.2e}"
            print(f"{variant}: {args.train_size} images x {args.epochs} epoch(s): nndl vs NumPy max relative "
                  f"difference {worst:.2e}{extra}; epoch lines {'identical' if same_lines else 'DIFFER'}: "
                  f"{'ok' if ok else 'FAIL'}", flush=True)
            if not same_lines:
                print(f"  nndl:  {rust['epoch_lines']}\n  numpy: {numpy['epoch_lines']}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
