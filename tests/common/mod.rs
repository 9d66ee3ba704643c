//! Helpers shared by the integration tests: a writer for the Python-2 pickle layout of the
//! real `mnist.pkl.gz`, gzip, temporary files and small random data sets.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use ndarray::Array2;
use nndl::rng::SeededRng;
use rand::{RngExt, SeedableRng};

use nndl::data::Dataset;

/// Writes pickles opcode by opcode as Python 2's `cPickle.dump(obj, f, 2)` does for NumPy
/// arrays (GLOBAL lines, SHORT_BINSTRING/BINSTRING byte strings, BINPUT/BINGET memo), so the
/// tests can make small files in the format of the real one.
pub struct Py2Pickler {
    pub out: Vec<u8>,
    memo: u8,
    names: HashMap<String, u8>,
}

impl Default for Py2Pickler {
    fn default() -> Self {
        Py2Pickler {
            out: vec![0x80, 2],
            memo: 0,
            names: HashMap::new(),
        }
    }
}

impl Py2Pickler {
    fn put(&mut self) -> u8 {
        let k = self.memo;
        self.out.extend([b'q', k]);
        self.memo += 1;
        k
    }

    /// Pushes a memoized object, writing it with `write` the first time.
    fn memoized(&mut self, key: &str, write: impl FnOnce(&mut Self)) {
        if let Some(&k) = self.names.get(key) {
            self.out.extend([b'h', k]);
        } else {
            write(self);
            let k = self.put();
            self.names.insert(key.to_string(), k);
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.memoized(&format!("{module}.{name}"), |p| {
            p.out.push(b'c');
            p.out.extend(format!("{module}\n{name}\n").as_bytes());
        });
    }

    fn short_string(&mut self, s: &[u8]) {
        self.out.push(b'U');
        self.out.push(s.len() as u8);
        self.out.extend(s);
    }

    fn int(&mut self, v: usize) {
        if v < 256 {
            self.out.extend([b'K', v as u8]);
        } else if v < 65536 {
            self.out.push(b'M');
            self.out.extend((v as u16).to_le_bytes());
        } else {
            self.out.push(b'J');
            self.out.extend((v as i32).to_le_bytes());
        }
    }

    /// A NumPy array of dtype `code` ("f4", "i8", …), little-endian, C order.
    pub fn array(&mut self, code: &str, shape: &[usize], data: &[u8]) {
        self.global("numpy.core.multiarray", "_reconstruct");
        self.global("numpy", "ndarray");
        self.out.extend([b'K', 0, 0x85]);
        self.put();
        self.short_string(b"b");
        self.put();
        self.out.push(0x87);
        self.put();
        self.out.push(b'R');
        self.put();
        self.out.push(b'(');
        self.out.extend([b'K', 1]);
        self.out.push(b'(');
        for &d in shape {
            self.int(d);
        }
        self.out.push(b't');
        self.put();
        self.memoized(&format!("dtype {code}"), |p| {
            p.global("numpy", "dtype");
            p.short_string(code.as_bytes());
            p.put();
            p.out.extend([0x89, 0x88, 0x87]);
            p.put();
            p.out.push(b'R');
            // cPickle memoizes the dtype here, before its BUILD: later arrays reuse it by BINGET.
        });
        // The dtype's BUILD state, written once after the first REDUCE (as cPickle does).
        if !self.names.contains_key(&format!("built {code}")) {
            self.out.push(b'(');
            self.out.extend([b'K', 3]);
            self.short_string(if code == "u1" { b"|" } else { b"<" });
            self.out.extend([b'N', b'N', b'N']);
            self.out.push(b'J');
            self.out.extend((-1i32).to_le_bytes());
            self.out.push(b'J');
            self.out.extend((-1i32).to_le_bytes());
            self.out.extend([b'K', 0, b't']);
            self.put();
            self.out.push(b'b');
            self.names.insert(format!("built {code}"), 0);
        }
        self.out.push(0x89);
        self.out.push(b'T');
        self.out.extend((data.len() as u32).to_le_bytes());
        self.out.extend(data);
        self.put();
        self.out.push(b't');
        self.put();
        self.out.push(b'b');
    }

    pub fn tuple2(&mut self) {
        self.out.push(0x86);
        self.put();
    }

    pub fn tuple3(&mut self) {
        self.out.push(0x87);
        self.put();
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'.');
        self.out
    }
}

/// One set as raw arrays: `n` images of 784 f32 pixels and i64 labels.
pub struct RawSet {
    pub pixels: Vec<f32>,
    pub labels: Vec<i64>,
}

impl RawSet {
    /// `n` images; pixel k of image i is ((i + start)·7 + k) mod 256 / 256 at every 97th pixel.
    pub fn new(n: usize, start: usize) -> Self {
        let mut pixels = vec![0f32; n * 784];
        for i in 0..n {
            for k in (0..784).step_by(97) {
                pixels[i * 784 + k] = (((i + start) * 7 + k) % 256) as f32 / 256.0;
            }
        }
        let labels = (start..start + n).map(|i| (i % 10) as i64).collect();
        RawSet { pixels, labels }
    }
}

/// The Python-2 pickle of the tuple `((x, y), …)` of `sets`, as in mnist.pkl.gz.
pub fn py2_mnist(sets: &[RawSet]) -> Vec<u8> {
    let mut p = Py2Pickler::default();
    for s in sets {
        let px: Vec<u8> = s.pixels.iter().flat_map(|v| v.to_le_bytes()).collect();
        p.array("f4", &[s.labels.len(), 784], &px);
        let lb: Vec<u8> = s.labels.iter().flat_map(|v| v.to_le_bytes()).collect();
        p.array("i8", &[s.labels.len()], &lb);
        p.tuple2();
    }
    p.tuple3();
    p.finish()
}

/// The standard 6/3/3 fixture sets, the same as scripts/make_fixtures.py writes.
pub fn small_sets() -> Vec<RawSet> {
    vec![RawSet::new(6, 0), RawSet::new(3, 6), RawSet::new(3, 9)]
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("in-memory write");
    e.finish().expect("in-memory gzip")
}

/// `bytes` gzipped as two gzip members one after the other (the first `at` bytes, then the
/// rest), as `cat a.gz b.gz` makes: one file to `gzip -d`.
pub fn gzip_two_members(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = gzip(&bytes[..at]);
    out.extend(gzip(&bytes[at..]));
    out
}

/// A fresh directory under the target dir for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The real MNIST file shipped in data/.
pub fn mnist_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist.pkl.gz")
}

/// `n` random inputs in [0, 1) of `inputs` values with random labels below `classes`.
pub fn random_dataset(n: usize, inputs: usize, classes: u8, rng: &mut SeededRng) -> Dataset {
    let images = Array2::from_shape_simple_fn((n, inputs), || rng.random::<f64>());
    Dataset::new(
        images,
        (0..n).map(|_| rng.random_range(0..classes)).collect(),
    )
}

pub fn rng(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}

/// Runs the `nndl` binary from the crate's directory.
pub fn nndl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run nndl")
}

/// Runs `nndl` with `args`, failing the test (after killing it) if it has not exited within
/// `bound`: for inputs that once made it hang.
pub fn nndl_within<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    args: &[S],
    bound: std::time::Duration,
) -> std::process::Output {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes)
                .map(|_| bytes)
                .unwrap_or_default()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > bound {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "nndl {args:?} still running after {bound:?}: hung\n{}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs the `nndl` binary: its exit code, standard output and standard error.
pub fn nndl_outcome(args: &[&str]) -> (Option<i32>, String, String) {
    let o = nndl(args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    (o.status.code(), out, stderr(&o))
}

/// A finished command's standard error.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An error and all its causes, as `main` prints them.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

/// One `<text>` element of an SVG drawn by plotters.
#[derive(Debug)]
pub struct SvgText {
    pub x: f64,
    pub y: f64,
    /// `start`, `middle` or `end`.
    pub anchor: String,
    pub text: String,
}

/// The text elements of an SVG drawn by plotters, in the order drawn.
pub fn svg_texts(svg: &str) -> Vec<SvgText> {
    let attr = |attrs: &str, name: &str| -> Option<String> {
        let key = format!(" {name}=\"");
        let start = format!(" {attrs}").find(&key)? + key.len() - 1;
        let rest = &attrs[start..];
        Some(rest[..rest.find('"')?].to_string())
    };
    svg.split("<text ")
        .skip(1)
        .filter_map(|chunk| {
            let (attrs, rest) = chunk.split_once('>')?;
            let (text, _) = rest.split_once("</text>")?;
            Some(SvgText {
                x: attr(attrs, "x")?.parse().ok()?,
                y: attr(attrs, "y")?.parse().ok()?,
                anchor: attr(attrs, "text-anchor").unwrap_or_default(),
                text: text.trim().to_string(),
            })
        })
        .collect()
}

/// A Python that can import NumPy, for the checks against it: the project's `.venv` (which
/// `scripts/compare_numpy.sh` and CI set up from scripts/requirements.txt), else `python3`.
/// `None` when neither has NumPy; the caller then skips its check and says so.
pub fn python_with_numpy() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    [venv, PathBuf::from("python3")].into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import numpy"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}
