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

Two cases check chapter 6's layered networks (`nndl train --layers`, the NumPy program
scripts/numpy/network3_layers.py) the same way, on the first 1,000 training images: `conv`, one
convolutional layer with max-pooling, a fully connected layer and the softmax output, sigmoid
neurons; `conv-relu`, two convolutional layers with max-pooling, ReLU neurons. Both with L2
regularisation, in f64. They run only when named: `--variants conv,conv-relu` (or `all`).

Exits 1 when any variant disagrees. Run it with a Python that has NumPy (scripts/requirements.txt).
"""

import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np

from runlib import ROOT, build, run

TOLERANCE = 1e-9

# Each case: the NumPy program (scripts/numpy/<program>.py), the options only nndl is given (which
# network it trains), the options both are given, and the training images by default.
CASES = {
    "network1": ("network1", ["--net", "network1"], [], 10_000),
    "network2": ("network2", ["--net", "network2"], [], 10_000),
    "network3": ("network3", ["--net", "network3"], [], 10_000),
    "network3-softmax-relu": ("network3", ["--net", "network3"],
                              ["--cost", "log-likelihood", "--activation", "relu", "--eta", "0.1"], 10_000),
    "network3-tanh": ("network3", ["--net", "network3"], ["--activation", "tanh", "--eta", "0.1"], 10_000),
    "conv": ("network3_layers", ["--precision", "f64"],
             ["--layers", "conv:4:5,pool:2,fc:30,softmax", "--activation", "sigmoid", "--eta", "0.5",
              "--lambda", "0.1", "--mini-batch", "10"], 1_000),
    "conv-relu": ("network3_layers", ["--precision", "f64"],
                  ["--layers", "conv:4:5,pool:2,conv:6:3,pool:2,fc:20,softmax", "--activation", "relu",
                   "--eta", "0.03", "--lambda", "0.1", "--mini-batch", "10"], 1_000),
}
# The cases run without --variants: those of chapters 1-3.
DEFAULT_VARIANTS = ["network1", "network2", "network3", "network3-softmax-relu", "network3-tanh"]


def arrays(path):
    """Every weight matrix and bias vector of a model file: network2.py's JSON, or a layered
    network's (a conv layer's weights nested four deep)."""
    with open(path) as f:
        m = json.load(f)
    if "layers" in m:
        return [np.array(layer[k], dtype=np.float64) for layer in m["layers"] for k in ("weights", "biases")]
    return [np.array(w) for w in m["weights"]] + [np.array(b) for b in m["biases"]]


def relative(a, b):
    """max |a - b| / max |a| (0 for two arrays of zeros)."""
    scale = np.max(np.abs(a))
    gap = np.max(np.abs(a - b))
    return float(gap / scale) if scale > 0 else (0.0 if gap == 0 else math.inf)


def difference(path_a, path_b):
    """max over arrays of max |a - b| / max |a|; infinite when the networks' shapes differ."""
    a, b = arrays(path_a), arrays(path_b)
    if [x.shape for x in a] != [y.shape for y in b]:
        print(f"  shapes differ: {[x.shape for x in a]} vs {[y.shape for y in b]}")
        return math.inf
    return max(relative(x, y) for x, y in zip(a, b))


def nudge(src, dst):
    """Copies a model file with every weight moved one ulp up."""
    with open(src) as f:
        m = json.load(f)
    up = lambda w: np.nextafter(np.array(w, dtype=np.float64), np.inf).tolist()  # noqa: E731
    if "layers" in m:
        for layer in m["layers"]:
            layer["weights"] = up(layer["weights"])
    else:
        m["weights"] = [up(w) for w in m["weights"]]
    with open(dst, "w") as f:
        json.dump(m, f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="default")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"any of {', '.join(CASES)}, or all (default: {', '.join(DEFAULT_VARIANTS)})")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--train-size", type=int,
                   help="training images (the first N; default: 10,000, 1,000 for the chapter-6 cases)")
    p.add_argument("--sensitivity", action="store_true",
                   help="also run NumPy from initial weights one ulp away and report that difference")
    args = p.parse_args()
    variants = list(CASES) if args.variants == "all" else args.variants.split(",")
    for variant in variants:
        if variant not in CASES:
            sys.exit(f"unknown variant {variant!r}: choose from {', '.join(CASES)}")
    exe = build(args.backend)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            name, network, options, default_size = CASES[variant]
            train_size = args.train_size or default_size
            f = {k: os.path.join(tmp, f"{variant}-{k}.json") for k in ("init", "order", "rust", "numpy", "ulp", "numpy-ulp")}
            common = ["--epochs", str(args.epochs), "--seed", str(args.seed), "--train-size", str(train_size),
                      *options]
            rust = run([exe, "train", *network, *common, "--save-init", f["init"],
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
            print(f"{variant}: {train_size} images x {args.epochs} epoch(s): nndl vs NumPy max relative "
                  f"difference {worst:.2e}{extra}; epoch lines {'identical' if same_lines else 'DIFFER'}: "
                  f"{'ok' if ok else 'FAIL'}", flush=True)
            if not same_lines:
                print(f"  nndl:  {rust['epoch_lines']}\n  numpy: {numpy['epoch_lines']}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
