//! `nndl expand` (chapter 6's `expand_mnist.py`): each one-pixel move checked pixel by pixel
//! against its definition, every original and move present once, the written pickle read back
//! bit for bit by nndl (and by Python with NumPy, when there is one, against the book's own
//! loop), the seed fixing the file, and bad output paths refused before any work.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ndarray::Array2;
use nndl::data::expand::{expand, expanded_order, shift_image, Shift};
use nndl::data::pickle_writer::write_mnist;
use nndl::data::{idx, load_mnist, Dataset, Mnist};
use nndl::run::load_data;

const SIDE: usize = 28;

/// Pixel (r, c) of crafted image `i`: a whole 256th, never 0, that differs from its
/// neighbours', so that every moved pixel and every emptied edge shows.
fn crafted_pixel(i: usize, r: usize, c: usize) -> f32 {
    ((i * 37 + r * 29 + c * 3) % 255 + 1) as f32 / 256.0
}

/// `n` crafted images, labels `first`, `first + 1`, … (mod 10), as a pickle's raw set.
fn crafted(n: usize, first: usize) -> RawSet {
    let mut pixels = Vec::with_capacity(n * 784);
    for i in 0..n {
        for r in 0..SIDE {
            for c in 0..SIDE {
                pixels.push(crafted_pixel(i + first, r, c));
            }
        }
    }
    let labels = (first..first + n).map(|i| (i % 10) as i64).collect();
    RawSet { pixels, labels }
}

/// A gzipped pickle, in mnist.pkl.gz's layout, of 5 training, 2 validation and 3 test images.
fn crafted_pickle(dir: &Path) -> PathBuf {
    let sets = [crafted(5, 0), crafted(2, 5), crafted(3, 7)];
    write_file(dir, "five.pkl.gz", &gzip(&py2_mnist(&sets)))
}

/// Pixel (r, c) of move `j` of `image` by its definition: 0 is the image itself, 1–4 the book's
/// `np.roll` by ±1 down the rows or along the columns with the wrapped row or column zeroed.
fn moved_pixel<T: Copy + Default>(image: &[T], j: usize, r: usize, c: usize) -> T {
    let at = |r: usize, c: usize| image[r * SIDE + c];
    let zero = T::default();
    match j {
        0 => at(r, c),
        1 => {
            if r == 0 {
                zero
            } else {
                at(r - 1, c)
            }
        } // down
        2 => {
            if r == SIDE - 1 {
                zero
            } else {
                at(r + 1, c)
            }
        } // up
        3 => {
            if c == 0 {
                zero
            } else {
                at(r, c - 1)
            }
        } // right
        4 => {
            if c == SIDE - 1 {
                zero
            } else {
                at(r, c + 1)
            }
        } // left
        _ => unreachable!(),
    }
}

/// Move `j` of `image`, whole.
fn moved(image: &[f64], j: usize) -> Vec<f64> {
    (0..SIDE * SIDE)
        .map(|k| moved_pixel(image, j, k / SIDE, k % SIDE))
        .collect()
}

/// Checks that `expanded`'s example `p` is move `order[p] % 5` of `original`'s image
/// `order[p] / 5`, with its label.
fn check_expansion(original: &Dataset, expanded: &Dataset, order: &[usize]) {
    assert_eq!(expanded.len(), 5 * original.len());
    assert_eq!(order.len(), expanded.len());
    let (images, expanded_images) = (original.images(), expanded.images());
    for (p, &k) in order.iter().enumerate() {
        let image = images.row(k / 5).to_vec();
        let row = expanded_images.row(p);
        for (q, (&got, &want)) in row.iter().zip(&moved(&image, k % 5)).enumerate() {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "example {p} (move {k}), pixel {q}"
            );
        }
        assert_eq!(
            expanded.labels()[p],
            original.labels()[k / 5],
            "example {p}"
        );
    }
}

fn same_set(a: &Dataset, b: &Dataset, name: &str) {
    assert_eq!(a.images(), b.images(), "{name} images");
    assert_eq!(a.labels(), b.labels(), "{name} labels");
}

fn run_ok(args: &[&str]) -> String {
    let o = nndl(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn each_move_of_a_crafted_image_is_exact() {
    let image: Vec<f32> = (0..784).map(|k| crafted_pixel(3, k / 28, k % 28)).collect();
    assert!(image.iter().all(|&p| p > 0.0));
    for (j, shift) in Shift::ALL.into_iter().enumerate() {
        let mut out = vec![-1.0f32; 784];
        shift_image(&image, SIDE, shift, &mut out);
        for r in 0..SIDE {
            for c in 0..SIDE {
                let want = moved_pixel(&image, j + 1, r, c);
                assert_eq!(out[r * SIDE + c], want, "{} at ({r}, {c})", shift.name());
            }
        }
        // Exactly one row or column emptied, and it is the one np.roll wraps round.
        let zeros: Vec<usize> = (0..784).filter(|&k| out[k] == 0.0).collect();
        let edge: Vec<usize> = match shift {
            Shift::Down => (0..28).collect(),
            Shift::Up => (756..784).collect(),
            Shift::Right => (0..28).map(|r| r * 28).collect(),
            Shift::Left => (0..28).map(|r| r * 28 + 27).collect(),
        };
        assert_eq!(zeros, edge, "{}", shift.name());
    }
    assert_eq!(
        Shift::ALL.map(Shift::name),
        ["down", "up", "right", "left"],
        "the book's order"
    );

    // Through a whole set too, unshuffled: the image, then its four moves.
    let set = Dataset::new(Array2::from_shape_vec((1, 784), image).unwrap(), vec![4]);
    let out = expand(&set, None).unwrap();
    check_expansion(&set.cast(), &out.cast(), &[0, 1, 2, 3, 4]);
}

#[test]
fn five_images_make_twenty_five_with_each_original_and_move_once() {
    let dir = temp_dir("expand_five");
    let input = crafted_pickle(&dir);
    let output = dir.join("out.pkl.gz");
    let printed = run_ok(&[
        "expand",
        "--data",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(
        printed.contains("Expanded 5 training images to 25"),
        "{printed}"
    );
    assert!(
        printed.contains("25 training, 2 validation, 3 test images"),
        "{printed}"
    );
    let original = load_mnist(&input).unwrap();
    let expanded = load_mnist(&output).unwrap();
    assert_eq!(expanded.training.len(), 25);
    // Every original and each of its moves appears exactly once, with its label.
    for i in 0..5 {
        let image = original.training.images().row(i).to_vec();
        for j in 0..5 {
            let want = moved(&image, j);
            let at: Vec<usize> = (0..25)
                .filter(|&p| expanded.training.images().row(p).to_vec() == want)
                .collect();
            assert_eq!(at.len(), 1, "image {i}, move {j}: found at {at:?}");
            assert_eq!(
                expanded.training.labels()[at[0]],
                original.training.labels()[i]
            );
        }
    }
    // Shuffled by seed 0, the default, and the other sets untouched.
    check_expansion(
        &original.training,
        &expanded.training,
        &expanded_order(5, Some(0)),
    );
    same_set(&original.validation, &expanded.validation, "validation");
    same_set(&original.test, &expanded.test, "test");
}

#[test]
fn without_a_shuffle_the_order_is_the_books() {
    let dir = temp_dir("expand_no_shuffle");
    let input = crafted_pickle(&dir);
    let output = dir.join("out.pkl.gz");
    let printed = run_ok(&[
        "expand",
        "--no-shuffle",
        "--data",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(printed.contains("not shuffled"), "{printed}");
    let original = load_mnist(&input).unwrap();
    let expanded = load_mnist(&output).unwrap();
    check_expansion(
        &original.training,
        &expanded.training,
        &(0..25).collect::<Vec<_>>(),
    );
}

#[test]
fn the_written_pickle_loads_back_bit_for_bit() {
    // Pixels that are no whole 256ths (so no byte copy), among them a subnormal and the
    // largest f32 below 1: each must come back as the same f32.
    let awkward = [0.1f32, 1e-40, 0.999_999_94, 1.0 / 3.0, 0.0, 0.5, 2.5e-8];
    let images = Array2::from_shape_fn((4, 784), |(i, k)| {
        awkward[(i + k) % awkward.len()] * if k % 5 == 0 { 0.75 } else { 1.0 }
    });
    let training = Dataset::new(images, vec![9, 0, 4, 7]);
    assert!(!training.has_byte_copy());
    let whole = |n: usize, first: usize| {
        let set = crafted(n, first);
        let images = Array2::from_shape_vec((n, 784), set.pixels).unwrap();
        Dataset::new(images, set.labels.iter().map(|&d| d as u8).collect())
    };
    let mnist: Mnist<f32> = Mnist {
        training: expand(&training, Some(11)).unwrap(),
        validation: whole(3, 1),
        test: whole(2, 4),
    };
    let dir = temp_dir("expand_round_trip");
    let path = dir.join("round.pkl.gz");
    write_mnist(&path, &mnist).unwrap();
    assert!(!dir.join("round.pkl.gz.tmp").exists());
    let back = load_mnist(&path).unwrap();
    for (name, wrote, read) in [
        ("training", &mnist.training, &back.training),
        ("validation", &mnist.validation, &back.validation),
        ("test", &mnist.test, &back.test),
    ] {
        assert_eq!(read.images().dim(), wrote.images().dim(), "{name}");
        for (&r, &w) in read.images().iter().zip(wrote.images()) {
            assert_eq!(r.to_bits(), f64::from(w).to_bits(), "{name}: {w:e}");
            assert_eq!((r as f32).to_bits(), w.to_bits(), "{name}: {w:e}");
        }
        assert_eq!(read.labels(), wrote.labels(), "{name}");
        assert_eq!(read.has_byte_copy(), wrote.has_byte_copy(), "{name}");
    }
    check_expansion(
        &training.cast(),
        &back.training,
        &expanded_order(4, Some(11)),
    );
}

#[test]
fn the_seed_fixes_the_file() {
    let dir = temp_dir("expand_seed");
    let input = crafted_pickle(&dir);
    let write = |seed: &str, name: &str| {
        let out = dir.join(name);
        run_ok(&[
            "expand",
            "--data",
            input.to_str().unwrap(),
            "--seed",
            seed,
            "-o",
            out.to_str().unwrap(),
        ]);
        out
    };
    let (a, b, c) = (
        write("5", "a.pkl.gz"),
        write("5", "b.pkl.gz"),
        write("6", "c.pkl.gz"),
    );
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(bytes(&a), bytes(&b), "the same seed writes the same file");
    assert_ne!(bytes(&a), bytes(&c), "another seed, another order");
    let original = load_mnist(&input).unwrap();
    let (a, c) = (load_mnist(&a).unwrap(), load_mnist(&c).unwrap());
    assert_ne!(a.training.labels(), c.training.labels());
    check_expansion(&original.training, &a.training, &expanded_order(5, Some(5)));
    check_expansion(&original.training, &c.training, &expanded_order(5, Some(6)));
    // Writing again over an existing output replaces it.
    let again = dir.join("a.pkl.gz");
    write("6", "a.pkl.gz");
    assert_eq!(bytes(&again), bytes(&dir.join("c.pkl.gz")));
}

#[test]
fn bad_output_paths_are_refused_before_any_work() {
    let dir = temp_dir("expand_bad_output");
    let input = crafted_pickle(&dir);
    let before = std::fs::read(&input).unwrap();
    let refused = |args: &[&str], says: &str| {
        let o = nndl(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    // The data does not exist: the output is checked first (a data error would exit 1).
    let missing = dir.join("missing.pkl.gz");
    let missing = missing.to_str().unwrap();
    refused(
        &["expand", "--data", missing, "-o", "/nonexistent/x.pkl.gz"],
        "cannot write /nonexistent/x.pkl.gz: the directory /nonexistent does not exist",
    );
    refused(
        &["expand", "--data", missing, "-o", dir.to_str().unwrap()],
        "it is a directory",
    );
    // The input itself, named another way.
    let same = dir.join(".").join("five.pkl.gz");
    refused(
        &[
            "expand",
            "--data",
            input.to_str().unwrap(),
            "-o",
            same.to_str().unwrap(),
        ],
        "it is the input (--data)",
    );
    assert_eq!(
        std::fs::read(&input).unwrap(),
        before,
        "the input is untouched"
    );
    refused(
        &["expand", "--no-shuffle", "--seed", "3"],
        "cannot be used with",
    );
    let o = nndl(&[
        "expand",
        "--data",
        missing,
        "-o",
        dir.join("o.pkl.gz").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot open"), "{}", stderr(&o));
    assert!(!dir.join("o.pkl.gz").exists());
}

/// IDX fixtures as tests/idx.rs makes them: a header of unsigned bytes with `dims`.
fn idx_file(dims: &[u32], body: impl IntoIterator<Item = u8>) -> Vec<u8> {
    let mut f = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        f.extend(d.to_be_bytes());
    }
    f.extend(body);
    f
}

#[test]
fn an_idx_directory_expands() {
    let dir = temp_dir("expand_idx");
    let images = |n: usize, first: usize| {
        let pixels = (0..n * 784)
            .map(move |k| (crafted_pixel(first + k / 784, k % 784 / 28, k % 28) * 256.0) as u8);
        idx_file(&[n as u32, 28, 28], pixels)
    };
    let labels = |n: usize| idx_file(&[n as u32], (0..n).map(|i| (i % 10) as u8));
    write_file(&dir, idx::TRAIN_IMAGES, &images(12, 0));
    write_file(&dir, idx::TRAIN_LABELS, &labels(12));
    write_file(&dir, idx::TEST_IMAGES, &images(3, 20));
    write_file(&dir, idx::TEST_LABELS, &labels(3));
    let output = dir.join("expanded.pkl.gz");
    let printed = run_ok(&[
        "expand",
        "--data",
        dir.to_str().unwrap(),
        "--validation-size",
        "2",
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(
        printed.contains("50 training, 2 validation, 3 test images"),
        "{printed}"
    );
    let original = load_data(&dir, Some(2)).unwrap();
    let expanded = load_mnist(&output).unwrap();
    check_expansion(
        &original.training,
        &expanded.training,
        &expanded_order(10, Some(0)),
    );
    same_set(&original.validation, &expanded.validation, "validation");
    same_set(&original.test, &expanded.test, "test");
    assert!(expanded.training.has_byte_copy());
}

/// The book's loop of expand_mnist.py over the input's training set, then the file checked
/// against it: read by Python's plain `pickle.load` (Python 3, NumPy's own unpickling, with
/// deprecation warnings as errors), float32 and int64 arrays of the right shapes, the unshuffled
/// file equal to the book's expansion, the shuffled one to its rows in nndl's order, the
/// validation and test sets equal to the input's.
const PYTHON_CHECK: &str = r#"
import gzip, json, pickle, sys, warnings
import numpy as np
warnings.simplefilter("error")
source, plain, shuffled, order = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
with gzip.open(source, "rb") as f:
    training, validation, test = pickle.load(f, encoding="latin1")
xs, ys = [], []
for x, y in zip(training[0], training[1]):
    xs.append(x)
    ys.append(y)
    image = np.reshape(x, (-1, 28))
    for d, axis, index_position, index in [
            (1, 0, "first", 0), (-1, 0, "first", 27), (1, 1, "last", 0), (-1, 1, "last", 27)]:
        new_img = np.roll(image, d, axis)
        if index_position == "first":
            new_img[index, :] = np.zeros(28)
        else:
            new_img[:, index] = np.zeros(28)
        xs.append(np.reshape(new_img, 784))
        ys.append(y)
book_x, book_y = np.array(xs), np.array(ys)
for path, rows in [(plain, np.arange(len(book_y))), (shuffled, np.array(order))]:
    with gzip.open(path, "rb") as f:
        sets = pickle.load(f)
    assert type(sets) is tuple and len(sets) == 3, path
    for x, y in sets:
        assert type(x) is np.ndarray and x.dtype == np.float32 and x.shape[1:] == (784,), x.dtype
        assert type(y) is np.ndarray and y.dtype == np.int64 and y.shape == (len(x),), y.dtype
    assert np.array_equal(sets[0][0], book_x[rows]), path + ": training images"
    assert np.array_equal(sets[0][1], book_y[rows]), path + ": training labels"
    for got, want in [(sets[1], validation), (sets[2], test)]:
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), path
print("ok", len(book_y), "training images as the book makes them")
"#;

#[test]
fn python_reads_the_file_as_the_books_loop_would_make_it() {
    let Some(python) = python_with_numpy() else {
        println!(
            "note: skipped the check with Python: neither .venv/bin/python nor python3 imports \
             NumPy (python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements.txt)"
        );
        return;
    };
    let dir = temp_dir("expand_python");
    let input = crafted_pickle(&dir);
    let (plain, shuffled) = (dir.join("plain.pkl.gz"), dir.join("shuffled.pkl.gz"));
    let input_arg = input.to_str().unwrap();
    run_ok(&[
        "expand",
        "--no-shuffle",
        "--data",
        input_arg,
        "-o",
        plain.to_str().unwrap(),
    ]);
    run_ok(&[
        "expand",
        "--seed",
        "9",
        "--data",
        input_arg,
        "-o",
        shuffled.to_str().unwrap(),
    ]);
    let order = serde_json::to_string(&expanded_order(5, Some(9))).unwrap();
    let o = std::process::Command::new(&python)
        .args(["-c", PYTHON_CHECK, input_arg])
        .arg(&plain)
        .arg(&shuffled)
        .arg(&order)
        .output()
        .expect("run python");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("ok 25"),
        "{}: {out}{}",
        python.display(),
        stderr(&o)
    );
}

#[test]
fn the_real_mnist_expands_to_250000_images() {
    let dir = temp_dir("expand_real");
    let output = dir.join("mnist_expanded.pkl.gz");
    let printed = run_ok(&["expand", "-o", output.to_str().unwrap()]);
    assert!(
        printed.contains("250000 training, 10000 validation, 10000 test images"),
        "{printed}"
    );
    let original = load_mnist(mnist_path()).unwrap();
    let expanded = load_mnist(&output).unwrap();
    check_expansion(
        &original.training,
        &expanded.training,
        &expanded_order(50_000, Some(0)),
    );
    assert!(expanded.training.has_byte_copy());
    same_set(&original.validation, &expanded.validation, "validation");
    same_set(&original.test, &expanded.test, "test");
    let _ = std::fs::remove_dir_all(&dir);
}
