//! The MNIST loader: the real file, pickles written by Python 2 and 3 in every supported form,
//! and every kind of broken input, which must give one clear error naming the file — never a
//! panic.

mod common;

use common::*;
use nndl::data::mnist::{load_mnist_as, parse_mnist, parse_mnist_owned};
use nndl::data::{load_mnist, DataError, Mnist};
use std::path::Path;

fn expect_small(m: &Mnist) {
    let sets = small_sets();
    for (set, raw) in [&m.training, &m.validation, &m.test].into_iter().zip(&sets) {
        assert_eq!(set.images().dim(), (raw.labels.len(), 784));
        assert!(set.images().is_standard_layout());
        let want: Vec<f64> = raw.pixels.iter().map(|&p| f64::from(p)).collect();
        assert_eq!(set.images().as_slice().unwrap(), &want[..]);
        let labels: Vec<u8> = raw.labels.iter().map(|&l| l as u8).collect();
        assert_eq!(set.labels(), labels);
        expect_rows_copied_exactly(set, 0..set.len());
    }
}

/// The rows training gathers (from the byte copy the loader keeps) are the images' rows.
fn expect_rows_copied_exactly(set: &nndl::data::Dataset, rows: impl Iterator<Item = usize>) {
    let mut out = ndarray::Array1::zeros(784);
    for k in rows {
        set.copy_row(k, out.view_mut());
        assert_eq!(out, set.images().row(k), "row {k}");
    }
}

fn load_err(path: &Path) -> String {
    match load_mnist(path) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => chain(&e),
    }
}

#[test]
fn real_mnist_file_has_the_books_three_sets() {
    let m = load_mnist(mnist_path()).expect("data/mnist.pkl.gz loads");
    assert_eq!(m.training.images().dim(), (50_000, 784));
    assert_eq!(m.validation.images().dim(), (10_000, 784));
    assert_eq!(m.test.images().dim(), (10_000, 784));
    expect_rows_copied_exactly(&m.training, (0..50_000).step_by(997));
    // Test-set label counts of the original MNIST t10k file.
    let mut counts = [0usize; 10];
    m.test
        .labels()
        .iter()
        .for_each(|&l| counts[usize::from(l)] += 1);
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let (lo, hi) = m
        .training
        .images()
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert_eq!((lo, hi), (0.0, 255.0 / 256.0));
    // The first training image is a 5, as in the book's figures.
    assert_eq!(m.training.labels()[0], 5);
}

#[test]
fn python2_protocol2_layout_loads() {
    let dir = temp_dir("py2");
    let path = write_file(&dir, "small.pkl.gz", &gzip(&py2_mnist(&small_sets())));
    expect_small(&load_mnist(&path).unwrap());
}

#[test]
fn a_pickle_of_several_gzip_members_loads() {
    // Split inside the training images' bytes: before, the first member alone was inflated
    // and the pickle refused as truncated.
    let dir = temp_dir("py2_members");
    let raw = py2_mnist(&small_sets());
    let path = write_file(&dir, "two.pkl.gz", &gzip_two_members(&raw, raw.len() / 3));
    expect_small(&load_mnist(&path).unwrap());
    assert_eq!(nndl::data::mnist::training_count(&path), Some(6));
}

/// Every pixel of `b` is the pixel of `a` rounded to `f32`, bit for bit, and the labels and
/// byte copies agree.
fn rounded_alike(a: &Mnist, b: &Mnist<f32>) {
    for (x, y) in [
        (&a.training, &b.training),
        (&a.validation, &b.validation),
        (&a.test, &b.test),
    ] {
        assert_eq!(x.images().dim(), y.images().dim());
        let differ = x
            .images()
            .iter()
            .zip(y.images())
            .filter(|(p, q)| (**p as f32).to_bits() != q.to_bits())
            .count();
        assert_eq!(differ, 0, "pixels differ from the f64 ones rounded");
        assert_eq!(x.labels(), y.labels());
        assert_eq!(x.has_byte_copy(), y.has_byte_copy());
    }
}

#[test]
fn an_f32_load_gives_the_f64_loads_pixels_rounded_to_f32() {
    // The book's file: whole 256ths, exact in both.
    let m64 = load_mnist(mnist_path()).unwrap();
    let m32 = load_mnist_as::<f32>(mnist_path()).unwrap();
    rounded_alike(&m64, &m32);
    assert!(m32.training.has_byte_copy());
    // float64 pixels that are not 256ths, some not exact in f32: each rounded to nearest.
    let path = Path::new("f8.pkl");
    let mut p = Py2Pickler::default();
    for n in [2usize, 1, 1] {
        let pixels: Vec<u8> = (0..n * 784)
            .flat_map(|k| (0.1 + k as f64 * 1e-9).to_le_bytes())
            .collect();
        p.array("f8", &[n, 784], &pixels);
        p.array("i8", &[n], &vec![0u8; n * 8]);
        p.tuple2();
    }
    p.tuple3();
    let raw = p.finish();
    let m64 = parse_mnist(path, &raw).unwrap();
    let m32 = parse_mnist_owned::<f32>(path, raw, None).unwrap();
    rounded_alike(&m64, &m32);
    assert!(!m32.training.has_byte_copy());
    assert_eq!(m64.training.images()[[0, 0]], 0.1);
}

#[test]
fn a_pickle_whose_sets_would_not_fit_in_memory_is_refused_before_they_are_made() {
    let raw = py2_mnist(&small_sets());
    // 12 images in f64 with their bytes: 12 · 784 · 9 = 84,672 bytes.
    let err = parse_mnist_owned::<f64>(Path::new("small.pkl"), raw.clone(), Some(84_671))
        .map(|_| ())
        .unwrap_err();
    let err = chain(&err);
    assert!(
        err.contains(
            "the pickle's 12 images of 28×28, in f64 with their bytes, take 0.0 GB (84672 bytes) \
             in memory, more than the 0.0 GB (84671 bytes) this process may use"
        ),
        "{err}"
    );
    assert!(parse_mnist_owned::<f64>(Path::new("small.pkl"), raw.clone(), Some(84_672)).is_ok());
    // In f32, 5 bytes a pixel.
    assert!(parse_mnist_owned::<f32>(Path::new("small.pkl"), raw, Some(12 * 784 * 5)).is_ok());
}

#[test]
fn python3_pickles_of_every_supported_form_load() {
    for name in [
        "py3_p2.pkl.gz",
        "py3_p2_numpy1.pkl.gz",
        "py3_p3_f64_i32.pkl.gz",
        "py3_p4_fortran_u8.pkl.gz",
        "py3_p4_bigendian.pkl.gz",
        "py3_p5.pkl.gz",
        "py3_p5_fortran_f64.pkl.gz",
    ] {
        let m = load_mnist(fixture(name)).unwrap_or_else(|e| panic!("{name}: {}", chain(&e)));
        expect_small(&m);
    }
}

#[test]
fn every_truncation_of_the_pickle_is_an_error() {
    let raw = py2_mnist(&small_sets());
    let path = Path::new("cut.pkl");
    for len in 0..raw.len() {
        match parse_mnist(path, &raw[..len]) {
            Err(DataError::Pickle { .. }) => {}
            Err(e) => panic!("cut at {len}: unexpected error {}", chain(&e)),
            Ok(_) => panic!("cut at {len} loaded"),
        }
    }
    assert!(parse_mnist(path, &raw).is_ok());
}

#[test]
fn every_truncation_of_protocol5_is_an_error() {
    let mut raw = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(fixture("py3_p5.pkl.gz")).unwrap()),
        &mut raw,
    )
    .unwrap();
    for len in 0..raw.len() {
        assert!(
            parse_mnist(Path::new("cut"), &raw[..len]).is_err(),
            "cut at {len} loaded"
        );
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let raw = py2_mnist(&small_sets());
    let mut rng = rng(7);
    for _ in 0..2000 {
        let mut bad = raw.clone();
        for _ in 0..3 {
            let i = rand::RngExt::random_range(&mut rng, 0..bad.len());
            bad[i] = rand::RngExt::random(&mut rng);
        }
        let _ = parse_mnist(Path::new("fuzzed"), &bad);
        let _ = nndl::data::pickle::first_array_shape(&bad);
    }
}

#[test]
fn length_prefix_beyond_the_data_is_refused_before_allocating() {
    let raw = py2_mnist(&small_sets());
    // The first BINSTRING ('T' + u32 length) holds the training pixels: claim 4 GiB − 1.
    let at = raw
        .windows(5)
        .position(|w| w[0] == b'T' && u32::from_le_bytes([w[1], w[2], w[3], w[4]]) == 6 * 784 * 4)
        .expect("pixel BINSTRING present");
    let mut bad = raw.clone();
    bad[at + 1..at + 5].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = chain(&parse_mnist(Path::new("long.pkl"), &bad).unwrap_err());
    assert!(err.contains("long.pkl"), "{err}");
    assert!(
        err.contains("4294967295 bytes") && err.contains("remain"),
        "{err}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let err = load_err(Path::new("no/such/mnist.pkl.gz"));
    assert!(err.contains("cannot open no/such/mnist.pkl.gz"), "{err}");
}

#[test]
fn file_that_is_not_gzip() {
    let dir = temp_dir("notgz");
    let path = write_file(&dir, "plain.pkl", &py2_mnist(&small_sets()));
    let err = load_err(&path);
    assert!(
        err.contains("plain.pkl is not a complete gzip file"),
        "{err}"
    );
    let empty = write_file(&dir, "empty.gz", b"");
    assert!(load_err(&empty).contains("empty.gz"));
}

#[test]
fn truncated_gzip() {
    let dir = temp_dir("cutgz");
    let gz = gzip(&py2_mnist(&small_sets()));
    for cut in [10, gz.len() / 2, gz.len() - 4] {
        let path = write_file(&dir, "cut.pkl.gz", &gz[..cut]);
        let err = load_err(&path);
        assert!(err.contains("cut.pkl.gz"), "cut at {cut}: {err}");
    }
}

#[test]
fn random_bytes_inside_gzip() {
    let dir = temp_dir("randomgz");
    let mut rng = rng(3);
    let junk: Vec<u8> = (0..5000).map(|_| rand::RngExt::random(&mut rng)).collect();
    let path = write_file(&dir, "junk.pkl.gz", &gzip(&junk));
    let err = load_err(&path);
    assert!(
        err.contains("junk.pkl.gz is not a readable pickle"),
        "{err}"
    );
    let path = write_file(&dir, "junk.gz", &junk);
    assert!(load_err(&path).contains("junk.gz"));
}

#[test]
fn content_errors_say_what_is_wrong() {
    for (name, want) in [
        (
            "bad_label.pkl.gz",
            "training labels: label 5 is 10, not a digit 0–9",
        ),
        (
            "bad_columns.pkl.gz",
            "validation images: expected 784 columns (28×28 pixels), found 783",
        ),
        ("bad_label_count.pkl.gz", "test set: 3 images but 2 labels"),
        (
            "bad_two_sets.pkl.gz",
            "expected a tuple (training, validation, test), found a tuple of 2 items",
        ),
        (
            "bad_object_array.pkl.gz",
            "dtype \"O8\" is not one of f4, f8, i8, i4, u1",
        ),
        ("bad_global.pkl.gz", "refusing global posix.system"),
    ] {
        let err = load_err(&fixture(name));
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn wrong_shapes_written_in_the_python2_layout() {
    let path = Path::new("shape.pkl");
    // Images as a 1-D array.
    let mut p = Py2Pickler::default();
    p.array("f4", &[784], &vec![0u8; 784 * 4]);
    p.array("i8", &[1], &[0u8; 8]);
    p.tuple2();
    p.array("f4", &[1, 784], &vec![0u8; 784 * 4]);
    p.array("i8", &[1], &[0u8; 8]);
    p.tuple2();
    p.array("f4", &[1, 784], &vec![0u8; 784 * 4]);
    p.array("i8", &[1], &[0u8; 8]);
    p.tuple2();
    p.tuple3();
    let err = chain(&parse_mnist(path, &p.finish()).unwrap_err());
    assert!(
        err.contains("training images: expected a 2-D array, found shape [784]"),
        "{err}"
    );

    // A shape that does not match the bytes stored.
    let mut p = Py2Pickler::default();
    p.array("f4", &[2, 784], &vec![0u8; 784 * 4]);
    let err = chain(&parse_mnist(path, &p.finish()).unwrap_err());
    assert!(
        err.contains("needs 6272 bytes but 3136 are stored"),
        "{err}"
    );

    // Integer pixels.
    let mut p = Py2Pickler::default();
    for _ in 0..3 {
        p.array("u1", &[1, 784], &[0u8; 784]);
        p.array("i8", &[1], &[0u8; 8]);
        p.tuple2();
    }
    p.tuple3();
    let err = chain(&parse_mnist(path, &p.finish()).unwrap_err());
    assert!(
        err.contains("training images: pixels must be float32 or float64, found U8"),
        "{err}"
    );
}

#[test]
fn copy_row_gives_the_exact_pixels_with_or_without_the_byte_copy() {
    use ndarray::{Array1, Array2};
    use nndl::data::Dataset;
    // MNIST-like pixels (k/256) take the byte path; others the dense one; both are exact.
    let mnist_like =
        Array2::from_shape_fn((3, 784), |(i, j)| ((i * 31 + j * 7) % 256) as f64 / 256.0);
    let other = Array2::from_shape_fn((3, 784), |(i, j)| ((i + j) as f64).sin().abs());
    for (images, bytes) in [(mnist_like, true), (other, false)] {
        let set = Dataset::new(images.clone(), vec![1, 2, 3]);
        assert_eq!(set.has_byte_copy(), bytes);
        let mut out = Array1::zeros(784);
        for k in 0..3 {
            set.copy_row(k, out.view_mut());
            assert_eq!(out, images.row(k));
        }
        let set32 = set.cast::<f32>();
        assert_eq!(set32.has_byte_copy(), bytes);
        let mut out32 = Array1::<f32>::zeros(784);
        set32.copy_row(1, out32.view_mut());
        assert_eq!(out32, images.row(1).mapv(|v| v as f32));
    }
}

fn inflate(path: &Path) -> Vec<u8> {
    let mut raw = Vec::new();
    let file = std::fs::File::open(path).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut raw).unwrap();
    raw
}

/// The prefix lengths of `raw` from which [`pickle::first_array_shape`] tells the shape, each
/// checked to be `want`: the shortest (`None` if none does). Every longer prefix tells it too.
fn shortest_prefix_with_shape(raw: &[u8], want: &[usize]) -> Option<usize> {
    let mut shortest = None;
    for len in 0..=raw.len() {
        match nndl::data::pickle::first_array_shape(&raw[..len]) {
            Some(shape) => {
                assert_eq!(shape, want, "cut at {len}");
                shortest.get_or_insert(len);
            }
            None => assert!(
                shortest.is_none(),
                "cut at {len}: no shape, but shorter had"
            ),
        }
    }
    shortest
}

#[test]
fn the_training_images_shape_is_read_before_their_pixels() {
    // The book's layout: the shape is known once the length of the pixels' BINSTRING is read,
    // which is the 5 bytes after where it starts.
    let raw = py2_mnist(&small_sets());
    let mut field = vec![b'T'];
    field.extend((6u32 * 784 * 4).to_le_bytes());
    let at = raw.windows(5).position(|w| w == field).unwrap();
    assert_eq!(shortest_prefix_with_shape(&raw, &[6, 784]), Some(at + 5));
    // Python 3's protocols 3 and 4 hold the pixels as BINBYTES: the same. Its protocol 2
    // (text through _codecs.encode) and protocol 5 (the bytes before the shape) tell the shape
    // only once the whole array is read.
    for (name, element, before_pixels) in [
        ("py3_p3_f64_i32.pkl.gz", 8, true),
        ("py3_p4_fortran_u8.pkl.gz", 1, true),
        ("py3_p4_bigendian.pkl.gz", 4, true),
        ("py3_p2.pkl.gz", 4, false),
        ("py3_p5.pkl.gz", 4, false),
    ] {
        let raw = inflate(&fixture(name));
        let len = shortest_prefix_with_shape(&raw, &[6, 784]).expect(name);
        assert_eq!(len < 6 * 784 * element, before_pixels, "{name}: {len}");
    }
    // A byte string that is not as long as the shape needs is not taken for the pixels.
    let mut p = Py2Pickler::default();
    p.array("f4", &[2, 784], &vec![0u8; 784 * 4]);
    assert_eq!(nndl::data::pickle::first_array_shape(&p.finish()), None);
}

#[test]
fn the_binary_refuses_a_mini_batch_larger_than_the_training_set_before_loading() {
    // A pickle of 100 training images, gzipped and cut in the middle of their pixels: the
    // first bytes tell the 100, and the mini-batch is refused before loading finds the cut.
    let sets = [
        RawSet::new(100, 0),
        RawSet::new(20, 100),
        RawSet::new(20, 120),
    ];
    let mut gz = gzip(&py2_mnist(&sets));
    gz.truncate(gz.len() / 2);
    let dir = temp_dir("loader-early");
    let path = write_file(&dir, "cut.pkl.gz", &gz);
    assert_eq!(nndl::data::mnist::training_count(&path), Some(100));
    assert!(load_err(&path).contains("not a complete gzip file"));
    let run = |args: &[&str]| {
        let mut all = vec!["train", "--data", path.to_str().unwrap()];
        all.extend(args);
        nndl_outcome(&all)
    };
    let (code, out, err) = run(&["--mini-batch", "1000"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the mini-batch size 1000 is larger than the 100 training examples"),
        "{err}"
    );
    assert!(!out.contains("Loaded"), "{out}");
    let (code, _, err) = run(&["--train-size", "101"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--train-size 101 is more than the 100 training images"),
        "{err}"
    );
    // With --validation-size the training images are the pickle's training and validation
    // images less N, and the validation images' count follows the training pixels: the check
    // waits for loading, which here finds the cut first.
    assert_eq!(nndl::run::training_count(&path, Some(5)), None);
    let (code, _, err) = run(&["--mini-batch", "1000", "--validation-size", "5"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a complete gzip file"), "{err}");
    // Bytes that are not a gzip tell nothing; loading says what they are.
    let text = write_file(&dir, "text.pkl.gz", b"not a pickle");
    assert_eq!(nndl::data::mnist::training_count(&text), None);
}
