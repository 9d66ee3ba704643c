"""What the NumPy programs share: the command line, loading mnist.pkl.gz, the output lines
(the same as `nndl train` prints), the training loop's timing, and network2.py's JSON model
files (for starting from the same weights as the Rust program and comparing results).

Every array is float64. Inputs are stored one image per row, (n, 784); the networks of
chapters 1-3 see a mini-batch as columns, (784, m), as in the book (the layered networks of
network3_layers.py as rows, as the book's network3.py does).
"""

import argparse
import gzip
import json
import os
import pickle
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_training_arguments(p, eta, lmbda):
    """The options every program takes: SGD's parameters, the data, and the files that let a run
    start from nndl's weights and follow its order. `eta` and `lmbda` are the defaults."""
    p.add_argument("--eta", type=float, default=eta, help="learning rate")
    p.add_argument("--lambda", dest="lmbda", type=float, default=lmbda, help="L2 regularisation")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--mini-batch", dest="mini_batch", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.pkl.gz"))
    p.add_argument("--train-size", dest="train_size", type=int, help="train on the first N images only")
    p.add_argument("--init", help="start from this JSON model")
    p.add_argument("--order", help="JSON list of each epoch's order of training examples")
    p.add_argument("--save", help="write the trained network here (JSON)")
    p.add_argument("--threads", type=int, help="BLAS threads (default: NumPy's own choice)")


def parse_args(name, eta, lmbda, configurable):
    p = argparse.ArgumentParser(description=f"{name}: the NumPy reference for `nndl train --net {name}`")
    if configurable:
        p.add_argument("--cost", choices=["quadratic", "cross-entropy", "log-likelihood"],
                       help="the cost; log-likelihood puts a softmax output layer in place of sigmoid neurons")
        p.add_argument("--activation", choices=["sigmoid", "tanh", "relu"], default="sigmoid",
                       help="the hidden layers' activation")
    p.add_argument("--sizes", default="784,30,10", help="neurons per layer, input first")
    add_training_arguments(p, eta, lmbda)
    args = p.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.name = name
    return args


def blas_description():
    """NumPy's version, and the BLAS it calls with its thread count (via threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info

        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)" for i in libs)
    except ImportError:
        blas = "BLAS unknown (threadpoolctl not installed)"
    return f"NumPy {np.__version__}, {blas}"


def load_data(path):
    """mnist_loader.load_data(): (training, validation, test), each (images (n, 784), labels)."""
    with gzip.open(path, "rb") as f:
        sets = pickle.load(f, encoding="latin1")
    return [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)) for x, y in sets]


def one_hot(labels, classes):
    """vectorized_result for a whole batch: (classes, m), one column per label."""
    y = np.zeros((classes, len(labels)))
    y[labels, np.arange(len(labels))] = 1.0
    return y


def save(net, path, cost_name):
    data = {
        "sizes": net.sizes,
        "weights": [w.tolist() for w in net.weights],
        "biases": [b.tolist() for b in net.biases],
        "cost": cost_name,
    }
    with open(path, "w") as f:
        json.dump(data, f)


def load_weights(path):
    with open(path) as f:
        data = json.load(f)
    return data["sizes"], [np.array(w) for w in data["weights"]], [np.array(b) for b in data["biases"]]


def limit_threads(args):
    """Limits NumPy's BLAS to --threads (when given) for as long as the returned object lives."""
    if not args.threads:
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(args.threads)


def load_training_data(args):
    """The first --train-size training images and the test images, with the `Loaded …` line."""
    start = time.perf_counter()
    (train_x, train_y), valid, (test_x, test_y) = load_data(args.data)
    if args.train_size:
        train_x, train_y = train_x[:args.train_size], train_y[:args.train_size]
    print(f"Loaded {args.data} in {time.perf_counter() - start:.2f} seconds "
          f"({len(train_y)} training, {len(valid[1])} validation, {len(test_y)} test images)")
    return (train_x, train_y), (test_x, test_y)


def train(net, args, training, test, rng):
    """Trains `net` for --epochs epochs, each in --order's order (or a shuffle drawn from `rng`),
    printing the test accuracy after each and the training time at the end."""
    (train_x, train_y), (test_x, test_y) = training, test
    orders = None
    if args.order:
        with open(args.order) as f:
            orders = json.load(f)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = np.asarray(orders[epoch]) if orders is not None else rng.permutation(len(train_y))
        net.train_epoch(train_x, train_y, order, args.mini_batch, args.eta, args.lmbda)
        correct = net.evaluate(test_x, test_y)
        print(f"Epoch {epoch}: {correct} / {len(test_y)} ({100.0 * correct / len(test_y):.2f}%)", flush=True)
    print(f"Training took {time.perf_counter() - start:.2f} seconds")


def main(name, make_network, cost_name, eta, lmbda, configurable=False):
    """Runs program `name`: `make_network(sizes, rng)` builds its network, which saves with
    `cost_name`; `eta` and `lmbda` are the program's default η and λ. A `configurable` program
    also takes --cost and --activation: it is built as `make_network(sizes, rng, args)` and
    saves with the name of its cost's class."""
    args = parse_args(name, eta, lmbda, configurable)
    limiter = limit_threads(args)
    print(f"{args.name} (NumPy): sizes {args.sizes}, eta {args.eta:g}, lambda {args.lmbda:g}, "
          f"{args.epochs} epochs, mini-batch {args.mini_batch}, seed {args.seed}")
    print(f"Backend: {blas_description()}")
    training, test = load_training_data(args)

    rng = np.random.default_rng(args.seed)
    if configurable:
        net = make_network(args.sizes, rng, args)
        cost_name = net.cost.__name__
    else:
        net = make_network(args.sizes, rng)
    if args.init:
        net.sizes, net.weights, net.biases = load_weights(args.init)
    train(net, args, training, test, rng)
    if args.save:
        save(net, args.save, cost_name)
    del limiter


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def evaluate(net, x, labels, chunk=1000):
    """Correct classifications, feeding `chunk` images at a time as columns."""
    correct = 0
    for s in range(0, len(labels), chunk):
        out = net.feedforward(x[s:s + chunk].T)
        correct += int(np.sum(np.argmax(out, axis=0) == labels[s:s + chunk]))
    return correct
