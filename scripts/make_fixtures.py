"""Writes the small pickles under tests/fixtures/ that the loader tests read.

Each is a gzipped pickle of an MNIST-shaped tuple ((train_x, train_y), (valid_x, valid_y),
(test_x, test_y)) with 6/3/3 images of 784 pixels, written by Python 3 and NumPy in the ways a
user's own file might be: every pickle protocol from 2 to 5, float32 or float64 pixels,
int64/int32/uint8 labels, C or Fortran order, big-endian, and NumPy 1's `numpy.core` module
names. A few are broken on purpose (content errors the loader must name).

    python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements.txt
    .venv/bin/python scripts/make_fixtures.py

The Python-2 format of the real mnist.pkl.gz is written by the Rust tests themselves
(tests/common/mod.rs), since Python 2 is not at hand.
"""

import gzip
import os
import pickle

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def images(n, dtype=np.float32, order="C", start=0):
    """n images whose pixel k of image i is ((i + start) * 7 + k) % 256 / 256 on a sparse grid."""
    x = np.zeros((n, 784), dtype=dtype)
    for i in range(n):
        x[i, ::97] = (((i + start) * 7 + np.arange(0, 784, 97)) % 256) / 256.0
    return np.asarray(x, order=order) if order == "C" else np.asfortranarray(x)


def labels(n, dtype=np.int64, start=0):
    return (np.arange(start, start + n) % 10).astype(dtype)


def mnist(xdtype=np.float32, ydtype=np.int64, order="C"):
    return tuple(
        (images(n, xdtype, order, start), labels(n, ydtype, start))
        for n, start in ((6, 0), (3, 6), (3, 9))
    )


def write(name, obj, protocol, patch=None):
    data = pickle.dumps(obj, protocol=protocol)
    if patch:
        data = data.replace(*patch)
    # mtime=0 keeps the files byte-for-byte reproducible.
    with open(os.path.join(OUT, name), "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as g:
        g.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    write("py3_p2.pkl.gz", mnist(), 2)
    write("py3_p3_f64_i32.pkl.gz", mnist(np.float64, np.int32), 3)
    write("py3_p4_fortran_u8.pkl.gz", mnist(np.float32, np.uint8, order="F"), 4)
    write("py3_p5.pkl.gz", mnist(), 5)
    write("py3_p5_fortran_f64.pkl.gz", mnist(np.float64, np.int64, order="F"), 5)
    write("py3_p4_bigendian.pkl.gz", mnist(np.dtype(">f4"), np.dtype(">i8")), 4)
    # NumPy 1 wrote `numpy.core`; protocol 2's GLOBAL lines carry no length, so a plain
    # replacement gives exactly what NumPy 1 writes.
    write("py3_p2_numpy1.pkl.gz", mnist(), 2, patch=(b"numpy._core", b"numpy.core"))

    bad = list(mnist())
    bad[0] = (bad[0][0], np.array([0, 1, 2, 3, 4, 10]))
    write("bad_label.pkl.gz", tuple(bad), 2)
    bad = list(mnist())
    bad[1] = (bad[1][0][:, :783].copy(), bad[1][1])
    write("bad_columns.pkl.gz", tuple(bad), 4)
    bad = list(mnist())
    bad[2] = (bad[2][0], bad[2][1][:2].copy())
    write("bad_label_count.pkl.gz", tuple(bad), 4)
    write("bad_two_sets.pkl.gz", mnist()[:2], 2)
    bad = list(mnist())
    bad[0] = (bad[0][0].astype(object), bad[0][1])
    write("bad_object_array.pkl.gz", tuple(bad), 2)
    write("bad_global.pkl.gz", (os.system, "echo hello"), 2)


if __name__ == "__main__":
    main()
