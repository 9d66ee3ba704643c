"""network2: the network of network.py with the whole mini-batch backpropagated at once —
the "fully matrix-based approach" of ch. 2: a mini-batch is a (784, m) matrix, and each
layer's forward and backward step is one matrix product. Costs and initialisers are
network2.py's (ch. 3), so network3.py is this network configured differently. Beyond the book's
programs, --cost log-likelihood gives it a softmax output layer (ch. 3) and --activation
tanh|relu other hidden neurons, as `nndl train` offers them. The NumPy reference for
`nndl train --net network2`.

    python scripts/numpy/network2.py --epochs 30
"""

import numpy as np

import common
from common import sigmoid


class QuadraticCost:
    @staticmethod
    def delta(a, y):
        """BP1 for sigmoid outputs: (a - y) σ'(z), with σ'(z) = a(1 - a)."""
        return (a - y) * a * (1 - a)


class CrossEntropyCost:
    @staticmethod
    def delta(a, y):
        """BP1 for cross-entropy (eq. 66): σ'(z) cancels."""
        return a - y


class LogLikelihoodCost:
    @staticmethod
    def delta(a, y):
        """BP1 for the log-likelihood on a softmax layer (eq. 84)."""
        return a - y


COSTS = {"quadratic": QuadraticCost, "cross-entropy": CrossEntropyCost, "log-likelihood": LogLikelihoodCost}


def softmax(z):
    """Softmax of every column (eq. 78), the largest z subtracted first against overflow."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


# Each hidden activation and its derivative written in terms of its output a.
ACTIVATIONS = {
    "sigmoid": (sigmoid, lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a * a),
    "relu": (lambda z: np.maximum(z, 0.0), lambda a: (a > 0).astype(a.dtype)),
}


class Network:
    def __init__(self, sizes, rng, cost=QuadraticCost, scaled_weights=False, activation="sigmoid"):
        """Biases N(0, 1); weights N(0, 1), or N(0, 1/n_in) with `scaled_weights`."""
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.cost = cost
        self.f, self.f_prime = ACTIVATIONS[activation]
        self.output = softmax if cost is LogLikelihoodCost else sigmoid
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        scale = (lambda x: 1.0 / np.sqrt(x)) if scaled_weights else (lambda x: 1.0)
        self.weights = [rng.standard_normal((y, x)) * scale(x) for x, y in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases[:-1], self.weights[:-1]):
            a = self.f(w @ a + b)
        return self.output(self.weights[-1] @ a + self.biases[-1])

    def train_epoch(self, x, labels, order, mini_batch_size, eta, lmbda):
        n = len(labels)
        for k in range(0, n, mini_batch_size):
            batch = order[k:k + mini_batch_size]
            self.update_mini_batch(x[batch].T, common.one_hot(labels[batch], self.sizes[-1]), eta, lmbda, n)

    def update_mini_batch(self, x, y, eta, lmbda, n):
        """One SGD step on the columns of x (n_in, m) with one-hot targets y (n_out, m)."""
        m = x.shape[1]
        nabla_b, nabla_w = self.backprop(x, y)
        decay = 1.0 - eta * lmbda / n
        if decay == 1.0:
            self.weights = [w - (eta / m) * nw for w, nw in zip(self.weights, nabla_w)]
        else:
            self.weights = [decay * w - (eta / m) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / m) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        """Gradients summed over the mini-batch's columns (BP1-BP4 as matrix products)."""
        activations = [x]
        for b, w in zip(self.biases[:-1], self.weights[:-1]):
            activations.append(self.f(w @ activations[-1] + b))
        activations.append(self.output(self.weights[-1] @ activations[-1] + self.biases[-1]))
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        delta = self.cost.delta(activations[-1], y)
        nabla_b[-1] = delta.sum(axis=1, keepdims=True)
        nabla_w[-1] = delta @ activations[-2].T
        for l in range(2, self.num_layers):
            a = activations[-l]
            delta = (self.weights[-l + 1].T @ delta) * self.f_prime(a)
            nabla_b[-l] = delta.sum(axis=1, keepdims=True)
            nabla_w[-l] = delta @ activations[-l - 1].T
        return nabla_b, nabla_w

    def evaluate(self, x, labels):
        return common.evaluate(self, x, labels)


def make_network(sizes, rng, args):
    return Network(sizes, rng, cost=COSTS[args.cost or "quadratic"], activation=args.activation)


if __name__ == "__main__":
    common.main("network2", make_network, "QuadraticCost", eta=3.0, lmbda=0.0, configurable=True)
