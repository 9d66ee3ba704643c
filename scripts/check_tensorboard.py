#!/usr/bin/env python3
"""Checks nndl's TensorBoard event files with TensorBoard's own reader (EventAccumulator, which
needs no TensorFlow): two short runs — network2 with every monitor on, and a chapter-6
convolutional network — write --metrics and --tensorboard; for each, every scalar of every
epoch must equal the metrics file's value (as the float32 an event holds), the images must
decode as PNGs of the size the event states and not be blank, and every layer must have a
histogram of its weights and biases whose buckets count every value.

    .venv-tensorboard/bin/python scripts/check_tensorboard.py

Exits 1 at the first disagreement. Run it with the packages of scripts/requirements-tensorboard.txt.
"""

import csv
import io
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each run: its name, nndl's arguments, and the histogram tags its layers give.
RUNS = [
    ("network2", ["--net", "network2", "--sizes", "784,30,10", "--epochs", "3",
                  "--monitor", "train-cost,train-acc,eval-cost", "--eval-on", "validation"],
     ["layer1/weights", "layer1/biases", "layer2/weights", "layer2/biases"]),
    ("conv", ["--layers", "conv:20:5,pool:2,fc:30,softmax", "--precision", "f32", "--epochs", "2",
              "--monitor", "eval-cost"],
     ["conv1/weights", "conv1/biases", "fc1/weights", "fc1/biases",
      "softmax1/weights", "softmax1/biases"]),
]

# Scalar tag -> the metrics file's column (seconds/epoch is the sum of two columns).
SCALARS = {
    "accuracy/evaluation": "evaluation_accuracy",
    "accuracy/training": "training_accuracy",
    "cost/evaluation": "evaluation_cost",
    "cost/training": "training_cost",
    "eta": "eta",
    "seconds/training": "train_seconds",
    "seconds/evaluation": "eval_seconds",
}


def fail(message):
    sys.exit(f"check_tensorboard: {message}")


def check_run(nndl, name, args, histograms, tmp):
    metrics = os.path.join(tmp, f"{name}.csv")
    logdir = os.path.join(tmp, "runs", name)
    cmd = [nndl, "train", "--train-size", "1000", "--quiet", "--metrics", metrics,
           "--tensorboard", logdir] + args
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        fail(f"{metrics} has no rows")

    acc = EventAccumulator(logdir, size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    checked = 0
    for tag, column in SCALARS.items():
        wanted = [(int(r["epoch"]), float(r[column])) for r in rows if r[column] != ""]
        if not wanted:
            if tag in tags["scalars"]:
                fail(f"{name}: {tag} written, but the run did not measure it")
            continue
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        expected = [(step, float(np.float32(v))) for step, v in wanted]
        if got != expected:
            fail(f"{name}: {tag} is {got}, the metrics file says {expected}")
        checked += len(got)
    epoch_seconds = [(e.step, e.value) for e in acc.Scalars("seconds/epoch")]
    expected = [(int(r["epoch"]), float(np.float32(float(r["train_seconds"]) + float(r["eval_seconds"]))))
                for r in rows]
    if epoch_seconds != expected:
        fail(f"{name}: seconds/epoch is {epoch_seconds}, the metrics file says {expected}")
    checked += len(epoch_seconds)

    images = 0
    for tag in ("images/first_layer_weights", "images/misclassified_validation"
                if "--eval-on" in args else "images/misclassified_test"):
        events = acc.Images(tag)
        if [e.step for e in events] != [int(r["epoch"]) for r in rows]:
            fail(f"{name}: {tag} at steps {[e.step for e in events]}")
        for e in events:
            picture = Image.open(io.BytesIO(e.encoded_image_string))
            picture.load()
            if picture.format != "PNG" or picture.size != (e.width, e.height):
                fail(f"{name}: {tag} step {e.step} is {picture.format} {picture.size}, "
                     f"the event says {e.width}x{e.height}")
            lo, hi = picture.convert("L").getextrema()
            if lo == hi:
                fail(f"{name}: {tag} step {e.step} is blank")
            images += 1

    for tag in histograms:
        events = acc.Histograms(tag)
        if len(events) != len(rows):
            fail(f"{name}: {len(events)} histograms of {tag} for {len(rows)} epochs")
        for e in events:
            h = e.histogram_value
            if h.num <= 0 or sum(h.bucket) != h.num or not h.min <= h.max:
                fail(f"{name}: histogram {tag} step {e.step} does not add up: {h}")
    print(f"{name}: {checked} scalars equal to the metrics file's, {images} images decoded, "
          f"{len(histograms)} histograms per epoch over {len(rows)} epochs")


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    nndl = os.path.join(ROOT, "target", "release", "nndl")
    with tempfile.TemporaryDirectory() as tmp:
        for name, args, histograms in RUNS:
            check_run(nndl, name, args, histograms, tmp)


if __name__ == "__main__":
    main()
