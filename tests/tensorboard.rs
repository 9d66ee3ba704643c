//! `--tensorboard` and `nndl inspect` from the command line: the event file's records and
//! messages read back (every scalar equal to the metrics file's, the images decoded, a
//! histogram per parameter array), an unwritable directory refused before training, and the
//! inspect command's three pictures read back. TensorBoard's own reader checks the same files
//! in CI (`scripts/check_tensorboard.py`).

mod common;

use std::path::Path;

use common::*;
use nndl::report::metrics::Row;
use nndl::report::tensorboard::{read_records, Event};

/// A PNG's width and height, and whether more than one colour is in it.
fn read_png(bytes: &[u8]) -> (u32, u32, bool) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let pixels = &buf[..info.buffer_size()];
    let first = &pixels[..3];
    let varied = pixels.chunks(3).any(|p| p != first);
    (info.width, info.height, varied)
}

/// Every event of the one event file in `dir`.
fn events(dir: &Path) -> Vec<Event> {
    let files: Vec<_> = std::fs::read_dir(dir)
        .expect("the run directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    let bytes = std::fs::read(&files[0]).expect("the event file");
    read_records(&bytes)
        .expect("every record's CRCs hold")
        .iter()
        .map(|r| prost::Message::decode(r.as_slice()).expect("an Event"))
        .collect()
}

#[test]
fn a_runs_event_file_holds_the_metrics_the_images_and_the_histograms() {
    let dir = temp_dir("tensorboard-train");
    let metrics = dir.join("m.jsonl");
    let run = dir.join("runs/a");
    let data = mnist_path();
    let (code, out, err) = nndl_outcome(&[
        "train",
        "--net",
        "network2",
        "--sizes",
        "784,20,10",
        "--epochs",
        "2",
        "--train-size",
        "1000",
        "--eval-on",
        "validation",
        "--monitor",
        "train-cost,train-acc,eval-cost",
        "--data",
        data.to_str().unwrap(),
        "--metrics",
        metrics.to_str().unwrap(),
        "--tensorboard",
        run.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let rows: Vec<Row> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events = events(&run);
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    assert_eq!(events.len(), 1 + rows.len());
    for (event, row) in events[1..].iter().zip(&rows) {
        assert_eq!(event.step, row.epoch as i64);
        let values = &event.summary.as_ref().expect("a summary").value;
        let scalar = |tag: &str| {
            values
                .iter()
                .find(|v| v.tag == tag)
                .and_then(|v| v.simple_value)
                .unwrap_or_else(|| panic!("no scalar {tag}"))
        };
        assert_eq!(
            scalar("accuracy/evaluation"),
            row.evaluation_accuracy as f32
        );
        assert_eq!(
            scalar("accuracy/training"),
            row.training_accuracy.unwrap() as f32
        );
        assert_eq!(
            scalar("cost/evaluation"),
            row.evaluation_cost.unwrap() as f32
        );
        assert_eq!(scalar("cost/training"), row.training_cost.unwrap() as f32);
        assert_eq!(scalar("eta"), row.eta as f32);
        assert_eq!(
            scalar("seconds/epoch"),
            (row.train_seconds + row.eval_seconds) as f32
        );
        let image = |tag: &str| {
            let image = values
                .iter()
                .find(|v| v.tag == tag)
                .and_then(|v| v.image.as_ref())
                .unwrap_or_else(|| panic!("no image {tag}"));
            let (w, h, varied) = read_png(&image.encoded_image_string);
            assert_eq!((w as i32, h as i32), (image.width, image.height));
            assert!(varied, "{tag} is blank");
        };
        image("images/first_layer_weights");
        image("images/misclassified_validation");
        for tag in [
            "layer1/weights",
            "layer1/biases",
            "layer2/weights",
            "layer2/biases",
        ] {
            let h = values
                .iter()
                .find(|v| v.tag == tag)
                .and_then(|v| v.histo.as_ref())
                .unwrap_or_else(|| panic!("no histogram {tag}"));
            let n = if tag == "layer1/weights" { 784 * 20 } else { 0 };
            if n > 0 {
                assert_eq!(h.num, n as f64);
            }
            assert_eq!(h.bucket.iter().sum::<f64>(), h.num);
        }
    }
}

#[test]
fn an_unwritable_tensorboard_directory_is_refused_before_training() {
    let dir = temp_dir("tensorboard-refused");
    let file = write_file(&dir, "not-a-dir", b"x");
    let metrics = dir.join("m.csv");
    let (code, out, err) = nndl_outcome(&[
        "train",
        "--epochs",
        "1",
        "--train-size",
        "100",
        "--metrics",
        metrics.to_str().unwrap(),
        "--tensorboard",
        file.join("run").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("cannot write"), "{err}");
    assert!(!out.contains("Epoch"), "{out}");
    assert!(!metrics.exists());
}

#[test]
fn inspect_draws_both_kinds_of_network() {
    let dir = temp_dir("tensorboard-inspect");
    let data = mnist_path();
    let data = data.to_str().unwrap();
    for (name, args) in [
        ("fc", vec!["--sizes", "784,16,10"]),
        (
            "conv",
            vec!["--layers", "conv:4:5,pool:2,softmax", "--precision", "f32"],
        ),
    ] {
        let model = dir.join(format!("{name}.json"));
        let mut train = vec!["train", "--epochs", "1", "--train-size", "500", "--quiet"];
        train.extend(&args);
        train.extend(["--data", data, "--save", model.to_str().unwrap()]);
        let (code, out, err) = nndl_outcome(&train);
        assert_eq!(code, Some(0), "{out}{err}");
        let (code, out, err) = nndl_outcome(&[
            "inspect",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data,
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("true\\predicted"), "{out}");
        assert!(out.contains(" / 10000 right"), "{out}");
        for what in ["confusion", "mistakes", "weights"] {
            let png = std::fs::read(dir.join(format!("{name}-{what}.png"))).unwrap();
            let (w, h, varied) = read_png(&png);
            assert!(w >= 400 && h >= 100, "{name}-{what}: {w}×{h}");
            assert!(varied, "{name}-{what} is blank");
        }
    }
    let (code, _, err) = nndl_outcome(&["inspect", "--model", "no-such.json", "--data", data]);
    assert_ne!(code, Some(0));
    assert!(err.contains("no-such.json"), "{err}");
}
