"""network1: the user's network.py (ch. 1) — sigmoid neurons, quadratic cost, N(0, 1) weights,
mini-batch SGD with backprop one example at a time. The NumPy reference for
`nndl train --net network1`.

The training code is network.py's; what differs: the epoch's order of examples can come from a
file (to follow the Rust program's shuffle exactly), an optional L2 term matches the Rust
update (λ = 0 by default, which is network.py), and the test set is scored in batches of
1,000 columns instead of one image at a time.

    python scripts/numpy/network1.py --epochs 30
"""

import numpy as np

import common
from common import sigmoid


class Network:
    def __init__(self, sizes, rng):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def train_epoch(self, x, labels, order, mini_batch_size, eta, lmbda):
        n = len(labels)
        for k in range(0, n, mini_batch_size):
            self.update_mini_batch(x, labels, order[k:k + mini_batch_size], eta, lmbda, n)

    def update_mini_batch(self, x, labels, batch, eta, lmbda, n):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for k in batch:
            y = np.zeros((self.sizes[-1], 1))
            y[labels[k]] = 1.0
            delta_nabla_b, delta_nabla_w = self.backprop(x[k][:, None], y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        decay = 1.0 - eta * lmbda / n
        if decay == 1.0:
            self.weights = [w - (eta / len(batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        else:
            self.weights = [decay * w - (eta / len(batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        for b, w in zip(self.biases, self.weights):
            activation = sigmoid(np.dot(w, activation) + b)
            activations.append(activation)
        # BP1 with σ'(z) = σ(z)(1 - σ(z)) = a(1 - a).
        a = activations[-1]
        delta = (a - y) * a * (1 - a)
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            a = activations[-l]
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * a * (1 - a)
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return (nabla_b, nabla_w)

    def evaluate(self, x, labels):
        return common.evaluate(self, x, labels)


if __name__ == "__main__":
    common.main("network1", Network, "QuadraticCost", eta=3.0, lmbda=0.0)
