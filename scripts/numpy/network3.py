"""network3: network2's matrix-based network with network2.py's (ch. 3) improvements —
N(0, 1/n_in) weights, the cross-entropy cost and L2 regularisation (λ = 5.0, η = 0.5).
The NumPy reference for `nndl train --net network3`.

    python scripts/numpy/network3.py --epochs 30
"""

import common
import network2


def make_network(sizes, rng, args):
    cost = network2.COSTS[args.cost or "cross-entropy"]
    return network2.Network(sizes, rng, cost=cost, scaled_weights=True, activation=args.activation)


if __name__ == "__main__":
    common.main("network3", make_network, "CrossEntropyCost", eta=0.5, lmbda=5.0, configurable=True)
