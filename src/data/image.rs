//! Reading a handwritten digit from an image file, prepared as the MNIST digits were
//! (LeCun et al.): grey levels with the digit white on black, fitted into a 20×20 box keeping
//! its aspect ratio, and placed in a 28×28 field so that its centre of mass is at the centre.
//! Not part of the book; it lets a trained network read the reader's own digits.
//!
//! A 28×28 image is taken as it is (it is already an MNIST-sized digit); only its polarity is
//! checked. Black-on-white images are told apart from white-on-black ones by the border, which
//! is background in any digit image, and inverted. Transparent pixels count as white.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};

/// Side of an MNIST image.
pub const SIDE: usize = 28;
/// Side of the box a digit is scaled to fit.
const BOX: f64 = 20.0;
/// The grey level of white: 255/256, as in MNIST.
const WHITE: f64 = 255.0 / 256.0;
/// The most pixels an image may have (4096 × 4096), checked against the PNG header before
/// anything is decoded: a 250-byte file can declare 28 × 4,294,967,295 pixels.
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// The most bytes a decoded image may take (a 4096×4096 image of 8-bit RGBA); also the most the
/// PNG decoder may allocate for its own buffers.
const MAX_BYTES: usize = 64 << 20;

/// Why an image could not be read as a digit.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a readable PNG image")]
    Png {
        path: PathBuf,
        source: png::DecodingError,
    },
    #[error("{path}: the image is blank (no digit to read)")]
    Blank { path: PathBuf },
    #[error("{path}: {message}")]
    Decode { path: PathBuf, message: String },
}

/// Reads a PNG file as grey levels in [0, 255/256] (byte/256, as MNIST; white is 255/256),
/// `(height, width)`. Images of more than [`MAX_PIXELS`] are refused from their header, before
/// anything is decoded; the decoded bytes are converted to grey levels in one pass.
pub fn read_grey(path: &Path) -> Result<Array2<f64>, ImageError> {
    let file = super::file::open_regular(path).map_err(|source| ImageError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    decode_grey(path, std::io::BufReader::new(file))
}

/// [`read_grey`] on a PNG file's bytes from `input` (`path` is only used in errors).
pub fn decode_grey(path: &Path, input: impl std::io::Read) -> Result<Array2<f64>, ImageError> {
    let png_err = |source| ImageError::Png {
        path: path.to_path_buf(),
        source,
    };
    let mut decoder = png::Decoder::new_with_limits(input, png::Limits { bytes: MAX_BYTES });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let header = decoder.read_header_info().map_err(png_err)?;
    let (width, height) = (header.width, header.height);
    let too_large = || ImageError::Decode {
        path: path.to_path_buf(),
        message: format!(
            "the image is {width}×{height} pixels; nndl reads images of up to 4096×4096 \
             ({MAX_PIXELS} pixels) — scale it down first"
        ),
    };
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(too_large());
    }
    let mut reader = decoder.read_info().map_err(png_err)?;
    if reader.output_buffer_size() > MAX_BYTES {
        return Err(too_large());
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(png_err)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()].chunks_exact(channels).map(|p| {
        // Bytes as MNIST scales them, k/256, so that an 8-bit MNIST digit reads back exactly.
        let v = |i: usize| f64::from(p[i]) / 256.0;
        let (grey, alpha) = match channels {
            1 => (v(0), 1.0),
            2 => (v(0), f64::from(p[1]) / 255.0),
            3 => (0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2), 1.0),
            _ => (
                0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2),
                f64::from(p[3]) / 255.0,
            ),
        };
        // Over a white background.
        grey * alpha + WHITE * (1.0 - alpha)
    });
    Array2::from_shape_vec((h, w), pixels.collect()).map_err(|e| ImageError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The 784 inputs of the digit in grey image `grey` (255/256 = white), row by row, MNIST style
/// (inverted in place when the digit is dark on light). `None` if the image is blank.
pub fn mnist_input(grey: Array2<f64>) -> Option<Array1<f64>> {
    let (h, w) = grey.dim();
    // The border is background: if it is light, the digit is dark on light — invert.
    let border: Vec<f64> = grey
        .indexed_iter()
        .filter(|((r, c), _)| *r == 0 || *c == 0 || *r + 1 == h || *c + 1 == w)
        .map(|(_, &v)| v)
        .collect();
    let background = border.iter().sum::<f64>() / border.len().max(1) as f64;
    let mut ink = grey;
    if background > 0.5 {
        ink.mapv_inplace(|v| WHITE - v);
    }
    if (h, w) == (SIDE, SIDE) {
        return (ink.iter().any(|&v| v > 0.0)).then(|| ink.iter().copied().collect());
    }
    // The digit's bounding box (ink above a faint threshold).
    let marked = |v: f64| v > 0.1;
    let rows: Vec<usize> = (0..h)
        .filter(|&r| ink.row(r).iter().any(|&v| marked(v)))
        .collect();
    let cols: Vec<usize> = (0..w)
        .filter(|&c| ink.column(c).iter().any(|&v| marked(v)))
        .collect();
    let (&top, &bottom, &left, &right) = (rows.first()?, rows.last()?, cols.first()?, cols.last()?);
    let (bh, bw) = ((bottom - top + 1) as f64, (right - left + 1) as f64);
    // Fit into 20×20 keeping the aspect ratio; each output pixel averages the input area it
    // covers (4×4 samples, bilinear).
    let scale = BOX / bh.max(bw);
    let (oh, ow) = (
        ((bh * scale).round() as usize).max(1),
        ((bw * scale).round() as usize).max(1),
    );
    let sample = |y: f64, x: f64| -> f64 {
        let (y, x) = (y.clamp(0.0, (h - 1) as f64), x.clamp(0.0, (w - 1) as f64));
        let (y0, x0) = (y.floor() as usize, x.floor() as usize);
        let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
        let (fy, fx) = (y - y0 as f64, x - x0 as f64);
        let top_row = ink[[y0, x0]] * (1.0 - fx) + ink[[y0, x1]] * fx;
        let bottom_row = ink[[y1, x0]] * (1.0 - fx) + ink[[y1, x1]] * fx;
        top_row * (1.0 - fy) + bottom_row * fy
    };
    const SUB: usize = 4;
    let digit = Array2::from_shape_fn((oh, ow), |(r, c)| {
        let mut sum = 0.0;
        for i in 0..SUB {
            for j in 0..SUB {
                let y = top as f64 + (r as f64 + (i as f64 + 0.5) / SUB as f64) / scale - 0.5;
                let x = left as f64 + (c as f64 + (j as f64 + 0.5) / SUB as f64) / scale - 0.5;
                sum += sample(y, x);
            }
        }
        sum / (SUB * SUB) as f64
    });
    // Centre of mass to the middle of the 28×28 field.
    let mass: f64 = digit.sum();
    if mass <= 0.0 {
        return None;
    }
    let (mut cy, mut cx) = (0.0, 0.0);
    for ((r, c), &v) in digit.indexed_iter() {
        cy += r as f64 * v;
        cx += c as f64 * v;
    }
    let place = |centre: f64, size: usize| {
        let offset = (SIDE as f64 / 2.0 - 0.5 - centre / mass).round() as i64;
        offset.clamp(0, (SIDE - size) as i64) as usize
    };
    let (dy, dx) = (place(cy, oh), place(cx, ow));
    let mut field = Array2::<f64>::zeros((SIDE, SIDE));
    field
        .slice_mut(ndarray::s![dy..dy + oh, dx..dx + ow])
        .assign(&digit);
    Some(
        field
            .mapv(|v| v.clamp(0.0, WHITE))
            .iter()
            .copied()
            .collect(),
    )
}

/// Reads `path` and prepares it as a network's input.
pub fn read_digit(path: &Path) -> Result<Array1<f64>, ImageError> {
    mnist_input(read_grey(path)?).ok_or_else(|| ImageError::Blank {
        path: path.to_path_buf(),
    })
}
