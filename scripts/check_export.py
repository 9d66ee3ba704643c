#!/usr/bin/env python3
"""`nndl export` checked by the programs that read its files (run by .ci/run).

Trains four small networks with nndl, one of each layout and output the exporter writes — the
book's fully-connected programs (sigmoid hidden layers and output, f64; ReLU hidden layers and a
softmax output, f32) and chapter 6's layer lists (a fully-connected list with dropout, and two
convolutions, the first pooled, then a fully-connected layer with dropout, f32) — exports each
as ONNX and safetensors, and checks:

- ONNX: onnx.checker.check_model(full_check=True) passes; the opset and IR version are the
  documented ones; onnxruntime, run on the 10,000 test images, reads the same digit as
  `nndl eval --outputs` for every image, with every output activation within 1e-5;
- safetensors: the safetensors package loads one tensor per weight and bias, each equal to the
  model file's (in the precision the network was trained in); the metadata is the model file
  without its weights; and a NumPy forward pass built from the safetensors file alone — the
  computation docs/export.md writes with PyTorch — agrees with nndl within 1e-9 (f64) or 1e-5
  (f32);
- nndl reads its own safetensors export back: `nndl eval` on it writes the same outputs.

Usage: scripts/check_export.py [--nndl target/release/nndl] [--data data/mnist.pkl.gz]
"""

import argparse
import csv
import gzip
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from numpy.lib.stride_tricks import sliding_window_view
from safetensors import safe_open
from safetensors.numpy import load_file

OPSET, IR_VERSION = 13, 7
TOLERANCE = {"F32": 1e-5, "F64": 1e-9}

# name: nndl train arguments (each trains in a second or two on 5,000 images).
NETWORKS = {
    "fc-sigmoid": ["--sizes", "784,30,10", "--precision", "f64"],
    "fc-relu-softmax": ["--sizes", "784,40,20,10", "--activation", "relu", "--cost",
                        "log-likelihood", "--eta", "0.1", "--precision", "f32"],
    "ch6-fc": ["--layers", "fc:40:act=sigmoid:dropout=0.25,softmax", "--precision", "f32"],
    "ch6-conv": ["--layers", "conv:6:5,pool:2,conv:8:3:act=tanh,fc:30:dropout=0.2,softmax",
                 "--activation", "relu", "--precision", "f32"],
}


def run(*args):
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL)


def read_outputs(path):
    """`nndl eval --outputs`: labels, digits and activations."""
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    table = np.array(rows, dtype=np.float64)
    return table[:, 0].astype(int), table[:, 1].astype(int), table[:, 2:]


def test_images(data):
    with gzip.open(data, "rb") as f:
        _, _, test = pickle.load(f, encoding="latin1")
    return test[0].astype(np.float32), test[1]


def without_weights(model):
    """The model file's description of the network, as the exports carry it."""
    strip = lambda d: {k: v for k, v in d.items() if k not in ("weights", "biases")}
    out = strip(model)
    if "layers" in out:
        out["layers"] = [strip(layer) for layer in out["layers"]]
    return out


def check_onnx(path, images, digits, outputs, name):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == IR_VERSION, model.ir_version
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    runtime = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (probabilities,) = runtime.run(["probabilities"], {"image": images})
    assert probabilities.shape == outputs.shape, probabilities.shape
    differ = np.flatnonzero(probabilities.argmax(axis=1) != digits)
    assert differ.size == 0, f"{name}: onnxruntime reads other digits for images {differ[:10]}"
    gap = np.abs(probabilities - outputs).max()
    assert gap <= 1e-5, f"{name}: onnxruntime's activations differ from nndl's by {gap}"
    print(f"{name}: ONNX checked; onnxruntime agrees on all {len(digits)} digits, "
          f"activations within {gap:.1e}")


def activation(name, z):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    assert name == "softmax", name
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward(path, x):
    """The network's output for images `x` `[N, 784]` from the safetensors file alone: its
    metadata says the layers, its tensors hold the weights (what docs/export.md does in PyTorch)."""
    tensors = load_file(str(path))
    with safe_open(str(path), framework="numpy") as f:
        model = json.loads(f.metadata()["nndl.model"])
    x = x.astype(next(iter(tensors.values())).dtype)
    if "layers" not in model:  # network2.py's layout: sizes, activation, output
        count = len(model["sizes"]) - 1
        for l in range(count):
            (key,) = [k for k in tensors if k.startswith(f"layers.{l}.") and k.endswith(".weight")]
            w, b = tensors[key], tensors[key[: -len("weight")] + "bias"]
            last = l == count - 1
            x = activation(model.get("output", "sigmoid") if last else model.get("activation", "sigmoid"),
                           x @ w.T + b)
        return x
    c, h, wd = model["input"]
    x = x.reshape(-1, c, h, wd)
    for l, layer in enumerate(model["layers"]):
        kind = {"conv-pool": "conv", "fully-connected": "fc", "softmax": "softmax"}[layer["kind"]]
        w, b = tensors[f"layers.{l}.{kind}.weight"], tensors[f"layers.{l}.{kind}.bias"]
        if kind == "conv":
            windows = sliding_window_view(x, w.shape[2:], axis=(2, 3))  # N, C, H', W', K, K
            z = np.einsum("nchwij,fcij->nfhw", windows, w)
            p = layer["pool"]
            n, f, hh, ww = z.shape
            z = z.reshape(n, f, hh // p, p, ww // p, p).max(axis=(3, 5))
            x = activation(layer["activation"], z + b[None, :, None, None])
        else:
            x = x.reshape(len(x), -1)
            z = (1 - layer["dropout"]) * (x @ w.T) + b
            x = activation(layer.get("activation", "softmax"), z)
    return x


def check_safetensors(path, model_file, images, outputs, name):
    model = json.loads(model_file.read_text())
    tensors = load_file(str(path))
    with safe_open(str(path), framework="numpy") as f:
        description = json.loads(f.metadata()["nndl.model"])
    assert description == without_weights(model), f"{name}: the metadata is not the model file"
    precision = (model.get("config") or {}).get("network", {}).get("precision", "f64")
    dtype = np.float32 if precision == "f32" else np.float64
    if "layers" in model:
        pairs = [(l["weights"], l["biases"]) for l in model["layers"]]
    else:
        pairs = list(zip(model["weights"], model["biases"]))
    assert len(tensors) == 2 * len(pairs), sorted(tensors)
    for l, (weights, biases) in enumerate(pairs):
        (w_key,) = [k for k in tensors if k.startswith(f"layers.{l}.") and k.endswith(".weight")]
        b_key = w_key[: -len("weight")] + "bias"
        for key, values in ((w_key, weights), (b_key, biases)):
            expected = np.array(values, dtype=dtype).reshape(tensors[key].shape)
            assert tensors[key].dtype == dtype, (key, tensors[key].dtype)
            assert np.array_equal(tensors[key], expected), f"{name}: {key} differs from the model file"
    tolerance = TOLERANCE["F32" if dtype == np.float32 else "F64"]
    gap = np.abs(forward(path, images) - outputs).max()
    assert gap <= tolerance, f"{name}: the NumPy forward pass from safetensors differs by {gap}"
    print(f"{name}: safetensors checked: {len(tensors)} tensors equal to the model file's "
          f"({precision}); forward pass from the file alone within {gap:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nndl", default="target/release/nndl")
    parser.add_argument("--data", default="data/mnist.pkl.gz")
    args = parser.parse_args()
    images, _ = test_images(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, train in NETWORKS.items():
            model = tmp / f"{name}.json"
            run(args.nndl, "train", *train, "--epochs", "1", "--train-size", "5000", "--seed", "1",
                "--quiet", "--data", args.data, "--save", model)
            run(args.nndl, "eval", "--model", model, "--data", args.data, "--outputs", tmp / f"{name}.csv")
            _, digits, outputs = read_outputs(tmp / f"{name}.csv")
            for fmt in ("onnx", "safetensors"):
                run(args.nndl, "export", "--model", model, "--format", fmt, tmp / f"{name}.{fmt}")
            check_onnx(tmp / f"{name}.onnx", images, digits, outputs, name)
            check_safetensors(tmp / f"{name}.safetensors", model, images, outputs, name)
            run(args.nndl, "eval", "--model", tmp / f"{name}.safetensors", "--data", args.data,
                "--outputs", tmp / f"{name}.back.csv")
            back = (tmp / f"{name}.back.csv").read_text()
            assert back == (tmp / f"{name}.csv").read_text(), f"{name}: nndl reads its export otherwise"
            print(f"{name}: nndl eval reads the safetensors export back to the same outputs")
    print("all exports agree")


if __name__ == "__main__":
    sys.exit(main())
