//! Reading digits from PNG images: test-set digits rendered to PNG — as they are, inverted,
//! and enlarged off-centre on a larger canvas — are read by a trained network.

mod common;

use std::path::Path;

use common::*;
use nndl::config::{TrainConfig, Variant};
use nndl::data::image::{read_digit, ImageError};
use nndl::data::load_mnist;
use nndl::model::network::argmax;
use nndl::train::train;

/// Writes an 8-bit greyscale PNG.
fn write_png(path: &Path, width: usize, height: usize, grey: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(grey).unwrap();
}

#[test]
fn a_trained_network_reads_rendered_test_digits() {
    let m = load_mnist(mnist_path()).unwrap();
    let mut config = TrainConfig::book_run(Variant::Network3);
    config.sgd.epochs = 6;
    let (net, _) = train(&config, &m.training, &m.test, |_, _| {}).unwrap();
    let dir = temp_dir("predict");
    let n = 500;
    let (mut same, mut inverted, mut moved) = (0, 0, 0);
    for k in 0..n {
        let pixels = m.test.images().row(k).to_owned();
        let label = usize::from(m.test.labels()[k]);
        let bytes: Vec<u8> = pixels.iter().map(|&p| (p * 256.0) as u8).collect();
        let read = |name: &str, w: usize, h: usize, data: &[u8]| {
            let path = dir.join(name);
            write_png(&path, w, h, data);
            let x = read_digit(&path).unwrap();
            argmax(net.feedforward(x.view()).iter().copied())
        };
        // As it is: exactly the test image.
        let path = dir.join("digit.png");
        write_png(&path, 28, 28, &bytes);
        assert_eq!(
            read_digit(&path).unwrap(),
            pixels,
            "a 28×28 digit reads back exactly"
        );
        same += usize::from(argmax(net.feedforward(pixels.view()).iter().copied()) == label);
        // Black on white.
        let inv: Vec<u8> = bytes.iter().map(|&b| 255 - b).collect();
        inverted += usize::from(read("inverted.png", 28, 28, &inv) == label);
        // Three times larger, off-centre on a 120×100 canvas, black on white.
        let (w, h) = (120, 100);
        let mut canvas = vec![255u8; w * h];
        for y in 0..84 {
            for x in 0..84 {
                canvas[(y + 4) * w + x + 30] = 255 - bytes[(y / 3) * 28 + x / 3];
            }
        }
        moved += usize::from(read("moved.png", w, h, &canvas) == label);
    }
    let pct = |c: usize| 100.0 * c as f64 / n as f64;
    eprintln!(
        "as is {}%, inverted {}%, enlarged and moved {}%",
        pct(same),
        pct(inverted),
        pct(moved)
    );
    assert!(pct(same) >= 95.0, "as is: {}%", pct(same));
    assert_eq!(inverted, same, "black on white reads the same");
    assert!(pct(moved) >= 90.0, "enlarged and moved: {}%", pct(moved));
}

#[test]
fn images_that_are_not_digits_are_refused() {
    let dir = temp_dir("predict-bad");
    let blank = dir.join("blank.png");
    write_png(&blank, 40, 30, &vec![255u8; 40 * 30]);
    assert!(matches!(read_digit(&blank), Err(ImageError::Blank { .. })));
    let text = write_file(&dir, "text.png", b"not an image");
    let err = chain(&read_digit(&text).unwrap_err());
    assert!(
        err.contains("text.png is not a readable PNG image"),
        "{err}"
    );
    assert!(matches!(
        read_digit(&dir.join("none.png")),
        Err(ImageError::Open { .. })
    ));
}
