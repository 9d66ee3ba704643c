//! The loaders' memory stays bounded by what a file really holds: each test is a small crafted
//! file of a kind a mutation campaign over the loaders found to take gigabytes (a gzip bomb
//! behind a pickle, a memoised value fetched thousands of times, millions of pushes, a PNG
//! header declaring a huge image), and a message quoting a file keeps to a line.

mod common;

use std::rc::Rc;

use common::*;
use nndl::data::image;
use nndl::data::load_mnist;
use nndl::data::mnist::load_mnist_within;
use nndl::data::pickle::{self, Value, MAX_MEMO, MAX_STACK};

fn pickle_err(bytes: &[u8]) -> String {
    match pickle::read(bytes) {
        Ok(v) => panic!("read as a {} but should not", v.type_name()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_gzip_bomb_after_the_pickle_is_not_inflated() {
    // A valid pickle followed by 256 MB of zeros (a 250 KB file): reading stops at STOP, so
    // a 4 MB limit is never reached.
    let mut raw = py2_mnist(&small_sets());
    let pickle_len = raw.len();
    raw.resize(pickle_len + (256 << 20), 0);
    let dir = temp_dir("bomb");
    let path = write_file(&dir, "bomb.pkl.gz", &gzip(&raw));
    drop(raw);
    let m = load_mnist_within(&path, 4 << 20).expect("the pickle before the zeros loads");
    assert_eq!(m.training.len(), 6);
    load_mnist(&path).expect("and with the default limit");
}

#[test]
fn a_pickle_that_does_not_end_within_the_limit_is_refused() {
    // BINBYTES8 declaring 2^40 bytes, followed by 8 MB of zeros: it never reaches STOP.
    let mut raw = vec![0x80, 2, 0x8e];
    raw.extend((1u64 << 40).to_le_bytes());
    raw.resize(raw.len() + (8 << 20), 0);
    let dir = temp_dir("endless");
    let path = write_file(&dir, "endless.pkl.gz", &gzip(&raw));
    let e = chain(&load_mnist_within(&path, 1 << 20).expect_err("refused"));
    assert!(e.contains("does not end within 1048576 bytes"), "{e}");
    assert!(e.contains("endless.pkl.gz"), "{e}");
    // Read to its end without a limit, it is a truncated pickle, said as such.
    let e = chain(&load_mnist(&path).expect_err("refused"));
    assert!(e.contains("truncated"), "{e}");
}

/// `_codecs.encode("aaa…", "latin1")` (as Python 3 writes bytes under protocol 2), memoised
/// as key 0.
fn encoded_bytes(len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend(b"c_codecs\nencode\n");
    p.push(b'X');
    p.extend((len as u32).to_le_bytes());
    p.extend(std::iter::repeat_n(b'a', len));
    p.push(b'X');
    p.extend(6u32.to_le_bytes());
    p.extend(b"latin1");
    p.extend([0x86, b'R', b'q', 0]);
    p
}

#[test]
fn a_memoised_value_fetched_again_is_shared_not_copied() {
    // (x, x, x) from one encoded value and two GETs: one buffer, three references. Copied,
    // 16,000 GETs of a 600 KB value took 9 GB.
    let mut p = encoded_bytes(1 << 20);
    p.extend([b'h', 0, b'h', 0, 0x87, b'.']);
    let root = pickle::read(&p).expect("a tuple of three byte strings");
    let items = root.as_tuple().expect("a tuple");
    let Value::Bytes(first) = &items[0] else {
        panic!("bytes")
    };
    assert_eq!(first.len(), 1 << 20);
    for item in &items[1..] {
        let Value::Bytes(b) = item else {
            panic!("bytes")
        };
        assert!(Rc::ptr_eq(first, b), "a GET copied the value");
    }
}

#[test]
fn the_stack_is_bounded() {
    // 100 million pushes of None held 3 GB before the error; now the error comes first.
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b'N', MAX_STACK + 10));
    p.push(b'.');
    let e = pickle_err(&p);
    assert!(
        e.contains(&format!("more than {MAX_STACK} values on the stack")),
        "{e}"
    );
    // Marks count too.
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b'(', MAX_STACK + 10));
    let e = pickle_err(&p);
    assert!(e.contains("values on the stack"), "{e}");
}

#[test]
fn the_memo_is_bounded() {
    let mut p = vec![0x80, 2, b'N'];
    for k in 0..(MAX_MEMO as u32 + 10) {
        p.push(b'r');
        p.extend(k.to_le_bytes());
    }
    p.push(b'.');
    let e = pickle_err(&p);
    assert!(
        e.contains(&format!("more than {MAX_MEMO} memoised values")),
        "{e}"
    );
}

#[test]
fn quoted_file_content_is_cut_and_escaped() {
    // A 1 MB module name starting with a terminal escape sequence.
    let mut p = vec![0x80, 2, b'c'];
    p.extend(b"\x1b[2J\x07evil");
    p.extend(std::iter::repeat_n(b'm', 1 << 20));
    p.extend(b"\nname\n.");
    let e = pickle_err(&p);
    assert!(e.len() < 300, "{} bytes: {}", e.len(), &e[..300]);
    assert!(!e.contains('\x1b') && !e.contains('\x07'), "{e:?}");
    assert!(e.contains(r"\u{1b}[2J\u{7}evil"), "{e}");
    assert!(e.contains("(1048590 characters)"), "{e}");
    // A dtype code is quoted the same way.
    let mut p = vec![0x80, 2];
    p.extend(b"cnumpy\ndtype\n");
    p.push(b'X');
    p.extend(5u32.to_le_bytes());
    p.extend(b"f4\n\x1b!");
    p.extend([0x85, b'R', b'.']);
    let e = pickle_err(&p);
    assert!(e.contains(r#"dtype "f4\n\u{1b}!" is not one of"#), "{e}");
}

/// A PNG of just a header (IHDR) and an end (IEND): enough for a decoder to read the size.
fn png_header_only(width: u32, height: u32, bit_depth: u8) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend(kind);
        png.extend(data);
        png.extend(crc.sum().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([bit_depth, 0, 0, 0, 0]); // greyscale, deflate, no filter, not interlaced
    chunk(b"IHDR", &ihdr);
    chunk(b"IEND", &[]);
    png
}

fn read_png_err(name: &str, bytes: &[u8]) -> String {
    let dir = temp_dir(name);
    let path = write_file(&dir, "digit.png", bytes);
    match image::read_digit(&path) {
        Ok(_) => panic!("{name} read but should not"),
        Err(e) => {
            let text = chain(&e);
            assert!(text.contains("digit.png"), "the file is named: {text}");
            text
        }
    }
}

#[test]
fn a_png_header_declaring_a_huge_image_is_refused_before_decoding() {
    // 28 × 2^31-1 in a 57-byte file: the output buffer was allocated from the header alone.
    let e = read_png_err("png_tall", &png_header_only(28, (1 << 31) - 1, 8));
    assert!(e.contains("the image is 28×2147483647 pixels"), "{e}");
    assert!(e.contains("up to 4096×4096"), "{e}");
    // 30000×30000 at one bit per pixel (109 KB as a real file) grew past 9 GB.
    let e = read_png_err("png_1bit", &png_header_only(30_000, 30_000, 1));
    assert!(e.contains("the image is 30000×30000 pixels"), "{e}");
}

#[test]
fn the_largest_image_accepted_is_read() {
    // A 4096×4096 1-bit image (white, one black square) decodes and reads as a digit.
    let (w, h) = (4096usize, 4096usize);
    let mut rows = vec![0xffu8; w / 8 * h];
    for r in 1000..3000 {
        for byte in (1000 / 8)..(3000 / 8) {
            rows[r * (w / 8) + byte] = 0;
        }
    }
    let dir = temp_dir("png_largest");
    let path = dir.join("square.png");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&rows).unwrap();
        writer.finish().unwrap();
    }
    let x = image::read_digit(&path).expect("a 4096×4096 image is read");
    assert_eq!(x.len(), 784);
    assert!(x.iter().any(|&v| v > 0.5), "the square is ink");
    // A small image without pixel data is refused by the decoder, not by its size.
    let e = read_png_err("png_no_data", &png_header_only(28, 28, 8));
    assert!(!e.contains("pixels; nndl reads"), "{e}");
}

#[test]
fn a_model_file_with_nan_weights_says_the_weights_are_not_finite() {
    // As Python's json.dump writes a network whose weights became NaN.
    let dir = temp_dir("nan_model");
    let text = r#"{"sizes": [2, 1], "weights": [[[NaN, 0.5]]], "biases": [[[0.1]]], "cost": "CrossEntropyCost"}"#;
    let path = write_file(&dir, "nan.json", text.as_bytes());
    let e = chain(&nndl::model::file::load::<f64>(&path).expect_err("refused"));
    assert!(e.contains("nan.json: the weights are not finite"), "{e}");
    assert!(e.contains("holds NaN"), "{e}");
    let inf = text.replace("NaN", "-Infinity");
    let path = write_file(&dir, "inf.json", inf.as_bytes());
    let e = chain(&nndl::model::file::load::<f64>(&path).expect_err("refused"));
    assert!(e.contains("holds -Infinity"), "{e}");
    // "NaN" inside a string is not a weight: that file is only broken JSON.
    let quoted = r#"{"sizes": [2, 1], "cost": "NaN", "weights": [[[0.5, 0.5]]], "biases": ]}"#;
    let path = write_file(&dir, "quoted.json", quoted.as_bytes());
    let e = chain(&nndl::model::file::load::<f64>(&path).expect_err("refused"));
    assert!(e.contains("is not a network2.py model file"), "{e}");
}

/// Makes a named pipe at `path`.
#[cfg(unix)]
fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `name` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A FIFO or a device named as data, a model or an image is refused by kind at once (a FIFO
/// blocked the open for ever; `/dev/zero` as a model was read without end), and so is an IDX
/// directory's entry that is a FIFO, a directory or a broken link (reported as missing before).
#[cfg(unix)]
#[test]
fn only_regular_files_are_read() {
    use std::time::Duration;
    let dir = temp_dir("fifo");
    let fifo = dir.join("pipe");
    mkfifo(&fifo);
    let fifo_text = fifo.to_str().unwrap();
    let bound = Duration::from_secs(60);
    let model = dir.join("m.json");
    let model_text = model.to_str().unwrap();
    let o = nndl(&[
        "train",
        "--train-size",
        "100",
        "--epochs",
        "1",
        "--save",
        model_text,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (args, want) in [
        (
            vec!["train", "--data", fifo_text, "--epochs", "1"],
            "it is a named pipe (FIFO), not a regular file",
        ),
        (
            vec!["eval", "--model", fifo_text, "--data", "data/mnist.pkl.gz"],
            "it is a named pipe (FIFO), not a regular file",
        ),
        (
            vec![
                "eval",
                "--model",
                "/dev/zero",
                "--data",
                "data/mnist.pkl.gz",
            ],
            "it is a device, not a regular file",
        ),
        (
            vec!["predict", "--model", model_text, fifo_text],
            "it is a named pipe (FIFO), not a regular file",
        ),
        (
            vec!["plot", fifo_text, "--output", "never.png"],
            "it is a named pipe (FIFO), not a regular file",
        ),
    ] {
        let o = nndl_within(&args, bound);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // An IDX directory whose entry is there, but not as a file (the others are files).
    let names = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];
    for (k, (entry, want)) in [
        ("train-images-idx3-ubyte", "a named pipe (FIFO)"),
        ("train-labels-idx1-ubyte.gz", "a directory"),
        (
            "t10k-images-idx3-ubyte.gz",
            "a broken or looping symbolic link",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let idx = temp_dir(&format!("odd-idx-{k}"));
        for name in names {
            if !entry.starts_with(name) {
                std::fs::write(idx.join(name), b"").unwrap();
            }
        }
        let path = idx.join(entry);
        match k {
            0 => mkfifo(&path),
            1 => std::fs::create_dir(&path).unwrap(),
            _ => std::os::unix::fs::symlink(idx.join("nowhere"), &path).unwrap(),
        }
        let err = nndl::data::idx::IdxFiles::in_dir(&idx)
            .unwrap_err()
            .to_string();
        assert!(err.contains(entry) && err.contains(want), "{entry}: {err}");
    }
}

/// A layered model file whose strings are huge or hold control characters: the error names the
/// layout it was read as, and quotes the file cut and escaped (it said "is not a network2.py
/// model file" and printed ESC and OSC bytes raw).
#[test]
fn layered_model_errors_name_the_layout_and_quote_the_file_safely() {
    let dir = temp_dir("layered-strings");
    let evil = format!("\u{1b}]0;title\u{7}\u{1b}[2J{}", "k".repeat(200_000));
    for (name, json) in [
        (
            "kind.json",
            format!(r#"{{"layers": [{{"kind": "{evil}"}}]}}"#),
        ),
        ("key.json", format!(r#"{{"layers": [], "{evil}": 1}}"#)),
        (
            "act.json",
            format!(r#"{{"layers": [{{"kind": "fc", "activation": "{evil}"}}]}}"#),
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(
            &path,
            json.replace('\u{1b}', "\\u001b")
                .replace('\u{7}', "\\u0007"),
        )
        .unwrap();
        let o = nndl(&["eval", "--model", path.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{name}");
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{7}'),
            "{name}: {err:?}"
        );
        assert!(err.len() < 2_000, "{name}: {} bytes", err.len());
        assert!(!err.contains("network2.py"), "{name}: {err}");
    }
}
