//! Pictures of a network ([`crate::model::view`]), the same for `nndl inspect` (written as PNG
//! files) and `--tensorboard` (its Images tab): the first layer's weights as tiles — a
//! neuron's 784 input weights as a 28×28 image, as chapter 1 looks at a hidden neuron, or a
//! convolution's K×K filters, as chapter 6 shows its first layer's feature maps — a gallery
//! of the misclassified digits the network was surest of, each with its true and predicted
//! digit, and the confusion matrix of a set. Text is drawn in the figures' embedded font
//! ([`crate::report::plot`]), so an image looks the same on every machine.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::model::view::{Mistake, Tiles};
use crate::report::plot::{encode_png, font_ready, PlotError, FAMILY};

/// How many misclassified digits a gallery shows.
pub const GALLERY: usize = 32;
/// The most tiles a picture of the first layer shows (the first ones).
pub const MAX_TILES: usize = 400;
/// A tile's side is scaled up to at least this many pixels (a 5×5 filter to 60).
const TILE_PIXELS: usize = 56;
/// Pixels between tiles, and around the picture.
const GAP: usize = 4;
/// Height of a line of text under or over a picture.
const LINE: usize = 22;
/// A gallery's digits are drawn this many times their 28 pixels.
const DIGIT_SCALE: usize = 3;
/// Digits in a row of the gallery.
const GALLERY_COLUMNS: usize = 8;
/// A confusion matrix's cell, in pixels.
const CELL: usize = 52;

/// An 8-bit RGB image.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// Row by row, 3 bytes a pixel.
    pub rgb: Vec<u8>,
}

impl Picture {
    /// A white picture.
    fn blank(width: usize, height: usize) -> Self {
        Picture {
            width: width as u32,
            height: height as u32,
            rgb: vec![255; width * height * 3],
        }
    }

    /// Colours the `scale × scale` block of pixel (`x`, `y`) of a grid placed at `origin`.
    fn block(&mut self, origin: (usize, usize), (x, y): (usize, usize), scale: usize, c: [u8; 3]) {
        let width = self.width as usize;
        for dy in 0..scale {
            let row = origin.1 + y * scale + dy;
            for dx in 0..scale {
                let at = 3 * (row * width + origin.0 + x * scale + dx);
                self.rgb[at..at + 3].copy_from_slice(&c);
            }
        }
    }

    /// Draws `draw` over the picture with plotters (for its text).
    fn draw(
        &mut self,
        draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
    ) -> Result<(), String> {
        if !font_ready() {
            return Err("the embedded font could not be read".into());
        }
        let size = (self.width, self.height);
        let root = BitMapBackend::with_buffer(&mut self.rgb, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(|e| e.to_string())
    }

    /// The picture as a PNG file's bytes.
    pub fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        encode_png(&self.rgb, (self.width, self.height))
    }

    /// Writes the picture to `path` as a PNG, atomically.
    pub fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        let bytes = self.png().map_err(|e| PlotError::Draw {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        crate::output::write_atomically(path, |w| std::io::Write::write_all(w, &bytes)).map_err(
            |source| PlotError::Write {
                path: path.to_path_buf(),
                source,
            },
        )
    }
}

/// A line of `size`-point text centred on `at`.
fn text<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    line: &str,
    at: (usize, usize),
    size: u32,
) -> Result<(), String> {
    let style = TextStyle::from((FAMILY, size).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        line.to_string(),
        (at.0 as i32, at.1 as i32),
        style,
    ))
    .map_err(|e| e.to_string())
}

/// A weight's colour: red for positive, blue for negative, white for 0, full at `|w| = max`.
fn diverging(w: f64, max: f64) -> [u8; 3] {
    let t = if max > 0.0 {
        (w / max).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let fade = (255.0 * (1.0 - t.abs())).round() as u8;
    if t >= 0.0 {
        [255, fade, fade]
    } else {
        [fade, fade, 255]
    }
}

/// Columns of a grid of `n` items that is about square.
fn columns(n: usize) -> usize {
    n.max(1).isqrt() + usize::from(n.max(1).isqrt().pow(2) < n.max(1))
}

/// The first layer's weights as a grid of tiles (up to [`MAX_TILES`]), each in red (positive)
/// and blue (negative) scaled to its own largest |w|, so that every neuron's or filter's
/// pattern shows whatever its size; a line under the grid says so.
pub fn weight_tiles(tiles: &Tiles) -> Result<Picture, String> {
    let shown = tiles.count.min(MAX_TILES);
    let (h, w) = (tiles.height.max(1), tiles.width.max(1));
    let scale = TILE_PIXELS.div_ceil(h.max(w)).max(1);
    let cols = columns(shown);
    let rows = shown.div_ceil(cols).max(1);
    let grid = cols * (w * scale + GAP) + GAP;
    // At least wide enough for the caption; the grid centred.
    let width = grid.max(520);
    let left = (width - grid) / 2;
    let height = rows * (h * scale + GAP) + GAP + LINE;
    let mut picture = Picture::blank(width, height);
    for k in 0..shown {
        let tile = &tiles.values[k * h * w..(k + 1) * h * w];
        let max = tile.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let origin = (
            left + GAP + (k % cols) * (w * scale + GAP),
            GAP + (k / cols) * (h * scale + GAP),
        );
        for (i, &v) in tile.iter().enumerate() {
            picture.block(origin, (i % w, i / w), scale, diverging(v, max));
        }
    }
    let plural = if tiles.count == 1 { "" } else { "s" };
    let first = match shown < tiles.count {
        true => format!("first {shown} of "),
        false => String::new(),
    };
    let caption = format!(
        "{first}{} {}{plural}, {h}×{w}: red > 0 > blue, each scaled to its largest |w|",
        tiles.count, tiles.what
    );
    picture.draw(|root| text(root, &caption, (width / 2, height - LINE / 2 - 2), 13))?;
    Ok(picture)
}

/// The misclassified digits `mistakes` in rows of [`GALLERY_COLUMNS`], each with
/// `true → predicted` and the network's confidence under it, under a line saying what they are.
pub fn gallery(mistakes: &[Mistake], set: &str) -> Result<Picture, String> {
    let side = 28 * DIGIT_SCALE;
    let cell = (side + 2 * GAP, side + LINE + GAP);
    let rows = mistakes.len().div_ceil(GALLERY_COLUMNS).max(1);
    let width = GALLERY_COLUMNS * cell.0 + 2 * GAP;
    let height = LINE + GAP + rows * cell.1 + GAP;
    let mut picture = Picture::blank(width, height);
    for (k, m) in mistakes.iter().enumerate() {
        let origin = (
            GAP + (k % GALLERY_COLUMNS) * cell.0 + GAP,
            LINE + GAP + (k / GALLERY_COLUMNS) * cell.1,
        );
        let n = m.pixels.len().isqrt().max(1);
        for (i, &p) in m.pixels.iter().enumerate().take(n * n) {
            let ink = (255.0 * (1.0 - p.clamp(0.0, 1.0))).round() as u8;
            picture.block(origin, (i % n, i / n), side / n, [ink; 3]);
        }
    }
    let title = if mistakes.is_empty() {
        format!("No misclassified {set} digits")
    } else {
        format!("The {} misclassified {set} digits the network was surest of: true → predicted (confidence)", mistakes.len())
    };
    picture.draw(|root| {
        text(root, &title, (width / 2, LINE / 2 + 2), 14)?;
        for (k, m) in mistakes.iter().enumerate() {
            let v = m.verdict;
            let x = GAP + (k % GALLERY_COLUMNS) * cell.0 + GAP + side / 2;
            let y = LINE + GAP + (k / GALLERY_COLUMNS) * cell.1 + side + LINE / 2;
            let line = format!(
                "{} → {} ({:.0}%)",
                v.label,
                v.predicted,
                100.0 * v.confidence
            );
            text(root, &line, (x, y), 14)?;
        }
        Ok(())
    })?;
    Ok(picture)
}

/// The confusion matrix `matrix` (row: true digit, column: predicted digit) of `set`, each
/// cell with its count: the diagonal in green, the mistakes in red, each shade by its count
/// against the largest of its kind.
pub fn confusion_matrix(matrix: &[Vec<usize>], set: &str) -> Result<Picture, String> {
    let n = matrix.len();
    let left = 2 * LINE + GAP;
    let top = 3 * LINE;
    let width = left + n * CELL + 2 * GAP;
    let height = top + n * CELL + GAP;
    let mut picture = Picture::blank(width, height);
    let diagonal = (0..n).map(|i| matrix[i][i]).max().unwrap_or(0);
    let off = (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
        .map(|(i, j)| matrix[i][j])
        .max()
        .unwrap_or(0);
    for (i, row) in matrix.iter().enumerate() {
        for (j, &count) in row.iter().enumerate() {
            let (max, full) = if i == j {
                (diagonal, [60, 170, 80])
            } else {
                (off, [220, 60, 50])
            };
            let t = if max > 0 {
                count as f64 / max as f64
            } else {
                0.0
            };
            let shade = full.map(|c| (255.0 - t * (255.0 - f64::from(c))).round() as u8);
            for y in 1..CELL - 1 {
                for x in 1..CELL - 1 {
                    let at = 3 * ((top + i * CELL + y) * width + left + j * CELL + x);
                    picture.rgb[at..at + 3].copy_from_slice(&shade);
                }
            }
        }
    }
    let total: usize = matrix.iter().flatten().sum();
    let correct: usize = (0..n).map(|i| matrix[i][i]).sum();
    picture.draw(|root| {
        let title = format!(
            "Confusion matrix on the {set} set: {correct} of {total} right; rows: true digit, columns: predicted"
        );
        text(root, &title, (width / 2, LINE / 2 + 2), 13)?;
        text(root, "predicted digit", (left + n * CELL / 2, LINE + LINE / 2), 13)?;
        for k in 0..n {
            text(root, &k.to_string(), (left + k * CELL + CELL / 2, 2 * LINE + LINE / 2), 14)?;
            text(root, &k.to_string(), (left - LINE / 2 - 2, top + k * CELL + CELL / 2), 14)?;
        }
        let style = TextStyle::from((FAMILY, 13).into_font())
            .color(&BLACK)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(
            "true digit",
            ((LINE / 2 + 2) as i32, (top + n * CELL / 2) as i32),
            style,
        ))
        .map_err(|e| e.to_string())?;
        for (i, row) in matrix.iter().enumerate() {
            for (j, &count) in row.iter().enumerate() {
                if count > 0 || i == j {
                    let at = (left + j * CELL + CELL / 2, top + i * CELL + CELL / 2);
                    text(root, &count.to_string(), at, 13)?;
                }
            }
        }
        Ok(())
    })?;
    Ok(picture)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::view::Verdict;

    /// The share of pixels of `p` that are not white.
    fn inked(p: &Picture) -> f64 {
        let ink = p.rgb.chunks(3).filter(|c| c != &[255, 255, 255]).count();
        ink as f64 / (p.width * p.height) as f64
    }

    #[test]
    fn tiles_are_laid_out_in_a_square_grid_with_their_colours() {
        let values: Vec<f64> = (0..30 * 784).map(|i| ((i % 7) as f64) - 3.0).collect();
        let tiles = Tiles {
            count: 30,
            height: 28,
            width: 28,
            values,
            what: "neuron",
        };
        let p = weight_tiles(&tiles).unwrap();
        // 6 columns of 56-pixel tiles, 5 rows, and the caption.
        assert_eq!(p.height as usize, 5 * (56 + GAP) + GAP + LINE);
        assert!(inked(&p) > 0.4, "{}", inked(&p));
        // The first tile's first pixel is -3 of a tile whose largest |w| is 3: full blue.
        let left = (p.width as usize - (6 * (56 + GAP) + GAP)) / 2;
        let at = 3 * (GAP * p.width as usize + left + GAP);
        assert_eq!(&p.rgb[at..at + 3], &[0, 0, 255]);
    }

    #[test]
    fn a_gallery_draws_each_digit_and_a_confusion_matrix_each_cell() {
        let mistake = |label| Mistake {
            verdict: Verdict {
                index: 0,
                label,
                predicted: 1,
                confidence: 0.9,
            },
            pixels: vec![1.0; 784],
        };
        let p = gallery(&[mistake(7), mistake(2), mistake(4)], "test").unwrap();
        assert_eq!(p.width as usize, GALLERY_COLUMNS * (84 + 2 * GAP) + 2 * GAP);
        let black = p.rgb.chunks(3).filter(|c| c == &[0, 0, 0]).count();
        assert!(black >= 3 * 84 * 84, "{black}");
        let mut m = vec![vec![0; 10]; 10];
        m[3][3] = 50;
        m[3][5] = 4;
        let p = confusion_matrix(&m, "test").unwrap();
        assert_eq!(p.width as usize, 2 * LINE + GAP + 10 * CELL + 2 * GAP);
        assert!(inked(&p) > 0.02);
        assert!(p.png().unwrap().starts_with(b"\x89PNG"));
    }
}
