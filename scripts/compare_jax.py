#!/usr/bin/env python3
"""JAX and nndl side by side on chapter 6's networks (the book's network3.py), on one core:
each network is trained for one epoch of N training images (default 10,000) in mini-batches of
10, by JAX and by `nndl train --layers`, in f32 and f64; a Markdown table gives the seconds of
the epoch's training (evaluation excluded on both sides), the GFLOP/s that makes and its share
of the core's peak. Raw numbers go to results/compare_jax-<time>.json.

Use scripts/compare_jax.sh, which sets up .venv-jax with the pinned JAX, builds nndl and pins
everything to one core (taskset); run directly, this script limits XLA to one thread but not
the process to one core.

The JAX side is network3.py written for JAX: the same layers (lax.conv_general_dilated, which
like nndl and unlike Theano does not flip the filters; max-pooling by lax.reduce_window; bias
and activation after pooling; dropout as network3.py does it), the log-likelihood cost with
network3.py's L2 term, and jax.grad for the gradients. The whole epoch is one jit-compiled
function, a lax.scan over the mini-batches, so Python runs nothing between them; it is compiled
first (its compile time is reported apart) and the time is that of calling it on data already
in memory. Initial weights are network3.py's, drawn with NumPy; the epoch's order is a NumPy
shuffle, applied before timing. Only whole mini-batches are trained (N // m of them: every
image for the default N and m).

The networks (--networks) are the book's: fc (fc:100,softmax, sigmoid, η 0.1), conv (one
conv:20:5,pool:2 below it), conv2 (and conv:40:5,pool:2), conv2-relu (ReLU, η 0.03, λ 0.1) and
conv2-relu-dropout (two fc:1000 layers, dropout 0.5 into each fc and the softmax layer, η 0.03).

nndl runs `nndl train --layers SPEC --epochs 1 --train-size N --precision P --metrics F --quiet`
with the same η, λ and activation; its time is the epoch's train_seconds from the metrics
file. If nndl does not take --layers, that is said once and JAX is timed alone.

FLOPs of a training step are counted as nndl bench counts them, 2 per multiply-add of the
layers' products, per example: forward, a conv layer F·C·K²·H'·W' multiply-adds (H'×W' its
map before pooling) and an fc or softmax layer n_in·n_out; backward, twice that (the weight
gradient and the input gradient), except for the first layer, which needs no input gradient.
Pooling, activations, dropout, biases and the update are not counted.

The peak is nndl's measured peak of one core (`nndl bench` measures it first, before any
training, in its line `Peak of one core (…): X GFLOP/s in f64, Y GFLOP/s in f32`): this
script starts `nndl bench`, reads that line and stops it, three times, and keeps the best.
--peak F64,F32 gives it instead.

--check-against-numpy checks the JAX side itself: from the same weights and order, one f64
epoch of JAX must end within 1e-9 (relative) of scripts/numpy/network3_layers.py.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from runlib import ROOT, cpu_name  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "scripts", "numpy"))
import common  # noqa: E402
import network3_layers  # noqa: E402

jax.config.update("jax_enable_x64", True)

# The book's chapter-6 networks: (name, --layers SPEC, activation, η, λ).
NETWORKS = [
    ("fc", "fc:100,softmax", "sigmoid", 0.1, 0.0),
    ("conv", "conv:20:5,pool:2,fc:100,softmax", "sigmoid", 0.1, 0.0),
    ("conv2", "conv:20:5,pool:2,conv:40:5,pool:2,fc:100,softmax", "sigmoid", 0.1, 0.0),
    ("conv2-relu", "conv:20:5,pool:2,conv:40:5,pool:2,fc:100,softmax", "relu", 0.03, 0.1),
    ("conv2-relu-dropout",
     "conv:20:5,pool:2,conv:40:5,pool:2,fc:1000:dropout=0.5,fc:1000:dropout=0.5,softmax:dropout=0.5",
     "relu", 0.03, 0.0),
]
DTYPES = {"f32": jnp.float32, "f64": jnp.float64}
ACTIVATIONS = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}


def layer_macs(layer):
    """Multiply-adds of one layer's forward product for one example."""
    if layer.kind == "conv-pool":
        f, c, k, _ = layer.w_shape
        _, h, w = layer.conv_shape
        return f * c * k * k * h * w
    return layer.n_in * layer.n_out


def train_flops_per_example(layers):
    """FLOPs of one example's training step: 2 per multiply-add; forward once, backward twice
    (weight and input gradients), but once for the first layer (no input gradient)."""
    return 2 * sum(layer_macs(layer) * (2 if i == 0 else 3) for i, layer in enumerate(layers))


def logits(layers, params, x, key, train):
    """The output layer's weighted input for a mini-batch x (m, 784); dropout masks from `key`
    in training."""
    a = x
    for layer, (w, b) in zip(layers, params):
        if layer.kind == "conv-pool":
            a = a.reshape((a.shape[0],) + layer.in_shape)
            z = lax.conv_general_dilated(a, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
            if layer.pool > 1:
                window = (1, 1, layer.pool, layer.pool)
                z = lax.reduce_window(z, -jnp.inf, lax.max, window, window, "VALID")
            a = ACTIVATIONS[layer.activation](z + b[None, :, None, None])
            continue
        a = a.reshape(a.shape[0], -1)
        if layer.p_dropout > 0 and train:
            key, sub = jax.random.split(key)
            a = a * jax.random.bernoulli(sub, 1.0 - layer.p_dropout, a.shape).astype(a.dtype)
            z = a @ w.T + b
        elif layer.p_dropout > 0:
            z = (1.0 - layer.p_dropout) * (a @ w.T) + b
        else:
            z = a @ w.T + b
        if layer.kind == "softmax":
            return z
        a = ACTIVATIONS[layer.activation](z)
    raise ValueError("the last layer must be softmax")


def make_epoch(layers, eta, lmbda, num_batches):
    """One epoch of SGD as a function of (params, key, xs (batches, m, 784), ys (batches, m))."""
    def cost(params, x, y, key):
        log_a = jax.nn.log_softmax(logits(layers, params, x, key, train=True))
        l2 = sum(jnp.sum(w ** 2) for w, _ in params)
        return -jnp.mean(jnp.take_along_axis(log_a, y[:, None], axis=1)) + 0.5 * lmbda * l2 / num_batches

    def step(carry, batch):
        params, key = carry
        key, sub = jax.random.split(key)
        grads = jax.grad(cost)(params, *batch, sub)
        params = jax.tree_util.tree_map(lambda p, g: p - eta * g, params, grads)
        return (params, key), None

    def epoch(params, key, xs, ys):
        return lax.scan(step, (params, key), (xs, ys))[0][0]

    return epoch


def jax_run(layers, activation, eta, lmbda, dtype, train, test, order, m, repeat, seed):
    """Compiles and times one epoch `repeat` times; (compile seconds, [epoch seconds], accuracy)."""
    x, y = train
    nb = len(order) // m
    batches = order[:nb * m]
    xs = jax.device_put(jnp.asarray(x[batches].reshape(nb, m, -1), dtype))
    ys = jax.device_put(jnp.asarray(y[batches].reshape(nb, m)))
    net = network3_layers.Network(layers, np.random.default_rng(seed))
    params = [(jnp.asarray(layer.w, dtype), jnp.asarray(layer.b, dtype)) for layer in net.layers]
    key = jax.random.PRNGKey(seed)
    jax.block_until_ready((xs, ys, params))
    start = time.perf_counter()
    epoch = jax.jit(make_epoch(layers, eta, lmbda, len(x) // m)).lower(params, key, xs, ys).compile()
    compile_seconds = time.perf_counter() - start
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        trained = jax.block_until_ready(epoch(params, key, xs, ys))
        seconds.append(time.perf_counter() - start)
    assert all(w.dtype == dtype for w, _ in trained)
    predict = jax.jit(lambda p, xb: jnp.argmax(logits(layers, p, xb, None, train=False), axis=1))
    tx, ty = test
    correct = sum(int(jnp.sum(predict(trained, jnp.asarray(tx[s:s + 1000], dtype)) == ty[s:s + 1000]))
                  for s in range(0, len(ty), 1000))
    return compile_seconds, seconds, 100.0 * correct / len(ty)


class Nndl:
    """`nndl train --layers` runs, or the note that this nndl does not take --layers."""

    def __init__(self, exe):
        self.exe = exe
        self.available = os.access(exe, os.X_OK)
        if not self.available:
            print(f"nndl: {os.path.relpath(exe, ROOT)} not built; timing JAX alone", file=sys.stderr)

    def run(self, spec, activation, eta, lmbda, precision, n, m, seed):
        """(train seconds, accuracy) of one epoch, or None."""
        if not self.available:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            metrics = os.path.join(tmp, "metrics.jsonl")
            cmd = [self.exe, "train", "--layers", spec, "--activation", activation, "--eta", str(eta),
                   "--lambda", str(lmbda), "--mini-batch", str(m), "--epochs", "1", "--train-size", str(n),
                   "--precision", precision, "--seed", str(seed), "--metrics", metrics, "--quiet"]
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                if "--layers" in proc.stderr and "unexpected argument" in proc.stderr:
                    print("nndl: --layers not available", file=sys.stderr)
                    self.available = False
                else:
                    print(f"nndl: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}", file=sys.stderr)
                return None
            with open(metrics) as f:
                row = json.loads(f.readline())
            return row["train_seconds"], row["evaluation_accuracy"]


def nndl_peak(exe, tries=3):
    """(f64, f32 GFLOP/s, FMA kind): the best of `tries` starts of `nndl bench`, each stopped once
    it has printed its peak (on a shared machine one measurement can come out low)."""
    found = [p for p in (bench_peak(exe) for _ in range(tries)) if p]
    return (max(p[0] for p in found), max(p[1] for p in found), found[0][2]) if found else None


def bench_peak(exe):
    """(f64, f32 GFLOP/s, FMA kind) from the first lines of `nndl bench`, which is then stopped: the
    peak of one core, or on several cores the peak of all of them at once."""
    threads = len(os.sched_getaffinity(0))
    proc = subprocess.Popen([exe, "bench", "--epochs", "1", "--nets", "network1", "--precisions", "f64,f32",
                             "--threads", str(threads)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    kind = None
    try:
        for line in proc.stdout:
            found = re.match(r"Peak of one core \((.*)\): ([\d.]+) GFLOP/s in f64, ([\d.]+) GFLOP/s in f32", line)
            if found and threads == 1:
                return float(found.group(2)), float(found.group(3)), found.group(1)
            kind = kind or (found and found.group(1))
            found = re.match(r"Peak of \d+ threads at once: ([\d.]+) GFLOP/s in f64, ([\d.]+) GFLOP/s in f32", line)
            if found:
                return float(found.group(1)), float(found.group(2)), f"{kind}, {threads} cores"
    finally:
        proc.terminate()
        proc.wait()
    return None


def check_against_numpy(data):
    """JAX against the NumPy reference: one f64 epoch of 1,000 images from the same weights in the
    same order, for the two chapter-6 cases of crosscheck.py and one network of fc layers.
    Returns the exit status."""
    (x, y), _, _ = common.load_data(data)
    n, m = 1000, 10
    x, y = x[:n], y[:n]
    order = np.random.default_rng(1).permutation(n)
    xs, ys = jnp.asarray(x[order].reshape(n // m, m, -1)), jnp.asarray(y[order].reshape(n // m, m))
    failed = False
    for spec, activation, eta, lmbda in [("conv:4:5,pool:2,fc:30,softmax", "sigmoid", 0.5, 0.1),
                                         ("conv:4:5,pool:2,conv:6:3,pool:2,fc:20,softmax", "relu", 0.03, 0.1),
                                         ("fc:30,fc:20:act=tanh,softmax", "sigmoid", 0.5, 0.1)]:
        net = network3_layers.Network(network3_layers.parse_layers(spec, activation), np.random.default_rng(5))
        params = [(jnp.asarray(layer.w), jnp.asarray(layer.b)) for layer in net.layers]
        trained = jax.jit(make_epoch(net.layers, eta, lmbda, n // m))(params, jax.random.PRNGKey(0), xs, ys)
        net.train_epoch(x, y, order, m, eta, lmbda)
        worst = max(float(np.max(np.abs(np.asarray(p) - q)) / np.max(np.abs(q)))
                    for (w, b), layer in zip(trained, net.layers) for p, q in ((w, layer.w), (b, layer.b)))
        failed |= not worst <= 1e-9
        print(f"{spec} ({activation}): JAX vs NumPy after {n // m} steps, max relative difference {worst:.1e}: "
              f"{'ok' if worst <= 1e-9 else 'FAIL'}")
    return 1 if failed else 0


def fmt(value, spec, missing="–"):
    return missing if value is None else format(value, spec)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-size", type=int, default=10_000, help="training images (the first N)")
    p.add_argument("--mini-batch", type=int, default=10)
    p.add_argument("--networks", default=",".join(n[0] for n in NETWORKS),
                   help=f"any of {', '.join(n[0] for n in NETWORKS)}")
    p.add_argument("--precisions", default="f32,f64")
    p.add_argument("--repeat", type=int, default=1, help="timed epochs of each (the median is reported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nndl", default=os.path.join(ROOT, "target", "release", "nndl"))
    p.add_argument("--peak", help="the core's peak GFLOP/s as F64,F32 (default: measured by nndl bench)")
    p.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.pkl.gz"))
    p.add_argument("--check-against-numpy", action="store_true",
                   help="only check that the JAX epoch computes what scripts/numpy/network3_layers.py does")
    args = p.parse_args()
    if args.check_against_numpy:
        sys.exit(check_against_numpy(args.data))
    chosen = args.networks.split(",")
    unknown = set(chosen) - {n[0] for n in NETWORKS}
    if unknown:
        sys.exit(f"unknown network(s) {', '.join(sorted(unknown))}: choose from {', '.join(n[0] for n in NETWORKS)}")
    precisions = args.precisions.split(",")

    cores = sorted(os.sched_getaffinity(0))
    nndl = Nndl(args.nndl)
    if args.peak:
        f64, f32 = (float(v) for v in args.peak.split(","))
        peak = {"f64": f64, "f32": f32, "source": "--peak"}
    else:
        measured = nndl_peak(args.nndl) if nndl.available else None
        peak = measured and {"f64": measured[0], "f32": measured[1], "source": f"nndl bench ({measured[2]})"}
    print(f"{cpu_name()}; running on core(s) {','.join(map(str, cores))}; JAX {jax.__version__}, "
          f"jaxlib {importlib.metadata.version('jaxlib')}; "
          f"XLA_FLAGS={os.environ['XLA_FLAGS']}", file=sys.stderr)
    if len(cores) > 1:
        print(f"on {len(cores)} cores: XLA with its default threads unless XLA_FLAGS says otherwise, nndl with "
              f"--threads {len(cores)} (for one core each, run scripts/compare_jax.sh)", file=sys.stderr)
    print("peak: " + (f"{peak['f64']:.1f} GFLOP/s f64, {peak['f32']:.1f} f32, from {peak['source']}" if peak
                      else "unknown (no nndl to measure it; give --peak F64,F32)"), file=sys.stderr)

    (train_x, train_y), _, test = common.load_data(args.data)
    train = (train_x[:args.train_size], train_y[:args.train_size])
    n, m = len(train[1]), args.mini_batch
    order = np.random.default_rng(args.seed).permutation(n)
    if n % m:
        print(f"JAX trains {n // m} whole mini-batches ({n % m} images left out)", file=sys.stderr)

    runs = []
    for name, spec, activation, eta, lmbda in NETWORKS:
        if name not in chosen:
            continue
        layers = network3_layers.parse_layers(spec, activation)
        flops = train_flops_per_example(layers)
        for precision in precisions:
            compile_s, jax_s, jax_acc = jax_run(layers, activation, eta, lmbda, DTYPES[precision], train, test, order,
                                                m, args.repeat, args.seed)
            nndl_runs = [nndl.run(spec, activation, eta, lmbda, precision, n, m, args.seed) for _ in range(args.repeat)]
            nndl_s = [r[0] for r in nndl_runs if r]
            run = {"network": name, "layers": spec, "activation": activation, "eta": eta, "lambda": lmbda,
                   "precision": precision, "train_size": n, "mini_batch": m,
                   "flops_per_epoch_jax": flops * (n // m) * m, "flops_per_epoch_nndl": flops * n,
                   "jax_compile_seconds": compile_s, "jax_seconds": jax_s, "jax_accuracy": jax_acc,
                   "nndl_seconds": nndl_s, "nndl_accuracy": nndl_runs[-1][1] if nndl_s else None}
            runs.append(run)
            print(f"{name} {activation} {precision}: JAX {statistics.median(jax_s):.2f} s (compile {compile_s:.2f} s), "
                  f"{jax_acc:.2f}%; nndl " + (f"{statistics.median(nndl_s):.2f} s, {run['nndl_accuracy']:.2f}%"
                                              if nndl_s else "–"), file=sys.stderr, flush=True)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    out = os.path.join(ROOT, "results", f"compare_jax-{stamp}.json")
    with open(out, "w") as f:
        json.dump({"cpu": cpu_name(), "cores": cores, "jax": jax.__version__, "xla_flags": os.environ["XLA_FLAGS"],
                   "peak_gflops": peak, "args": vars(args), "runs": runs}, f, indent=1)

    peak_text = (f"{peak['f64']:.1f} (f64) / {peak['f32']:.1f} (f32) GFLOP/s, from {peak['source']}"
                 if peak else "unknown")
    where = ("one core; " if len(cores) == 1 else
             f"{len(cores)} cores (XLA_FLAGS={os.environ['XLA_FLAGS']!r}, nndl --threads {len(cores)}); ")
    xla = "on one XLA thread" if "intra_op_parallelism_threads=1" in os.environ["XLA_FLAGS"] else "with XLA's threads"
    print(f"{cpu_name()}, {where}one epoch of {n} training images in mini-batches of {m}; "
          f"JAX {jax.__version__} {xla}; peak {peak_text}"
          + (f"; median of {args.repeat} epochs" if args.repeat > 1 else "") + "\n")
    print("| network | activation | precision | nndl s/epoch | JAX s/epoch | JAX ÷ nndl | nndl GFLOP/s | "
          "JAX GFLOP/s | nndl % of peak | JAX % of peak | JAX compile (s) | accuracy nndl / JAX (%) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        jax_t = statistics.median(r["jax_seconds"])
        nndl_t = statistics.median(r["nndl_seconds"]) if r["nndl_seconds"] else None
        jax_g = r["flops_per_epoch_jax"] / jax_t / 1e9
        nndl_g = r["flops_per_epoch_nndl"] / nndl_t / 1e9 if nndl_t else None
        top = peak[r["precision"]] if peak else None
        share = (lambda g: None if g is None or top is None else 100.0 * g / top)
        print(f"| `{r['layers']}` | {r['activation']} | {r['precision']} | {fmt(nndl_t, '.2f')} | {jax_t:.2f} | "
              f"{fmt(jax_t / nndl_t if nndl_t else None, '.2f')}{'×' if nndl_t else ''} | {fmt(nndl_g, '.2f')} | "
              f"{jax_g:.2f} | {fmt(share(nndl_g), '.1f')} | {fmt(share(jax_g), '.1f')} | "
              f"{r['jax_compile_seconds']:.2f} | {fmt(r['nndl_accuracy'], '.2f')} / {r['jax_accuracy']:.2f} |")
    print(f"\nFLOPs per training example: "
          + ", ".join(f"{name} {train_flops_per_example(network3_layers.parse_layers(spec, act)) / 1e6:.2f} M"
                      for name, spec, act, _, _ in NETWORKS if name in chosen)
          + f"; JAX ÷ nndl above 1 means nndl is faster.\nRaw results: {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
