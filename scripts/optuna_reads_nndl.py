"""Optuna and optuna-dashboard open a study that nndl wrote.

    python scripts/optuna_reads_nndl.py STORAGE STUDY EXPORT.jsonl [--dashboard]

STORAGE is the study's database as SQLAlchemy names it (sqlite:///PATH or
postgresql+psycopg2://USER@HOST:PORT/DB), EXPORT.jsonl what `nndl tune export` wrote for the
study. `optuna.load_study` must read every trial with the same number, state, parameters,
per-epoch values (Optuna's intermediate values, step = epoch) and value (the best epoch's
validation accuracy for a complete trial, the last for a pruned one, none for a failed one);
with --dashboard, optuna-dashboard is started on 127.0.0.1 and its API must list the study
and serve the same trials. Exits non-zero, saying what differs, otherwise.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import optuna

STATES = {
    "complete": optuna.trial.TrialState.COMPLETE,
    "pruned": optuna.trial.TrialState.PRUNED,
    "failed": optuna.trial.TrialState.FAIL,
    "running": optuna.trial.TrialState.RUNNING,
    "waiting": optuna.trial.TrialState.WAITING,
}


def expected_value(row):
    if row["state"] == "complete":
        return max(row["values"])
    if row["state"] == "pruned" and row["values"]:
        return row["values"][-1]
    return None


def check_optuna(storage, name, rows):
    study = optuna.load_study(study_name=name, storage=storage)
    problems = []
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        problems.append(f"direction {study.direction}")
    trials = study.get_trials(deepcopy=False)
    if [t.number for t in trials] != [r["number"] for r in rows]:
        problems.append(
            f"trial numbers {[t.number for t in trials]} vs {[r['number'] for r in rows]}"
        )
    for t, r in zip(trials, rows):
        got = {
            "state": t.state,
            "params": t.params,
            "intermediate": t.intermediate_values,
            "value": t.value,
        }
        want = {
            "state": STATES[r["state"]],
            "params": r["params"],
            "intermediate": dict(enumerate(r["values"])),
            "value": expected_value(r),
        }
        for key in got:
            if got[key] != want[key]:
                problems.append(f"trial {r['number']} {key}: optuna {got[key]!r}, nndl {want[key]!r}")
        if t.state.is_finished() and (t.datetime_start is None or t.datetime_complete is None):
            problems.append(f"trial {r['number']}: no start or completion time")
        if r["state"] == "failed" and t.system_attrs.get("fail_reason") != r["message"]:
            problems.append(f"trial {r['number']}: fail_reason {t.system_attrs.get('fail_reason')!r}")
    complete = [r for r in rows if r["state"] == "complete"]
    if complete and study.best_value != max(expected_value(r) for r in complete):
        problems.append(f"best value {study.best_value}")
    return problems, len(trials)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def check_dashboard(storage, name, rows):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "optuna-dashboard"),
            storage,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    problems = []
    try:
        deadline = time.time() + 60
        while True:
            try:
                status, body = get(f"{base}/api/studies")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    return [f"optuna-dashboard did not answer on {base}"]
                time.sleep(0.5)
        summaries = json.loads(body)["study_summaries"]
        mine = [s for s in summaries if s["study_name"] == name]
        if len(mine) != 1:
            return [f"/api/studies lists {[s['study_name'] for s in summaries]}, not {name!r}"]
        study_id = mine[0]["study_id"]
        status, body = get(f"{base}/api/studies/{study_id}?after=0")
        detail = json.loads(body)
        trials = detail["trials"]
        if [t["number"] for t in trials] != [r["number"] for r in rows]:
            problems.append(f"dashboard trial numbers {[t['number'] for t in trials]}")
        for t, r in zip(trials, rows):
            if t["state"].lower() != STATES[r["state"]].name.lower():
                problems.append(f"dashboard trial {r['number']} state {t['state']}")
            steps = {v["step"]: v["value"] for v in t["intermediate_values"]}
            if steps != dict(enumerate(r["values"])):
                problems.append(f"dashboard trial {r['number']} intermediate values {steps}")
            params = {p["name"]: p["param_external_value"] for p in t["params"]}
            want = {k: str(v) if isinstance(v, str) else v for k, v in r["params"].items()}
            if {k: str(v) for k, v in params.items()} != {k: str(v) for k, v in want.items()}:
                problems.append(f"dashboard trial {r['number']} params {params}")
        status, page = get(f"{base}/dashboard/studies/{study_id}")
        if status != 200 or b"<html" not in page.lower():
            problems.append(f"the dashboard's study page answered {status}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("storage")
    parser.add_argument("study")
    parser.add_argument("export")
    parser.add_argument("--dashboard", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with open(args.export) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    problems, n = check_optuna(args.storage, args.study, rows)
    if args.dashboard:
        problems += check_dashboard(args.storage, args.study, rows)
    if problems:
        print(f"{args.storage} study {args.study}:", *problems, sep="\n  ")
        return 1
    states = sorted({r["state"] for r in rows})
    print(
        f"optuna {optuna.__version__} reads study {args.study} of {args.storage}: {n} trials "
        f"({', '.join(states)}) as nndl exports them"
        + (", and optuna-dashboard serves it" if args.dashboard else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
