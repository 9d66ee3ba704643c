//! MNIST's IDX files: the same three sets as `mnist.pkl.gz`, any validation size, and every
//! kind of broken header or body refused with the file's name and what is wrong — before
//! anything is allocated from the header.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use nndl::data::idx::{self, IdxFiles};
use nndl::data::{load_mnist, Mnist};
use nndl::run::load_data;

fn idx_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/idx")
}

/// An IDX header of unsigned bytes with `dims`.
fn header(dims: &[u32]) -> Vec<u8> {
    let mut h = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        h.extend(d.to_be_bytes());
    }
    h
}

/// An images file of `n` 28×28 images (image i's pixels all i mod 256).
fn images_file(n: usize) -> Vec<u8> {
    let mut f = header(&[n as u32, 28, 28]);
    for i in 0..n {
        f.extend(std::iter::repeat_n((i % 256) as u8, 784));
    }
    f
}

fn labels_file(n: usize) -> Vec<u8> {
    let mut f = header(&[n as u32]);
    f.extend((0..n).map(|i| (i % 10) as u8));
    f
}

/// A directory with the four files, each given as bytes (written raw).
fn write_dir(name: &str, files: [Vec<u8>; 4]) -> PathBuf {
    let dir = temp_dir(name);
    let names = [
        idx::TRAIN_IMAGES,
        idx::TRAIN_LABELS,
        idx::TEST_IMAGES,
        idx::TEST_LABELS,
    ];
    for (name, bytes) in names.into_iter().zip(files) {
        write_file(&dir, name, &bytes);
    }
    dir
}

fn small_dir(name: &str) -> PathBuf {
    write_dir(
        name,
        [
            images_file(12),
            labels_file(12),
            images_file(3),
            labels_file(3),
        ],
    )
}

fn load_err(dir: &Path) -> String {
    match idx::load_idx(dir, 2) {
        Ok(_) => panic!("{} loaded but should not", dir.display()),
        Err(e) => chain(&e),
    }
}

fn same_sets(a: &Mnist, b: &Mnist) {
    for (name, x, y) in [
        ("training", &a.training, &b.training),
        ("validation", &a.validation, &b.validation),
        ("test", &a.test, &b.test),
    ] {
        assert_eq!(x.images().dim(), y.images().dim(), "{name} shape");
        assert!(x.images() == y.images(), "{name} pixels differ");
        assert_eq!(x.labels(), y.labels(), "{name} labels differ");
    }
}

#[test]
fn idx_files_give_exactly_the_pickles_three_sets() {
    let from_idx = idx::load_idx(&idx_dir(), idx::DEFAULT_VALIDATION).expect("data/idx loads");
    let from_pickle = load_mnist(mnist_path()).expect("data/mnist.pkl.gz loads");
    assert_eq!(from_idx.training.len(), 50_000);
    assert_eq!(from_idx.validation.len(), 10_000);
    assert_eq!(from_idx.test.len(), 10_000);
    same_sets(&from_idx, &from_pickle);
    // The byte copy training gathers from is the pixels × 256.
    let mut row = ndarray::Array1::zeros(784);
    for k in (0..50_000).step_by(4999) {
        from_idx.training.copy_row(k, row.view_mut());
        assert_eq!(row, from_idx.training.images().row(k));
    }
}

#[test]
fn idx_files_in_f32_give_the_f64_pixels_rounded() {
    let files = IdxFiles::in_dir(&idx_dir()).unwrap();
    let f64s = idx::load_idx_files(&files, 12_345).expect("data/idx loads");
    let f32s = idx::load_idx_files_as::<f32>(&files, 12_345).expect("data/idx loads in f32");
    for (x, y) in [
        (&f64s.training, &f32s.training),
        (&f64s.validation, &f32s.validation),
        (&f64s.test, &f32s.test),
    ] {
        assert_eq!(x.images().dim(), y.images().dim());
        assert!(x
            .images()
            .iter()
            .zip(y.images())
            .all(|(p, q)| *p as f32 == *q));
        assert_eq!(x.labels(), y.labels());
        assert!(y.has_byte_copy());
    }
    assert_eq!(f32s.training.len(), 60_000 - 12_345);
}

#[test]
fn any_validation_size_splits_idx_and_pickle_alike() {
    let from_idx = load_data(&idx_dir(), Some(12_345)).expect("IDX with 12,345 validation");
    let from_pickle = load_data(&mnist_path(), Some(12_345)).expect("pickle with 12,345");
    assert_eq!(from_idx.training.len(), 60_000 - 12_345);
    assert_eq!(from_idx.validation.len(), 12_345);
    same_sets(&from_idx, &from_pickle);
}

#[test]
fn raw_and_gzipped_files_read_alike_and_a_directory_means_idx() {
    let dir = small_dir("idx_raw");
    let raw = load_data(&dir, Some(2)).expect("raw IDX files load");
    assert_eq!(
        (raw.training.len(), raw.validation.len(), raw.test.len()),
        (10, 2, 3)
    );
    assert_eq!(raw.validation.labels(), [0, 1]);
    assert_eq!(raw.training.images()[[3, 0]], 3.0 / 256.0);
    let gz = temp_dir("idx_gz");
    for name in [
        idx::TRAIN_IMAGES,
        idx::TRAIN_LABELS,
        idx::TEST_IMAGES,
        idx::TEST_LABELS,
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        write_file(&gz, &format!("{name}.gz"), &gzip(&bytes));
    }
    let files = IdxFiles::in_dir(&gz).unwrap();
    assert!(files.train_images.to_string_lossy().ends_with(".gz"));
    same_sets(
        &raw,
        &load_data(&gz, Some(2)).expect("gzipped IDX files load"),
    );
}

#[test]
fn a_file_of_several_gzip_members_reads_as_the_members_joined() {
    // Each file split in two gzip members, the split inside the header for the labels and
    // inside an image for the images: the same sets as the raw files. Before, the first member
    // alone was read and the file refused as too short.
    let dir = small_dir("idx_members_raw");
    let raw = load_data(&dir, Some(2)).expect("raw IDX files load");
    let gz = temp_dir("idx_members");
    for (name, at) in [
        (idx::TRAIN_IMAGES, 16 + 5 * 784 + 100),
        (idx::TRAIN_LABELS, 6),
        (idx::TEST_IMAGES, 16 + 784),
        (idx::TEST_LABELS, 9),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        write_file(&gz, &format!("{name}.gz"), &gzip_two_members(&bytes, at));
    }
    same_sets(
        &raw,
        &load_data(&gz, Some(2)).expect("IDX files of two gzip members load"),
    );
    // Zero padding after the last member is ignored, as gzip -d ignores it (flate2's
    // MultiGzDecoder took it for a broken header; the first member alone used to be read).
    let mut padded = gzip_two_members(&std::fs::read(dir.join(idx::TEST_LABELS)).unwrap(), 9);
    padded.extend([0u8; 100]);
    write_file(&gz, &format!("{}.gz", idx::TEST_LABELS), &padded);
    same_sets(
        &raw,
        &load_data(&gz, Some(2)).expect("zero padding is ignored"),
    );
    // A member too many is still found: the file holds more than its header declares.
    let mut bytes = std::fs::read(dir.join(idx::TEST_LABELS)).unwrap();
    bytes.push(0);
    write_file(
        &gz,
        &format!("{}.gz", idx::TEST_LABELS),
        &gzip_two_members(&bytes, 11),
    );
    let e = load_err(&gz);
    assert!(e.contains("the file holds more"), "{e}");
}

#[test]
fn a_missing_file_is_named_with_the_four_the_directory_needs() {
    let dir = small_dir("idx_missing");
    std::fs::remove_file(dir.join(idx::TEST_LABELS)).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"),
        "{e}"
    );
    assert!(e.contains(&dir.display().to_string()), "{e}");
}

#[test]
fn validation_size_that_leaves_no_training_images_is_a_usage_error() {
    let dir = small_dir("idx_validation");
    let e = load_data(&dir, Some(12)).expect_err("refused");
    assert!(e.is_usage(), "{e}");
    assert!(chain(&e).contains("--validation-size 12"), "{}", chain(&e));
    let e = load_data(&mnist_path(), Some(60_000)).expect_err("refused");
    assert!(e.is_usage(), "{e}");
}

/// Replaces the training images file of a good directory with `bytes`; the error.
fn train_images_err(name: &str, bytes: Vec<u8>) -> String {
    let dir = small_dir(name);
    write_file(&dir, idx::TRAIN_IMAGES, &bytes);
    let e = load_err(&dir);
    assert!(e.contains(idx::TRAIN_IMAGES), "the file is named: {e}");
    e
}

#[test]
fn bad_magic_numbers_are_refused() {
    let mut f = images_file(12);
    f[0] = 0x50; // e.g. a text or PNG file
    assert!(train_images_err("idx_magic", f).contains("not an IDX file"));
    let mut f = images_file(12);
    f[2] = 0x0d; // floats
    let e = train_images_err("idx_type", f);
    assert!(e.contains("element type 0x0d"), "{e}");
    // A labels file where the images should be.
    let e = train_images_err("idx_dims", labels_file(12));
    assert!(e.contains("1 dimensions, but images have 3"), "{e}");
}

#[test]
fn images_other_than_28_by_28_get_a_clear_message() {
    let mut f = header(&[12, 32, 32]);
    f.extend(vec![0u8; 12 * 32 * 32]);
    let e = train_images_err("idx_32", f);
    assert!(e.contains("32×32 pixels; these networks read 28×28"), "{e}");
}

#[test]
fn a_label_that_is_not_a_digit_is_refused() {
    let dir = small_dir("idx_label");
    let mut f = labels_file(3);
    f[8 + 2] = 10;
    write_file(&dir, idx::TEST_LABELS, &f);
    let e = load_err(&dir);
    assert!(e.contains("label 2 is 10, not a digit 0–9"), "{e}");
}

#[test]
fn counts_must_agree() {
    let dir = small_dir("idx_counts");
    write_file(&dir, idx::TRAIN_LABELS, &labels_file(11));
    let e = load_err(&dir);
    assert!(e.contains("11 labels for the 12 images"), "{e}");
}

#[test]
fn file_length_must_match_the_header() {
    let mut short = images_file(12);
    short.truncate(short.len() - 1);
    let e = train_images_err("idx_short", short.clone());
    assert!(e.contains("more than the file can hold"), "{e}");
    let mut long = images_file(12);
    long.push(0);
    let e = train_images_err("idx_long", long);
    assert!(e.contains("the file holds more"), "{e}");
    let e = train_images_err("idx_header", vec![0, 0, 8, 3, 0, 0]);
    assert!(e.contains("too short for the 16-byte header"), "{e}");
    // Gzipped, the length is only known by inflating: still refused, with the count found.
    let dir = small_dir("idx_short_gz");
    std::fs::remove_file(dir.join(idx::TRAIN_IMAGES)).unwrap();
    write_file(&dir, &format!("{}.gz", idx::TRAIN_IMAGES), &gzip(&short));
    let e = load_err(&dir);
    assert!(e.contains("but the file ends after 9407"), "{e}");
}

#[test]
fn a_header_declaring_a_huge_set_is_refused_before_allocating() {
    // 4 billion images in a 16-byte file: refused from the header alone.
    let e = train_images_err("idx_huge", header(&[u32::MAX, 28, 28]));
    assert!(
        e.contains("more than the 1369568 (1 GiB) nndl reads"),
        "{e}"
    );
    // A million images (784 MB) declared by a small file: refused as more than it can hold.
    let e = train_images_err("idx_big", header(&[1_000_000, 28, 28]));
    assert!(e.contains("more than the file can hold"), "{e}");
    // The same gzipped: 784 MB of zeros would inflate from ~760 KB, but a 20-byte gzip cannot.
    let dir = small_dir("idx_big_gz");
    std::fs::remove_file(dir.join(idx::TRAIN_IMAGES)).unwrap();
    let gz = gzip(&header(&[1_000_000, 28, 28]));
    write_file(&dir, &format!("{}.gz", idx::TRAIN_IMAGES), &gz);
    let e = load_err(&dir);
    assert!(e.contains("more than the file can hold"), "{e}");
    // A labels file declaring 2^32 − 1 labels, followed by 4 MB of zero labels: refused from
    // its header, before anything is read after it.
    let dir = small_dir("idx_huge_labels");
    std::fs::remove_file(dir.join(idx::TRAIN_LABELS)).unwrap();
    let mut labels = header(&[u32::MAX]);
    labels.resize(labels.len() + (4 << 20), 0);
    write_file(&dir, &format!("{}.gz", idx::TRAIN_LABELS), &gzip(&labels));
    let e = load_err(&dir);
    assert!(
        e.contains("the header declares 4294967295 labels, more than the 1369568 images"),
        "{e}"
    );
}

#[test]
fn the_binary_trains_on_an_idx_directory() {
    let dir = small_dir("idx_cli");
    let dir = dir.to_str().unwrap();
    let out = nndl(&[
        "train",
        "--data",
        dir,
        "--validation-size",
        "2",
        "--epochs",
        "1",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(10 training, 2 validation, 3 test images)"),
        "{text}"
    );
    let out = nndl(&["train", "--data", dir, "--validation-size", "12"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn the_binary_names_the_image_size_before_it_checks_the_validation_size() {
    // Two 32×32 images: the size is what is wrong, not the validation set it cannot give.
    let mut f = header(&[2, 32, 32]);
    f.extend(vec![0u8; 2 * 32 * 32]);
    let dir = small_dir("idx_cli_32");
    write_file(&dir, idx::TRAIN_IMAGES, &f);
    let out = nndl(&["train", "--data", dir.to_str().unwrap(), "--epochs", "1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("32×32 pixels; these networks read 28×28"),
        "{err}"
    );
}

#[test]
fn the_labels_header_alone_gives_the_number_of_training_images() {
    let dir = small_dir("idx_count");
    let files = IdxFiles::in_dir(&dir).unwrap();
    assert_eq!(idx::label_count(&files.train_labels).unwrap(), 12);
    assert_eq!(nndl::run::training_count(&dir, Some(2)), Some(10));
    // 10,000 validation images, or all 12, leave none: loading says so, once the images'
    // own header has been read.
    assert_eq!(nndl::run::training_count(&dir, None), None);
    assert_eq!(nndl::run::training_count(&dir, Some(12)), None);
    // Gzipped, only the header is inflated: a stream corrupt after it does not matter here.
    let mut gz = gzip(&labels_file(200_000));
    gz.truncate(gz.len() / 2);
    std::fs::remove_file(&files.train_labels).unwrap();
    write_file(&dir, &format!("{}.gz", idx::TRAIN_LABELS), &gz);
    let files = IdxFiles::in_dir(&dir).unwrap();
    assert_eq!(idx::label_count(&files.train_labels).unwrap(), 200_000);
    assert_eq!(nndl::run::training_count(&dir, Some(2)), Some(199_998));
    assert!(load_err(&dir).contains("not a complete gzip file"));
    // A labels file whose header is not one gives no number.
    write_file(
        &dir,
        &format!("{}.gz", idx::TRAIN_LABELS),
        &gzip(&images_file(1)),
    );
    let e = chain(&idx::label_count(&dir.join(format!("{}.gz", idx::TRAIN_LABELS))).unwrap_err());
    assert!(e.contains("3 dimensions, but labels have 1"), "{e}");
    assert_eq!(nndl::run::training_count(&dir, Some(2)), None);
}

#[test]
fn the_binary_refuses_a_mini_batch_larger_than_the_training_set_before_loading() {
    // The labels header says 100 training images, 90 after a validation set of 10; the images
    // file is cut short, which loading would find. The mini-batch is refused first.
    let mut short = images_file(100);
    short.truncate(16 + 3 * 784);
    let dir = write_dir(
        "idx_cli_early",
        [short, labels_file(100), images_file(3), labels_file(3)],
    );
    let data = dir.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["train", "--data", data, "--validation-size", "10"];
        all.extend(args);
        nndl_outcome(&all)
    };
    let (code, out, err) = run(&["--mini-batch", "1000"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the mini-batch size 1000 is larger than the 90 training examples"),
        "{err}"
    );
    assert!(!out.contains("Loaded"), "{out}");
    let (code, out, err) = run(&["--train-size", "200"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--train-size 200 is more than the 90 training images"),
        "{err}"
    );
    assert!(!out.contains("Loaded"), "{out}");
    let (code, _, err) = run(&["--train-size", "20", "--mini-batch", "30"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the mini-batch size 30 is larger than the 20 training examples"),
        "{err}"
    );
    // A mini-batch that fits passes, and loading then finds what is wrong with the images.
    let (code, _, err) = run(&["--mini-batch", "90"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("more than the file can hold"), "{err}");
}
