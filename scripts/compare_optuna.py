#!/usr/bin/env python3
"""`nndl tune` against Optuna driving `nndl train`, on this machine, in one run.

Three measurements (each can be chosen with --parts):

  compare  The same search space and budget searched by `nndl tune` and by Optuna whose
           objective runs `nndl train ... --eval-on validation --quiet` in a subprocess and
           reads its best validation accuracy. Samplers TPE and random on both sides
           (Optuna: TPESampler(seed=s) with its defaults, RandomSampler(seed=s)); for each seed s
           nndl runs `nndl tune --seed s` into a fresh SQLite file (s seeds its sampler and every
           trial's training) and Optuna passes `--seed s` to `nndl train`, so identical
           parameters train identically on both sides. Runs alternate between the sides so
           that drift of a shared machine hits both alike. Each study is timed end to end as a
           whole process (Optuna's: interpreter start, import, sampling and every `nndl train`
           process; nndl's: the `nndl tune` process, data load included).
  jobs     Trials per minute of `nndl tune --jobs 1` and `--jobs 2` (random sampler, so both
           run the same trials).
  best     The best [784, H, 10] network that `nndl tune --sampler tpe` finds within a stated
           budget, and the test accuracy that `nndl tune` reports for it.

Defaults: 30 trials of 5 epochs on the first 10,000 training images, seeds 0..4, space
eta=log:0.01:10 lambda=log:0.001:50 hidden=intlog:10:200 mini-batch=choice:5,10,20,50,100,
network3. Raw results go to results/compare_optuna-<time>.json; Markdown tables are printed.
OPENBLAS_* and other environment variables are left as they are.

Use scripts/compare_optuna.sh, which sets up the Python environment (Optuna) first:
  scripts/compare_optuna.sh [--parts compare,jobs,best] [--trials N] [--epochs N]
                            [--train-size N] [--seeds 0-4|0,1,2] [--quick] ...
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from runlib import ROOT, build, cpu_name

SPACE = ["eta=log:0.01:10", "lambda=log:0.001:50", "hidden=intlog:10:200",
         "mini-batch=choice:5,10,20,50,100"]
BOOK = [("book, ch. 3 (hand-tuned)", "λ = 5, η = 0.5, 30 hidden, 30 epochs", 96.49),
        ("book, ch. 3 (hand-tuned)", "λ = 5, η = 0.1, 100 hidden, 60 epochs", 98.04)]
BEST_LINE = re.compile(r"^Best trial (\d+): validation ([\d.]+)% \(epoch (\d+)\), test ([\d.]+)%, (.*)$", re.M)
TRIAL_LINE = re.compile(r"^Trial (\d+): validation ([\d.]+)% at epoch (\d+)", re.M)
TRAIN_LINE = re.compile(r"^Training took ([\d.]+) seconds; best epoch (\d+) with ([\d.]+)%", re.M)


def parse_seeds(text):
    """`0-4` or `0,1,2`."""
    if re.fullmatch(r"\d+-\d+", text):
        lo, hi = map(int, text.split("-"))
        return list(range(lo, hi + 1))
    return [int(s) for s in text.split(",")]


def mean_sd(values):
    if not values:
        return "–"
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.2f} ± {sd:.2f}"


# ---------------------------------------------------------------- Optuna side (child process)

def optuna_suggest(trial, spec):
    """One `NAME=KIND` of nndl's --param as the matching Optuna suggestion."""
    name, kind = spec.split("=", 1)
    k, _, rest = kind.partition(":")
    if k == "choice":
        choices = rest.split(",")
        if all(re.fullmatch(r"-?\d+", c) for c in choices):
            choices = [int(c) for c in choices]
        return name, trial.suggest_categorical(name, choices)
    lo, hi = rest.split(":")
    if k in ("log", "float"):
        return name, trial.suggest_float(name, float(lo), float(hi), log=(k == "log"))
    if k in ("int", "intlog"):
        return name, trial.suggest_int(name, int(lo), int(hi), log=(k == "intlog"))
    sys.exit(f"unsupported kind {kind!r}")


def train_args(params):
    """`nndl train` flags for a trial's parameters (eta, lambda, mini-batch, hidden)."""
    args = []
    for name, value in params.items():
        if name == "hidden":
            args += ["--sizes", f"784,{value},10"]
        elif name in ("eta", "lambda", "mini-batch"):
            args += ["--" + name, repr(value) if isinstance(value, float) else str(value)]
        else:
            sys.exit(f"the Optuna objective does not pass {name!r} to nndl train")
    return args


def optuna_child(args):
    """Runs one Optuna study and prints its trials as JSON (timed by the parent as a process)."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.TPESampler(seed=args.seed) if args.sampler == "tpe"
               else optuna.samplers.RandomSampler(seed=args.seed))
    trials = []

    def objective(trial):
        params = dict(optuna_suggest(trial, spec) for spec in args.param)
        cmd = [args.exe, "train", "--net", "network3", *train_args(params), "--epochs", str(args.epochs),
               "--train-size", str(args.train_size), "--eval-on", "validation", "--quiet",
               "--seed", str(args.seed), "--data", args.data]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        m = TRAIN_LINE.search(proc.stdout)
        if proc.returncode != 0 or not m:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        value = float(m.group(3))
        trials.append({"number": trial.number, "params": params, "validation": value,
                       "epoch": int(m.group(2)), "train_seconds": float(m.group(1))})
        return value

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=args.trials)
    json.dump({"optuna": optuna.__version__, "best": study.best_value, "best_params": study.best_params,
               "trials": trials}, sys.stdout)


# ---------------------------------------------------------------- parent

def timed(cmd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout, seconds


def nndl_tune(exe, args, tmp, name, sampler, seed, trials, epochs, train_size, jobs=1):
    """One `nndl tune` study in a fresh SQLite file; its trials and best line, parsed."""
    db = os.path.join(tmp, f"{name}.db")
    cmd = [exe, "tune", "--storage", "sqlite:" + db, "--study", name, "--sampler", sampler,
           "--seed", str(seed), "--trials", str(trials), "--epochs", str(epochs), "--jobs", str(jobs),
           "--net", "network3", "--data", args.data]
    if train_size:
        cmd += ["--train-size", str(train_size)]
    for spec in args.param:
        cmd += ["--param", spec]
    out, seconds = timed(cmd)
    best = BEST_LINE.search(out)
    found = TRIAL_LINE.findall(out)
    if not best or len(found) != trials:
        sys.exit(f"unexpected output from {' '.join(cmd)}:\n{out}")
    span = store_span(db)
    return {"cmd": display(cmd), "seconds": seconds, "trials_seconds": span,
            "best": float(best.group(2)), "best_trial": int(best.group(1)), "best_epoch": int(best.group(3)),
            "test": float(best.group(4)), "best_params": best.group(5),
            "trials": [{"number": int(n), "validation": float(v), "epoch": int(e)} for n, v, e in found]}


def store_span(db):
    """Seconds from the first trial's start to the last trial's end, from the study's store."""
    import sqlite3
    con = sqlite3.connect(db)
    try:
        lo, hi = con.execute("SELECT min(created_at), max(finished_at) FROM nndl_trials").fetchone()
    finally:
        con.close()
    parse = lambda s: datetime.datetime.strptime(s.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return (parse(hi) - parse(lo)).total_seconds()


def optuna_study(exe, args, sampler, seed):
    cmd = [sys.executable, os.path.abspath(__file__), "--optuna-child", "--exe", exe, "--sampler", sampler,
           "--seed", str(seed), "--trials", str(args.trials), "--epochs", str(args.epochs),
           "--train-size", str(args.train_size), "--data", args.data]
    for spec in args.param:
        cmd += ["--param=" + spec]
    out, seconds = timed(cmd)
    r = json.loads(out)
    r.update(seconds=seconds, cmd=display(cmd))
    return r


def display(cmd):
    """A command as it could be typed in the repository (relative paths)."""
    return " ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) and c.startswith(ROOT) else
                    ("python3" if c == sys.executable else c) for c in cmd)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def part_compare(exe, args, tmp):
    runs = []
    i = 0
    for seed in args.seeds:
        for sampler in args.samplers:
            sides = ["nndl tune", "Optuna"]
            if i % 2:
                sides.reverse()
            i += 1
            for side in sides:
                if side == "nndl tune":
                    r = nndl_tune(exe, args, tmp, f"cmp-{sampler}-{seed}", sampler, seed,
                                  args.trials, args.epochs, args.train_size)
                else:
                    r = optuna_study(exe, args, sampler, seed)
                r.update(side=side, sampler=sampler, seed=seed)
                runs.append(r)
                log(f"{side:9} {sampler:6} seed {seed}: best validation {r['best']:.2f}%, "
                    f"{r['seconds']:.1f} s")
    rows = ["| Side | Sampler | Best validation accuracy, mean ± sd (%) | Seeds | Study wall time, mean (s) |",
            "|---|---|---|---|---|"]
    for sampler in args.samplers:
        for side in ("nndl tune", "Optuna"):
            rs = [r for r in runs if r["side"] == side and r["sampler"] == sampler]
            rows.append(f"| {side} | {sampler} | {mean_sd([r['best'] for r in rs])} | {len(rs)} | "
                        f"{statistics.mean(r['seconds'] for r in rs):.1f} |")
    return runs, "\n".join(rows)


def part_jobs(exe, args, tmp):
    runs = []
    for rep in range(args.jobs_repeat):
        order = [1, 2] if rep % 2 == 0 else [2, 1]
        for jobs in order:
            r = nndl_tune(exe, args, tmp, f"jobs{jobs}-{rep}", "random", 0, args.jobs_trials, args.epochs,
                          args.train_size, jobs=jobs)
            r.update(jobs=jobs, repeat=rep)
            runs.append(r)
            log(f"--jobs {jobs}: {args.jobs_trials} trials in {r['seconds']:.1f} s "
                f"({r['trials_seconds']:.1f} s from the first trial's start to the last one's end)")
    rows = ["| `--jobs` | Trials | Wall time (s) | Trials per minute (whole run) | "
            "Trials per minute (first trial start to last trial end) |", "|---|---|---|---|---|"]
    for jobs in (1, 2):
        rs = [r for r in runs if r["jobs"] == jobs]
        wall = statistics.mean(r["seconds"] for r in rs)
        span = statistics.mean(r["trials_seconds"] for r in rs)
        rows.append(f"| {jobs} | {args.jobs_trials} | {wall:.1f} | {60 * args.jobs_trials / wall:.1f} | "
                    f"{60 * args.jobs_trials / span:.1f} |")
    return runs, "\n".join(rows)


def part_best(exe, args, tmp):
    r = nndl_tune(exe, args, tmp, "best", "tpe", args.best_seed, args.best_trials, args.best_epochs,
                  args.best_train_size, jobs=args.best_jobs)
    images = args.best_train_size or 50000
    budget = (f"`--sampler tpe --trials {args.best_trials} --epochs {args.best_epochs} --jobs {args.best_jobs} "
              f"--seed {args.best_seed}`, {images:,} training images")
    log(f"best: {r['best_params']}: validation {r['best']:.2f}%, test {r['test']:.2f}%, {r['seconds']:.0f} s")
    rows = ["| Network | Found by | Validation (%) | Test (%) |", "|---|---|---|---|",
            f"| [784, H, 10], {r['best_params']}, best epoch {r['best_epoch']} | nndl tune, {budget}, "
            f"{r['seconds'] / 60:.0f} min | {r['best']:.2f} | {r['test']:.2f} |"]
    for who, what, acc in BOOK:
        rows.append(f"| [784, H, 10], {what} | {who} | – | {acc:.2f} |")
    r.update(budget=budget)
    return r, "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="compare,jobs,best", help="which measurements, comma-separated")
    p.add_argument("--trials", type=int, default=30, help="trials per study (compare)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per trial (compare, jobs)")
    p.add_argument("--train-size", type=int, default=10000, help="training images per trial (compare, jobs)")
    p.add_argument("--seeds", type=parse_seeds, default=list(range(5)), help="e.g. 0-4 or 0,1 (compare)")
    p.add_argument("--samplers", default="tpe,random", help="compare")
    p.add_argument("--param", action="append", help=f"the search space as nndl's --param (default {' '.join(SPACE)})")
    p.add_argument("--jobs-trials", type=int, default=20, help="trials per run (jobs)")
    p.add_argument("--jobs-repeat", type=int, default=1, help="runs of each --jobs (jobs)")
    p.add_argument("--best-trials", type=int, default=40, help="best")
    p.add_argument("--best-epochs", type=int, default=30, help="best")
    p.add_argument("--best-train-size", type=int, default=0, help="best; 0: all 50,000 images")
    p.add_argument("--best-jobs", type=int, default=2, help="best")
    p.add_argument("--best-seed", type=int, default=0, help="best")
    p.add_argument("--backend", default="default", help="nndl's backend (see scripts/runlib.py)")
    p.add_argument("--data", default="data/mnist.pkl.gz")
    p.add_argument("--quick", action="store_true", help="a tiny smoke run: a few short trials of each part")
    # The Optuna study of one run, in its own process so that its wall time is end to end.
    p.add_argument("--optuna-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--exe", help=argparse.SUPPRESS)
    p.add_argument("--sampler", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.param = args.param or SPACE
    if args.optuna_child:
        return optuna_child(args)
    if args.quick:
        args.trials, args.epochs, args.train_size, args.seeds = 4, 1, 2000, [0]
        args.jobs_trials, args.best_trials, args.best_epochs, args.best_train_size = 4, 3, 1, 2000
    args.samplers = args.samplers.split(",")
    parts = args.parts.split(",")

    exe = build(args.backend)
    import optuna
    started = datetime.datetime.now(datetime.timezone.utc)
    env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS") or k.endswith("_NUM_THREADS")}
    result = {"started": started.isoformat(timespec="seconds"), "cpu": cpu_name(), "cores": os.cpu_count(),
              "thread_env": env, "backend": args.backend, "optuna": optuna.__version__,
              "python": platform.python_version(), "space": args.param, "args": sys.argv[1:]}
    tables = []
    with tempfile.TemporaryDirectory(prefix="compare_optuna-") as tmp:
        if "compare" in parts:
            result["compare"], table = part_compare(exe, args, tmp)
            tables.append(f"nndl tune vs Optuna driving `nndl train`: {args.trials} trials of {args.epochs} epochs "
                          f"on {args.train_size:,} training images, seeds {','.join(map(str, args.seeds))}\n\n"
                          + table)
        if "jobs" in parts:
            result["jobs"], table = part_jobs(exe, args, tmp)
            tables.append(f"nndl tune --sampler random, {args.jobs_trials} trials of {args.epochs} epochs on "
                          f"{args.train_size:,} training images, {os.cpu_count()} cores\n\n" + table)
        if "best" in parts:
            result["best"], table = part_best(exe, args, tmp)
            tables.append("The best [784, H, 10] network found\n\n" + table)

    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    path = os.path.join(ROOT, "results", f"compare_optuna-{started.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"Machine: {result['cpu']}, {result['cores']} cores; nndl backend {args.backend}; Optuna "
          f"{result['optuna']}, Python {result['python']}; thread variables left as they are: {env or 'none set'}")
    print(f"Space: {' '.join(args.param)}; network3\n")
    print("\n\n".join(tables))
    print(f"\nRaw results: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
