//! A run as TensorBoard shows it (`--tensorboard DIR`): an event file that TensorBoard reads
//! while the run trains, as PyTorch's `SummaryWriter` and Keras's `TensorBoard` callback write
//! one. After every epoch it holds the epoch's scalars — accuracy and cost on the training and
//! evaluation data (those the run monitors), η, and the epoch's seconds — the first layer's
//! weights and the misclassified evaluation digits the network was surest of as images
//! ([`crate::report::images`], the pictures of `nndl inspect`), and a histogram of every
//! layer's weights and biases; the file is flushed after each epoch.
//!
//! The file is a sequence of TFRecords — the length (u64, little-endian), its masked CRC-32C,
//! the data, the data's masked CRC-32C — each holding one `Event` protocol buffer of
//! TensorFlow's `event.proto`/`summary.proto`. The few messages written are declared here as
//! `prost` structs (prost: the maintained protocol-buffer crate, whose derive encodes them
//! without a `.proto` compilation step; TensorFlow's whole schema is not needed), with
//! TensorFlow's field numbers; the CRC-32C is the `crc32c` crate's (hardware-accelerated,
//! widely used). The records are written here rather than through a TensorBoard-writing crate
//! (`tensorboard-rs`): the format is four fields of framing and four small messages, and CI
//! reads the files back with TensorBoard's own reader (`scripts/check_tensorboard.py`).
//!
//! A failure to write (a full disk, say) stops the event file, not the run: the first error
//! is kept and reported when the run ends, as for the metrics file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::view::Snapshot;
use crate::report::images;
use crate::train::{EpochRecord, Observer};

/// Why an event file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TensorBoardError {
    #[error("cannot write the TensorBoard event file {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw {tag} for TensorBoard: {message}")]
    Draw { tag: String, message: String },
}

/// `tensorflow.Event` (event.proto): one record of an event file. Only the fields nndl writes;
/// `file_version` and `summary` are members of the message's `oneof what`, which is the same
/// on the wire as two optional fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The epoch.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// `brain.Event:2`, in the first record of a file.
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// `tensorflow.Summary` (summary.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// `tensorflow.Summary.Value`: a tag and one of a scalar, an image or a histogram (members of
/// its `oneof value`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    pub image: Option<Image>,
    #[prost(message, optional, tag = "5")]
    pub histo: Option<Histogram>,
}

/// `tensorflow.Summary.Image`: an encoded (PNG) image.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 3: RGB.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `tensorflow.HistogramProto`: bucket `i` counts the values up to `bucket_limit[i]` above the
/// bucket before it (the first from `min`, the last to `max`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// The buckets of a histogram of weights, of equal width from the smallest to the largest.
pub const HISTOGRAM_BUCKETS: usize = 30;

/// TFRecord's checksum: the CRC-32C of `data`, rotated right by 15 bits and offset by
/// 0xa282ead8 (TensorFlow's `crc32c::Mask`, so that a CRC of data holding CRCs stays strong).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` framed as one TFRecord: length, its masked CRC, data, its masked CRC.
pub fn record(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// The records of `bytes` (a whole event file), each checked against its two CRCs; `None` at
/// the first one that is cut short or does not match.
pub fn read_records(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let length: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
        let crc = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
        if crc != masked_crc32c(&length) {
            return None;
        }
        let n = usize::try_from(u64::from_le_bytes(length)).ok()?;
        let end = n.checked_add(16)?;
        let data = bytes.get(12..12 + n)?;
        let crc = u32::from_le_bytes(bytes.get(12 + n..end)?.try_into().ok()?);
        if crc != masked_crc32c(data) {
            return None;
        }
        records.push(data.to_vec());
        bytes = &bytes[end..];
    }
    Some(records)
}

/// Seconds since the Unix epoch, now.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An event file being written.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if need be and a new event file in it,
    /// `events.out.tfevents.SECONDS.nndl.PID` (TensorBoard reads every file whose name holds
    /// `tfevents`), starting with the file-version record.
    pub fn create(dir: &Path) -> Result<Self, TensorBoardError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TensorBoardError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let name = format!(
            "events.out.tfevents.{}.nndl.{}",
            now() as u64,
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(io(&path))?;
        let mut writer = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        writer.write(&Event {
            wall_time: now(),
            step: 0,
            file_version: Some("brain.Event:2".to_string()),
            summary: None,
        })?;
        writer.flush()?;
        Ok(writer)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event.
    pub fn write(&mut self, event: &Event) -> Result<(), TensorBoardError> {
        let data = prost::Message::encode_to_vec(event);
        self.out
            .write_all(&record(&data))
            .map_err(|source| TensorBoardError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Writes what is buffered to the file, for TensorBoard to read.
    pub fn flush(&mut self) -> Result<(), TensorBoardError> {
        self.out.flush().map_err(|source| TensorBoardError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// A scalar value.
fn scalar(tag: &str, value: f64) -> Value {
    Value {
        tag: tag.to_string(),
        simple_value: Some(value as f32),
        ..Value::default()
    }
}

/// A picture as an image value.
fn image(tag: &str, picture: &images::Picture) -> Result<Value, TensorBoardError> {
    let draw = |message: String| TensorBoardError::Draw {
        tag: tag.to_string(),
        message,
    };
    Ok(Value {
        tag: tag.to_string(),
        image: Some(Image {
            height: picture.height as i32,
            width: picture.width as i32,
            colorspace: 3,
            encoded_image_string: picture.png().map_err(|e| draw(e.to_string()))?,
        }),
        ..Value::default()
    })
}

/// A histogram of `values` in [`HISTOGRAM_BUCKETS`] buckets of equal width.
pub fn histogram(values: &[f64]) -> Histogram {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() || !(min.is_finite() && max.is_finite()) {
        return Histogram::default();
    }
    let width = (max - min) / HISTOGRAM_BUCKETS as f64;
    let mut bucket = vec![0.0; HISTOGRAM_BUCKETS];
    for &v in values {
        let k = if width > 0.0 {
            (((v - min) / width) as usize).min(HISTOGRAM_BUCKETS - 1)
        } else {
            0
        };
        bucket[k] += 1.0;
    }
    let mut bucket_limit: Vec<f64> = (1..HISTOGRAM_BUCKETS)
        .map(|k| min + k as f64 * width)
        .collect();
    bucket_limit.push(max);
    Histogram {
        min,
        max,
        num: values.len() as f64,
        sum: values.iter().sum(),
        sum_squares: values.iter().map(|v| v * v).sum(),
        bucket_limit,
        bucket,
    }
}

/// The values of one epoch's scalars, tag by tag: those of `record` that were measured.
pub fn scalars(record: &EpochRecord) -> Vec<(&'static str, f64)> {
    let mut all = vec![("accuracy/evaluation", record.accuracy())];
    if let Some(p) = record.training_accuracy() {
        all.push(("accuracy/training", p));
    }
    if let Some(c) = record.evaluation_cost {
        all.push(("cost/evaluation", c));
    }
    if let Some(c) = record.training_cost {
        all.push(("cost/training", c));
    }
    all.extend([
        ("eta", record.eta),
        ("seconds/epoch", record.train_seconds + record.eval_seconds),
        ("seconds/training", record.train_seconds),
        ("seconds/evaluation", record.eval_seconds),
    ]);
    all
}

/// The pictures and histograms of a snapshot, as summary values.
fn snapshot_values(snapshot: &Snapshot, set: &str) -> Result<Vec<Value>, TensorBoardError> {
    let draw = |tag: &str| {
        let tag = tag.to_string();
        move |message| TensorBoardError::Draw { tag, message }
    };
    let tiles = images::weight_tiles(&snapshot.first_layer).map_err(draw("first layer"))?;
    let gallery = images::gallery(&snapshot.mistakes, set).map_err(draw("mistakes"))?;
    let mut values = vec![
        image("images/first_layer_weights", &tiles)?,
        image(&format!("images/misclassified_{set}"), &gallery)?,
    ];
    for p in &snapshot.parameters {
        values.push(Value {
            tag: p.name.clone(),
            histo: Some(histogram(&p.values)),
            ..Value::default()
        });
    }
    Ok(values)
}

/// The [`Observer`] that writes a run's event file.
pub struct TensorBoard {
    writer: EventWriter,
    /// The evaluation set's name (`validation`, `test`), for the gallery's title and tag.
    set: &'static str,
    /// The current epoch's pictures and histograms, until its scalars come.
    pending: Vec<Value>,
    /// The first error; nothing more is written after it.
    error: Option<TensorBoardError>,
}

impl TensorBoard {
    /// A new event file in `dir` for a run scored on the `set` data.
    pub fn create(dir: &Path, set: &'static str) -> Result<Self, TensorBoardError> {
        Ok(TensorBoard {
            writer: EventWriter::create(dir)?,
            set,
            pending: Vec::new(),
            error: None,
        })
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// Ends the file; the first error writing it, if any.
    pub fn finish(mut self) -> Result<(), TensorBoardError> {
        match self.error {
            Some(e) => Err(e),
            None => self.writer.flush(),
        }
    }

    fn write_epoch(&mut self, record: &EpochRecord) -> Result<(), TensorBoardError> {
        let mut value: Vec<Value> = scalars(record)
            .into_iter()
            .map(|(tag, v)| scalar(tag, v))
            .collect();
        value.append(&mut self.pending);
        self.writer.write(&Event {
            wall_time: now(),
            step: record.epoch as i64,
            file_version: None,
            summary: Some(Summary { value }),
        })?;
        self.writer.flush()
    }
}

impl Observer for TensorBoard {
    fn epoch(&mut self, record: &EpochRecord, _order: &[usize]) -> ControlFlow<()> {
        if self.error.is_none() {
            self.error = self.write_epoch(record).err();
        }
        ControlFlow::Continue(())
    }

    fn wants_snapshot(&self) -> Option<usize> {
        self.error.is_none().then_some(images::GALLERY)
    }

    fn snapshot(&mut self, _record: &EpochRecord, snapshot: &Snapshot) {
        match snapshot_values(snapshot, self.set) {
            Ok(values) => self.pending = values,
            Err(e) => self.error = Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_castagnolis_and_masked_as_tensorflow_masks_it() {
        // CRC-32C's check value (RFC 3720 §B.4, and every CRC catalogue): "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // TensorFlow's mask of it, ((c >> 15) | (c << 17)) + 0xa282ead8, worked out apart.
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
        // 32 bytes of zeros (RFC 3720 §B.4): 0x8a9136aa.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
    }

    #[test]
    fn a_record_round_trips_and_a_flipped_bit_is_caught() {
        let event = Event {
            wall_time: 1.5,
            step: 7,
            file_version: None,
            summary: Some(Summary {
                value: vec![scalar("accuracy/evaluation", 95.25)],
            }),
        };
        let data = prost::Message::encode_to_vec(&event);
        let mut bytes = record(&data);
        bytes.extend(record(b"second"));
        assert_eq!(bytes.len(), data.len() + 16 + 6 + 16);
        let back = read_records(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        let decoded: Event = prost::Message::decode(back[0].as_slice()).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(back[1], b"second");
        for at in [3, 9, 14, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert_eq!(read_records(&bad), None, "bit flipped at {at}");
        }
        assert_eq!(read_records(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn a_histogram_counts_every_value_in_its_bucket() {
        let h = histogram(&[0.0, 0.1, 0.5, 1.0, 1.0]);
        assert_eq!((h.min, h.max, h.num), (0.0, 1.0, 5.0));
        assert_eq!(h.bucket.len(), HISTOGRAM_BUCKETS);
        assert_eq!(h.bucket.iter().sum::<f64>(), 5.0);
        assert_eq!(
            (h.bucket[0], h.bucket[3], h.bucket[15], h.bucket[29]),
            (1.0, 1.0, 1.0, 2.0)
        );
        assert_eq!(*h.bucket_limit.last().unwrap(), 1.0);
        assert_eq!(histogram(&[2.0; 4]).bucket[0], 4.0);
    }
}
