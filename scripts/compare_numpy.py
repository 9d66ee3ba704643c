#!/usr/bin/env python3
"""NumPy and nndl side by side on this machine, in one run: each variant is trained by its
NumPy program and by nndl on every available backend with identical parameters, runs
alternating so that drift of a shared machine hits all alike, and a Markdown table of median
times and accuracies is printed. Raw results go to results/compare_numpy-<time>.json.

Use scripts/compare_numpy.sh, which sets up the Python environment first.
"""

import argparse
import datetime
import json
import os
import statistics
import sys

from runlib import ROOT, available_backends, build, cpu_name, run, short_backend

SEED_EPOCHS = 30


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=SEED_EPOCHS)
    p.add_argument("--repeat", type=int, default=3, help="runs of each program (the median is reported)")
    p.add_argument("--variants", default="network1,network2,network3")
    p.add_argument("--backends", help="comma-separated; default: every one available here")
    p.add_argument("--threads", type=int, default=1,
                   help="threads of each side: NumPy's BLAS threads, nndl's --threads (its scoring; it trains these networks on one)")
    p.add_argument("--precisions", default="f64,f32", help="nndl precisions to run (NumPy is always f64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="2 epochs, 1 run each (a smoke test)")
    args = p.parse_args()
    if args.quick:
        args.epochs, args.repeat = 2, 1
    backends = args.backends.split(",") if args.backends else available_backends()
    variants = args.variants.split(",")

    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        env[var] = str(args.threads)
    exes = {b: build(b) for b in backends}
    common = ["--epochs", str(args.epochs), "--seed", str(args.seed)]

    runs = []
    for rep in range(args.repeat):
        for variant in variants:
            sides = [("NumPy", [sys.executable, os.path.join(ROOT, "scripts", "numpy", variant + ".py"),
                                *common, "--threads", str(args.threads)])]
            sides += [(f"nndl {b} {p}", [exes[b], "train", "--net", variant, *common, "--threads", str(args.threads),
                                          "--precision", p])
                      for b in backends for p in args.precisions.split(",")]
            # Alternate which side goes first from one repeat to the next.
            for impl, cmd in (sides if rep % 2 == 0 else sides[::-1]):
                r = run(cmd, env)
                r.update(variant=variant, implementation=impl, repeat=rep, threads=args.threads)
                runs.append(r)
                print(f"{variant} {impl} run {rep + 1}: {r['seconds']:.2f} s, final {r['accuracy'][-1]:.2f}%",
                      file=sys.stderr)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    out = os.path.join(ROOT, "results", f"compare_numpy-{stamp}.json")
    with open(out, "w") as f:
        json.dump({"cpu": cpu_name(), "args": vars(args), "runs": runs}, f, indent=1)

    print(f"{cpu_name()}, {os.cpu_count()} logical CPUs; {args.epochs} epochs, seed {args.seed}, "
          f"{args.repeat} run(s) each, {args.threads} thread(s) each\n")
    print("| variant | implementation | precision | backend | threads | median train time (s) | s/epoch | "
          "final acc. (%) | best acc. (%) | median load (s) | speedup vs NumPy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for variant in variants:
        def median(impl, key):
            return statistics.median(r[key] for r in runs if r["variant"] == variant and r["implementation"] == impl)
        base = median("NumPy", "seconds")
        for impl in ["NumPy"] + [f"nndl {b} {p}" for b in backends for p in args.precisions.split(",")]:
            rs = [r for r in runs if r["variant"] == variant and r["implementation"] == impl]
            t = median(impl, "seconds")
            precision = impl.split()[2] if impl != "NumPy" else "f64"
            backend = short_backend(rs[0]["backend"])
            print(f"| {variant} | {impl.split()[0]} | {precision} | {backend} | {args.threads} | {t:.2f} | "
                  f"{t / args.epochs:.3f} | {rs[-1]['accuracy'][-1]:.2f} | {max(rs[-1]['accuracy']):.2f} | "
                  f"{median(impl, 'load_seconds'):.2f} | {base / t:.1f}× |")
    print(f"\nRaw results: {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
