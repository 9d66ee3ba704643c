"""network2: the network of network.py with the whole mini-batch backpropagated at once —
the "fully matrix-based approach" of ch. 2: a mini-batch is a (784, m) matrix, and each
layer's forward and backward step is one matrix product. Costs and initialisers are
network2.py's (ch. 3), so network3.py is this network configured differently. The NumPy
reference for `nndl train --net network2`.

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


class Network:
    def __init__(self, sizes, rng, cost=QuadraticCost, scaled_weights=False):
        """Biases N(0, 1); weights N(0, 1), or N(0, 1/n_in) with `scaled_weights`."""
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.cost = cost
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        scale = (lambda x: 1.0 / np.sqrt(x)) if scaled_weights else (lambda x: 1.0)
        self.weights = [rng.standard_normal((y, x)) * scale(x) for x, y in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(w @ a + b)
        return a

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
        for b, w in zip(self.biases, self.weights):
            activations.append(sigmoid(w @ activations[-1] + b))
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        delta = self.cost.delta(activations[-1], y)
        nabla_b[-1] = delta.sum(axis=1, keepdims=True)
        nabla_w[-1] = delta @ activations[-2].T
        for l in range(2, self.num_layers):
            a = activations[-l]
            delta = (self.weights[-l + 1].T @ delta) * a * (1 - a)
            nabla_b[-l] = delta.sum(axis=1, keepdims=True)
            nabla_w[-l] = delta @ activations[-l - 1].T
        return nabla_b, nabla_w

    def evaluate(self, x, labels):
        return common.evaluate(self, x, labels)


if __name__ == "__main__":
    common.main("network2", Network, "QuadraticCost", eta=3.0, lmbda=0.0)
