"""network3_layers: the layered networks of the book's network3.py (ch. 6) — convolutional
layers with max-pooling (ConvPoolLayer), fully connected layers (FullyConnectedLayer) and a
softmax output layer (SoftmaxLayer), trained by mini-batch SGD on the log-likelihood cost with
network3.py's L2 term and dropout. The NumPy reference for `nndl train --layers SPEC`.

    python scripts/numpy/network3_layers.py --layers conv:20:5,pool:2,fc:100,softmax --epochs 1
    python scripts/numpy/network3_layers.py --self-test

The network is given as nndl takes it, over 1×28×28 images: --layers is a comma-separated list of

    conv:F:K[:act=A]          F filters of K×K over all input channels
    pool:P                    after a conv: P×P max-pooling (without it, P = 1)
    fc:N[:dropout=p][:act=A]  N fully connected neurons
    softmax[:dropout=p]       the output layer of 10 neurons; last

with A one of sigmoid, tanh, relu (per layer with act=, otherwise --activation). What a layer
computes for a mini-batch of m images, held as rows (network3.py's layout):

    conv-pool        z[f,y,x] = Σ_c Σ_i Σ_j w[f,c,i,j]·a[c,y+i,x+j]  (valid cross-correlation,
                     stride 1: Theano's conv2d flips the filters, this does not), then P×P
                     max-pooling of each map (P divides it), then out = act(pooled + b[f])
    fully-connected  in training out = act(W·(in ⊙ mask) + b), the mask a 0/1 draw per input
                     with keep probability 1−p and no rescaling (network3.py's dropout_layer);
                     in evaluation out = act((1−p)·W·in + b). After a conv layer it reads the
                     maps flattened in (channel, y, x) order
    softmax          the same with softmax for act

The cost is the mini-batch mean of −ln a_y plus network3.py's 0.5·λ·Σ‖W‖²/num_batches over the
weights of every layer, num_batches = n // m. One step is W ← W − η·(mean ∂C/∂W +
λ·W/num_batches) and b ← b − η·mean ∂C/∂b. Unlike network3.py, every mini-batch of the epoch
is trained, a shorter last one included (its own size in the mean; num_batches stays n // m).
Max-pooling passes the gradient to the first maximum of each block, row by row. Weight
matrices are stored (n_out, n_in) as in chapters 1-3 (network3.py stores the transpose).

Without --init the weights are network3.py's: conv and fc weights N(0, 1/n_out) (a conv layer's
n_out is F·K²/P²), biases N(0, 1), the softmax layer's all zero. Dropout masks are drawn from
NumPy's generator seeded with --seed, so a run with dropout cannot repeat nndl's exactly.

--self-test checks the backpropagation against finite differences of the cost, and the
convolution, the pooling and the model file against their definitions; it exits 1 on a failure.
"""

import argparse
import copy
import json
import os
import sys
import tempfile

import numpy as np

import common
from network2 import ACTIVATIONS

INPUT = (1, 28, 28)
CLASSES = 10


def softmax_rows(z):
    """Softmax of every row, the largest z subtracted first against overflow."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class ConvPoolLayer:
    """F filters of K×K over the C input maps, then P×P max-pooling, bias and activation."""

    kind = "conv-pool"
    p_dropout = 0.0

    def __init__(self, filters, filter_size, pool, activation, in_shape):
        c, h, w = in_shape
        self.filters, self.filter, self.pool, self.activation = filters, filter_size, pool, activation
        self.in_shape = in_shape
        self.conv_shape = (filters, h - filter_size + 1, w - filter_size + 1)
        self.out_shape = (filters, self.conv_shape[1] // pool, self.conv_shape[2] // pool)
        self.w_shape, self.b_shape = (filters, c, filter_size, filter_size), (filters,)
        self.f, self.f_prime = ACTIVATIONS[activation]

    def init(self, rng):
        n_out = self.filters * self.filter ** 2 / self.pool ** 2
        self.w = rng.normal(0.0, np.sqrt(1.0 / n_out), self.w_shape)
        self.b = rng.normal(0.0, 1.0, self.b_shape)

    def conv(self, a):
        """z (m, F, H', W') of images a (m, C, H, W): one term of the sum per filter offset (i, j),
        each the filters' weights at (i, j) times the inputs shifted by (i, j)."""
        _, hh, ww = self.conv_shape
        z = np.zeros((len(a),) + self.conv_shape)
        for i in range(self.filter):
            for j in range(self.filter):
                z += np.einsum("fc,mcyx->mfyx", self.w[:, :, i, j], a[:, :, i:i + hh, j:j + ww])
        return z

    def blocks(self, z):
        """(m, F, H', W') -> (m, F, H'/P, W'/P, P·P): each pooling block, row by row."""
        m, f, h, w = z.shape
        p = self.pool
        return z.reshape(m, f, h // p, p, w // p, p).transpose(0, 1, 2, 4, 3, 5).reshape(m, f, h // p, w // p, p * p)

    def unpool(self, delta, first_max):
        """The inverse of max-pooling for gradients: each block's gradient goes to its first maximum."""
        m, f, hp, wp = delta.shape
        p = self.pool
        blocks = (np.arange(p * p) == first_max[..., None]) * delta[..., None]
        return blocks.reshape(m, f, hp, wp, p, p).transpose(0, 1, 2, 4, 3, 5).reshape(m, f, hp * p, wp * p)

    def forward(self, a, mask=None):
        """Training and evaluation alike (no dropout here): the output and what backward needs."""
        a = a.reshape((len(a),) + self.in_shape)
        blocks = self.blocks(self.conv(a))
        first_max = np.argmax(blocks, axis=-1)  # the first maximum on ties
        pooled = np.take_along_axis(blocks, first_max[..., None], axis=-1)[..., 0]
        out = self.f(pooled + self.b[None, :, None, None])
        return out, (a, first_max, out)

    def feedforward(self, a):
        return self.forward(a)[0]

    def delta(self, grad_out, cache):
        """δ = ∂C/∂(pooled + b) from the gradient with respect to the output."""
        out = cache[2]
        return grad_out.reshape(out.shape) * self.f_prime(out)

    def backward(self, delta, cache, input_gradient):
        """Summed over the mini-batch: (∂C/∂w, ∂C/∂b, ∂C/∂input or None)."""
        a, first_max, _ = cache
        _, hh, ww = self.conv_shape
        dz = self.unpool(delta, first_max)
        nabla_w = np.zeros(self.w_shape)
        grad_in = np.zeros(a.shape) if input_gradient else None
        for i in range(self.filter):
            for j in range(self.filter):
                nabla_w[:, :, i, j] = np.einsum("mfyx,mcyx->fc", dz, a[:, :, i:i + hh, j:j + ww])
                if input_gradient:
                    grad_in[:, :, i:i + hh, j:j + ww] += np.einsum("fc,mfyx->mcyx", self.w[:, :, i, j], dz)
        return nabla_w, delta.sum(axis=(0, 2, 3)), grad_in

    def fields(self):
        return {"kind": self.kind, "filters": self.filters, "filter": self.filter, "pool": self.pool,
                "activation": self.activation}


class FullyConnectedLayer:
    kind = "fully-connected"

    def __init__(self, n_in, n_out, activation, p_dropout):
        self.n_in, self.n_out, self.activation, self.p_dropout = n_in, n_out, activation, p_dropout
        self.out_shape = (n_out,)
        self.w_shape, self.b_shape = (n_out, n_in), (n_out,)
        self.f, self.f_prime = ACTIVATIONS[activation]

    def init(self, rng):
        self.w = rng.normal(0.0, np.sqrt(1.0 / self.n_out), self.w_shape)
        self.b = rng.normal(0.0, 1.0, self.b_shape)

    def forward(self, a, mask):
        """In training: the output for inputs a (m, n_in) kept where mask is 1 (mask None: all kept)."""
        a = a.reshape(len(a), self.n_in)
        if mask is not None:
            a = a * mask
        out = self.f(a @ self.w.T + self.b)
        return out, (a, mask, out)

    def feedforward(self, a):
        """In evaluation: every input, the weighted sum scaled by the keep probability."""
        a = a.reshape(len(a), self.n_in)
        return self.f((1.0 - self.p_dropout) * (a @ self.w.T) + self.b)

    def delta(self, grad_out, cache):
        return grad_out * self.f_prime(cache[2])

    def backward(self, delta, cache, input_gradient):
        a, mask, _ = cache
        grad_in = None
        if input_gradient:
            grad_in = delta @ self.w
            if mask is not None:
                grad_in = grad_in * mask
        return delta.T @ a, delta.sum(axis=0), grad_in

    def fields(self):
        return {"kind": self.kind, "neurons": self.n_out, "activation": self.activation, "dropout": self.p_dropout}


class SoftmaxLayer(FullyConnectedLayer):
    """A fully connected layer with softmax for its activation; its weights start at zero."""

    kind = "softmax"

    def __init__(self, n_in, n_out, p_dropout):
        super().__init__(n_in, n_out, "sigmoid", p_dropout)
        self.f, self.f_prime = softmax_rows, None

    def init(self, rng):
        self.w = np.zeros(self.w_shape)
        self.b = np.zeros(self.b_shape)

    def fields(self):
        return {"kind": self.kind, "neurons": self.n_out, "dropout": self.p_dropout}


def parse_layers(spec, activation="sigmoid", in_shape=INPUT):
    """The layers (without weights) of a --layers SPEC over inputs of `in_shape` (C, H, W);
    ValueError says what is wrong with a SPEC."""
    layers = []
    shape = in_shape
    pooled = False  # whether the last conv layer already has its pool:P
    for item in spec.split(","):
        kind, *fields = item.strip().split(":")
        numbers = [f for f in fields if "=" not in f]
        options = dict(f.split("=", 1) for f in fields if "=" in f)
        if fields[:len(numbers)] != numbers:
            raise ValueError(f"{item!r}: the numbers come before the key=value options")
        counts = {"conv": 2, "pool": 1, "fc": 1, "softmax": 0}
        allowed = {"conv": {"act"}, "pool": set(), "fc": {"act", "dropout"}, "softmax": {"dropout"}}
        if kind not in counts:
            raise ValueError(f"{item!r}: a layer is conv:F:K, pool:P, fc:N or softmax")
        if len(numbers) != counts[kind] or not all(n.isdigit() and int(n) > 0 for n in numbers):
            raise ValueError(f"{item!r}: {kind} takes {counts[kind]} positive whole number(s)")
        if len(options) != len(fields) - len(numbers) or set(options) - allowed[kind]:
            raise ValueError(f"{item!r}: {kind} takes the options {sorted(allowed[kind]) or 'none'}, each once")
        act = options.get("act", activation)
        if act not in ACTIVATIONS:
            raise ValueError(f"{item!r}: the activation is one of {', '.join(ACTIVATIONS)}")
        p = float(options.get("dropout", 0.0))
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{item!r}: dropout is a probability in [0, 1)")
        if layers and layers[-1].kind == "softmax":
            raise ValueError("softmax must be the last layer")
        n = [int(x) for x in numbers]
        if kind == "conv":
            if len(shape) != 3:
                raise ValueError(f"{item!r}: a conv layer reads images, not the output of an fc layer")
            if n[1] > min(shape[1:]):
                raise ValueError(f"{item!r}: the filter is larger than the {shape[1]}×{shape[2]} map")
            layers.append(ConvPoolLayer(n[0], n[1], 1, act, shape))
            pooled = False
        elif kind == "pool":
            if not layers or layers[-1].kind != "conv-pool" or pooled:
                raise ValueError(f"{item!r}: pool:P must follow a conv layer, once")
            conv = layers[-1]
            _, h, w = conv.conv_shape
            if h % n[0] or w % n[0]:
                raise ValueError(f"{item!r}: {n[0]} does not divide the {h}×{w} map")
            layers[-1] = ConvPoolLayer(conv.filters, conv.filter, n[0], conv.activation, conv.in_shape)
            pooled = True
        elif kind == "fc":
            layers.append(FullyConnectedLayer(int(np.prod(shape)), n[0], act, p))
        else:
            layers.append(SoftmaxLayer(int(np.prod(shape)), CLASSES, p))
        shape = layers[-1].out_shape
    if not layers or layers[-1].kind != "softmax":
        raise ValueError("the last layer must be softmax")
    return layers


class Network:
    def __init__(self, layers, rng):
        """network3.py's initial weights, drawn from `rng`, which then draws the dropout masks."""
        self.layers = layers
        self.rng = rng
        for layer in layers:
            layer.init(rng)

    def draw_masks(self, m):
        """A 0/1 mask over each layer's inputs for m examples (None where the layer has no dropout)."""
        return [(self.rng.random((m, layer.n_in)) < 1.0 - layer.p_dropout).astype(np.float64)
                if layer.p_dropout > 0 else None for layer in self.layers]

    def feedforward(self, x):
        """Evaluation: the output layer's activations for images x (m, 784)."""
        a = x
        for layer in self.layers:
            a = layer.feedforward(a)
        return a

    def train_epoch(self, x, labels, order, mini_batch_size, eta, lmbda):
        n = len(labels)
        num_batches = n // mini_batch_size
        if num_batches == 0:
            raise ValueError(f"a mini-batch of {mini_batch_size} is larger than the {n} training images")
        for k in range(0, n, mini_batch_size):
            batch = order[k:k + mini_batch_size]
            self.update_mini_batch(x[batch], labels[batch], eta, lmbda, num_batches)

    def update_mini_batch(self, x, labels, eta, lmbda, num_batches, masks=None):
        """One SGD step on the images x (m, 784) with their labels."""
        m = len(labels)
        if masks is None:
            masks = self.draw_masks(m)
        nabla = self.backprop(x, labels, masks)
        for layer, (nabla_w, nabla_b) in zip(self.layers, nabla):
            layer.w = layer.w - eta * (nabla_w / m + lmbda * layer.w / num_batches)
            layer.b = layer.b - eta * (nabla_b / m)

    def backprop(self, x, labels, masks):
        """(∂C/∂w, ∂C/∂b) of every layer, summed over the mini-batch, for the cost without its
        L2 term."""
        a, caches = x, []
        for layer, mask in zip(self.layers, masks):
            a, cache = layer.forward(a, mask)
            caches.append(cache)
        delta = a.copy()
        delta[np.arange(len(labels)), labels] -= 1.0  # BP1 for softmax and log-likelihood: a − y
        nabla = [None] * len(self.layers)
        for l in range(len(self.layers) - 1, -1, -1):
            nabla_w, nabla_b, grad_in = self.layers[l].backward(delta, caches[l], input_gradient=l > 0)
            nabla[l] = (nabla_w, nabla_b)
            if l > 0:
                delta = self.layers[l - 1].delta(grad_in, caches[l - 1])
        return nabla

    def cost(self, x, labels, masks, lmbda, num_batches):
        """The mini-batch's cost in training (dropout by `masks`), the L2 term included."""
        a = x
        for layer, mask in zip(self.layers, masks):
            a = layer.forward(a, mask)[0]
        l2 = sum(np.sum(layer.w ** 2) for layer in self.layers)
        return -np.mean(np.log(a[np.arange(len(labels)), labels])) + 0.5 * lmbda * l2 / num_batches

    def evaluate(self, x, labels, chunk=500):
        """Correct classifications (the first largest output on ties), `chunk` images at a time."""
        correct = 0
        for s in range(0, len(labels), chunk):
            correct += int(np.sum(np.argmax(self.feedforward(x[s:s + chunk]), axis=1) == labels[s:s + chunk]))
        return correct


def save_model(net, path):
    """nndl's model file for a layered network (weights as nested lists)."""
    layers = [{**layer.fields(), "weights": layer.w.tolist(), "biases": layer.b.tolist()} for layer in net.layers]
    with open(path, "w") as f:
        json.dump({"input": list(INPUT), "cost": "log-likelihood", "layers": layers}, f)


def load_model(net, path):
    """Takes the weights of nndl's model file at `path`, which must describe the same layers."""
    with open(path) as f:
        model = json.load(f)
    if "layers" not in model:
        raise ValueError(f"{path}: not a layered network (no \"layers\")")
    if list(model.get("input", INPUT)) != list(INPUT):
        raise ValueError(f"{path}: input {model['input']}, not {list(INPUT)}")
    if len(model["layers"]) != len(net.layers):
        raise ValueError(f"{path}: {len(model['layers'])} layers, --layers gives {len(net.layers)}")
    for k, (saved, layer) in enumerate(zip(model["layers"], net.layers)):
        for key, value in layer.fields().items():
            if key in saved and saved[key] != value:
                raise ValueError(f"{path}: layer {k} has {key} {saved[key]!r}, --layers gives {value!r}")
        w, b = np.array(saved["weights"], dtype=np.float64), np.array(saved["biases"], dtype=np.float64)
        if w.shape != layer.w_shape or b.shape != layer.b_shape:
            raise ValueError(f"{path}: layer {k} has weights {w.shape} and biases {b.shape}, "
                             f"--layers gives {layer.w_shape} and {layer.b_shape}")
        layer.w, layer.b = w, b


def self_test():
    """Checks against definitions and finite differences; returns the exit status."""
    rng = np.random.default_rng(2024)
    failures = []

    def check(name, error, tolerance):
        ok = error <= tolerance
        print(f"{name}: {error:.1e} (tolerance {tolerance:g}) {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(name)

    # The convolution is the cross-correlation of the definition, over all input maps.
    layer = ConvPoolLayer(3, 4, 1, "sigmoid", (2, 9, 8))
    layer.init(rng)
    a = rng.standard_normal((2, 2, 9, 8))
    z = layer.conv(a)
    direct = np.zeros_like(z)
    for m, f, y, x in np.ndindex(*direct.shape):
        direct[m, f, y, x] = np.sum(layer.w[f] * a[m, :, y:y + 4, x:x + 4])
    check("convolution against its definition (max abs. difference)", np.max(np.abs(z - direct)), 1e-13)

    # Max-pooling and its gradient: the first maximum of a block, row by row, takes it all.
    # A 1×1 filter of weight 1 and ReLU make the layer's output the pooled map itself.
    layer = ConvPoolLayer(1, 1, 2, "relu", (1, 4, 4))
    layer.w, layer.b = np.ones(layer.w_shape), np.zeros(layer.b_shape)
    z = np.array([[3., 1., 2., 2.], [3., 0., 2., 2.], [0., 5., 1., 1.], [5., 5., 1., 7.]])[None, None]
    out, cache = layer.forward(z)
    grad = layer.backward(np.array([[10., 20.], [30., 40.]])[None, None], cache, input_gradient=True)[2]
    want_out = np.array([[3., 2.], [5., 7.]])
    want_grad = np.array([[10., 0., 20., 0.], [0., 0., 0., 0.], [0., 30., 0., 0.], [0., 0., 0., 40.]])
    check("max-pooling with ties (wrong entries)",
          float(np.sum(out[0, 0] != want_out) + np.sum(grad[0, 0] != want_grad)), 0)

    # Backpropagation and the update against central differences of the cost, L2 term included:
    # (w - w after one step) / η must be the cost's gradient.
    x = rng.random((4, 784))
    x[x < 0.4] = 0.0  # MNIST-like: much of each image is blank
    labels = rng.integers(0, CLASSES, 4)
    lmbda, num_batches, eta, h = 0.5, 3, 1e-3, 1e-5
    nets = [("conv:2:3,pool:2,fc:5,softmax", "sigmoid"),
            ("conv:2:3,pool:2,fc:5,softmax", "relu"),
            ("conv:2:3,pool:2,fc:5,softmax", "tanh"),
            ("conv:2:5,pool:4,conv:3:3:act=tanh,fc:5:dropout=0.3,softmax:dropout=0.2", "relu"),
            ("fc:6:act=tanh,fc:5:dropout=0.5,softmax", "sigmoid")]
    for spec, activation in nets:
        net = Network(parse_layers(spec, activation), rng)
        net.layers[-1].w = rng.normal(0.0, 0.3, net.layers[-1].w_shape)  # not the zeros of the start
        net.layers[-1].b = rng.normal(0.0, 0.3, net.layers[-1].b_shape)
        masks = net.draw_masks(len(labels))
        stepped = copy.deepcopy(net)
        stepped.update_mini_batch(x, labels, eta, lmbda, num_batches, masks)
        worst, checked = 0.0, 0
        for layer, after in zip(net.layers, stepped.layers):
            for name in ("w", "b"):
                p = getattr(layer, name)
                step = (p - getattr(after, name)) / eta
                # Every entry of a small array, 40 of a large one.
                flat = range(p.size) if p.size <= 60 else rng.choice(p.size, 40, replace=False)
                numeric, analytic = [], []
                for k in flat:
                    idx = np.unravel_index(k, p.shape)
                    saved = p[idx]
                    p[idx] = saved + h
                    plus = net.cost(x, labels, masks, lmbda, num_batches)
                    p[idx] = saved - h
                    minus = net.cost(x, labels, masks, lmbda, num_batches)
                    p[idx] = saved
                    numeric.append((plus - minus) / (2 * h))
                    analytic.append(step[idx])
                numeric, analytic = np.array(numeric), np.array(analytic)
                worst = max(worst, np.max(np.abs(numeric - analytic)) / np.max(np.abs(numeric)))
                checked += len(numeric)
        check(f"gradient of {spec} ({activation}, λ {lmbda}) against finite differences, "
              f"{checked} parameters (max relative difference)", worst, 1e-6)

    # The model file: written and read back unchanged; a file of other layers is refused.
    net = Network(parse_layers("conv:2:3,pool:2,fc:5,softmax", "relu"), rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        save_model(net, path)
        back = Network(parse_layers("conv:2:3,pool:2,fc:5,softmax", "relu"), rng)
        load_model(back, path)
        same = all(np.array_equal(p.w, q.w) and np.array_equal(p.b, q.b) for p, q in zip(net.layers, back.layers))
        refused = 0
        for other in ("conv:2:3,fc:5,softmax", "conv:2:3,pool:2,fc:5:act=tanh,softmax", "conv:2:3,pool:2,softmax"):
            try:
                load_model(Network(parse_layers(other, "relu"), rng), path)
            except ValueError:
                refused += 1
        check("model file round trip and refusals (wrong)", float(not same) + 3 - refused, 0)

    # SPECs that must be refused.
    bad = ["fc:10", "softmax,fc:10,softmax", "pool:2,fc:10,softmax", "conv:2:5,pool:2,pool:2,softmax",
           "conv:2:5,pool:5,softmax", "fc:10,conv:2:5,softmax", "conv:2:29,softmax", "fc:0,softmax",
           "fc:10:dropout=1,softmax", "conv:2:5:dropout=0.5,softmax", "fc:10:act=step,softmax", "fc:10:bogus,softmax"]
    accepted = []
    for spec in bad:
        try:
            parse_layers(spec)
            accepted.append(spec)
        except ValueError:
            pass
    check(f"bad --layers refused ({len(bad)} tried; accepted: {accepted or 'none'})", float(len(accepted)), 0)

    print("self-test: " + ("all passed" if not failures else f"{len(failures)} FAILED"))
    return 1 if failures else 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", help="the network, e.g. conv:20:5,pool:2,fc:100,softmax")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default="sigmoid",
                   help="the activation of layers without act=")
    common.add_training_arguments(p, eta=0.1, lmbda=0.0)
    p.add_argument("--self-test", action="store_true", help="check the gradients and the pieces, then exit")
    args = p.parse_args()
    if not args.self_test and not args.layers:
        p.error("--layers is required")
    return args


def main():
    args = parse_args()
    if args.self_test:
        sys.exit(self_test())
    try:
        layers = parse_layers(args.layers, args.activation)
    except ValueError as e:
        sys.exit(f"--layers {args.layers}: {e}")
    limiter = common.limit_threads(args)
    print(f"network3_layers (NumPy): layers {args.layers}, activation {args.activation}, eta {args.eta:g}, "
          f"lambda {args.lmbda:g}, {args.epochs} epochs, mini-batch {args.mini_batch}, seed {args.seed}")
    print(f"Backend: {common.blas_description()}")
    training, test = common.load_training_data(args)
    rng = np.random.default_rng(args.seed)
    net = Network(layers, rng)
    if args.init:
        load_model(net, args.init)
    common.train(net, args, training, test, rng)
    if args.save:
        save_model(net, args.save)
    del limiter


if __name__ == "__main__":
    main()
