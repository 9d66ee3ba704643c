//! Chapter 6 from the command line: a short run above an accuracy floor, model files that
//! round-trip and are checked when read, `eval` and `vote` on them, and a one-line error with
//! exit code 2 for every layer list that cannot be built.

mod common;

use common::*;

/// `nndl train` with a bad `--layers` must exit 2, before loading anything, with `want` in
/// its one-line message.
#[test]
fn bad_layer_lists_are_refused_with_exit_code_2() {
    let cases = [
        (
            "conv:20:5,pool:5,softmax",
            "5×5 pooling does not divide the 24×24 feature maps",
        ),
        (
            "conv:20:29,softmax",
            "a 29×29 filter is larger than its 28×28 input",
        ),
        ("softmax,fc:100", "the softmax layer must be the last"),
        ("conv:20:5,lstm:10,softmax", "unknown kind `lstm`"),
        ("fc:100", "the last layer must be `softmax`"),
        (
            "fc:100:dropout=1.5,softmax",
            "dropout must be a probability",
        ),
        ("fc:100,conv:2:2,softmax", "cannot follow a fully-connected"),
        ("fc:100000000000,softmax", "more than the"),
    ];
    for (layers, want) in cases {
        // A data path that does not exist: the list must be refused before it is read.
        let o = nndl(&["train", "--data", "no/such/file.pkl.gz", "--layers", layers]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{layers}: {err}");
        assert!(err.contains(want), "{layers}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{layers}: {err}");
        assert_eq!(err.matches(want).count(), 1, "said twice: {err}");
    }
    let o = nndl(&[
        "train",
        "--layers",
        "fc:10,softmax",
        "--cost",
        "cross-entropy",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("log-likelihood"));
}

/// One epoch on 5,000 images of a small ReLU network clears 80% (it reaches about 88%).
#[test]
fn a_short_conv_run_learns() {
    let dir = temp_dir("layers_short_run");
    let model = dir.join("conv.json");
    let data = mnist_path();
    let o = nndl(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--layers",
        "conv:20:5,pool:2,fc:100,softmax",
        "--activation",
        "relu",
        "--eta",
        "0.03",
        "--lambda",
        "0.1",
        "--epochs",
        "1",
        "--train-size",
        "5000",
        "--precision",
        "f32",
        "--seed",
        "1",
        "--save",
        model.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let line = out
        .lines()
        .find(|l| l.starts_with("Epoch 0:"))
        .expect("an epoch line");
    let correct: usize = line["Epoch 0: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(correct > 8000, "{line}");

    // `eval` reads the saved file and scores it the same; `vote` of one network is that network.
    let o = nndl(&[
        "eval",
        "--data",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    let eval = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        eval.contains(&format!("Accuracy on the test data: {correct} / 10000")),
        "{eval}"
    );
    assert!(eval.contains("layers conv:20:5:act=relu,pool:2"), "{eval}");
    let m = model.to_str().unwrap();
    let o = nndl(&[
        "vote",
        "--data",
        data.to_str().unwrap(),
        "--model",
        m,
        "--model",
        m,
        "--model",
        m,
    ]);
    let vote = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        vote.contains(&format!(
            "Majority vote of 3 networks on the test data: {correct} / 10000"
        )),
        "{vote}"
    );
}

/// `--save-init` then `--init` from it: the file reads back to the same network, bit for bit,
/// and the run from it repeats the run that wrote it.
#[test]
fn layer_files_round_trip_and_repeat_the_run() {
    let dir = temp_dir("layers_round_trip");
    let small = fixture("py3_p2.pkl.gz");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            small.to_str().unwrap(),
            "--layers",
            "conv:3:5,pool:2,fc:12:dropout=0.5,softmax",
            "--activation",
            "tanh",
            "--epochs",
            "2",
            "--mini-batch",
            "3",
            "--lambda",
            "0.5",
            "--quiet",
        ];
        args.extend(extra);
        let o = nndl(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let (init, init2, a, b) = (
        path("init.json"),
        path("init2.json"),
        path("a.json"),
        path("b.json"),
    );
    run(&["--save-init", &init, "--save", &a]);
    run(&["--init", &init, "--save-init", &init2, "--save", &b]);
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(&init), read(&init2));
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&init), read(&a), "training changed the weights");
}

/// A change made to a good model file.
type Change = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn bad_layer_files_say_what_is_wrong() {
    let dir = temp_dir("layers_bad_files");
    let small = fixture("py3_p2.pkl.gz");
    let good = dir.join("good.json");
    let o = nndl(&[
        "train",
        "--data",
        small.to_str().unwrap(),
        "--layers",
        "conv:2:5,pool:2,softmax",
        "--epochs",
        "1",
        "--mini-batch",
        "2",
        "--quiet",
        "--save",
        good.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&good).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|j| j["layers"][0]["kind"] = "lstm".into()),
            "unknown variant `lstm`",
        ),
        (
            Box::new(|j| j["layers"][0]["pool"] = 5.into()),
            "does not divide",
        ),
        (
            Box::new(|j| {
                j["layers"][0]["weights"][0][0]
                    .as_array_mut()
                    .unwrap()
                    .pop()
                    .map(|_| ())
                    .unwrap()
            }),
            "weights is not 2×1×5×5",
        ),
        (
            Box::new(|j| j["layers"][1]["biases"] = serde_json::json!([0.0])),
            "biases is not 10 values",
        ),
        (
            Box::new(|j| {
                let l = j["layers"].as_array_mut().unwrap();
                l.swap(0, 1)
            }),
            "",
        ),
    ];
    for (i, (change, want)) in cases.iter().enumerate() {
        let mut j = json.clone();
        change(&mut j);
        let bad = write_file(&dir, &format!("bad{i}.json"), j.to_string().as_bytes());
        let o = nndl(&[
            "eval",
            "--data",
            small.to_str().unwrap(),
            "--model",
            bad.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert!(
            !o.status.success() && o.status.code() != Some(101),
            "case {i}: {err}"
        );
        assert!(err.contains(want), "case {i}: {err}");
    }
    // A NaN weight, as Python's json.dump writes it.
    json["layers"][0]["weights"][0][0][0][0] = 12345.5.into();
    let nan = json.to_string().replace("12345.5", "NaN");
    let bad = write_file(&dir, "nan.json", nan.as_bytes());
    let o = nndl(&[
        "eval",
        "--data",
        small.to_str().unwrap(),
        "--model",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not finite"), "{}", stderr(&o));
}

#[test]
fn the_vote_is_the_most_named_digit_the_smallest_on_a_tie() {
    use nndl::run::eval::majority;
    let votes = majority(&[vec![3, 1, 7], vec![3, 2, 8], vec![5, 2, 9]]);
    assert_eq!(votes, vec![3, 2, 7]);
}
