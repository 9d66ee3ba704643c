//! What loading takes in memory: the sets are made in the run's precision with their byte copy
//! and nothing more, and a header declaring more than the memory here (or the address space,
//! `ulimit -v`) is refused before anything is allocated. Each case runs the `nndl` binary on
//! generated IDX files (nothing large is committed) and reads the child's peak resident memory
//! from the kernel (`wait4`), so the tests here run one at a time in their own binary.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::temp_dir;
use flate2::write::GzEncoder;
use nndl::data::idx;

/// An IDX header of unsigned bytes with `dims`.
fn header(dims: &[u32]) -> Vec<u8> {
    let mut h = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        h.extend(d.to_be_bytes());
    }
    h
}

/// Writes `path` gzipped: `head`, then `n` rows of `row` bytes, row i all `fill(i)`, made and
/// compressed a row at a time.
fn write_gz(path: &Path, head: &[u8], n: usize, row: usize, fill: impl Fn(usize) -> u8) {
    let file = File::create(path).expect("create the file");
    let mut gz = GzEncoder::new(
        std::io::BufWriter::new(file),
        flate2::Compression::default(),
    );
    gz.write_all(head).unwrap();
    let mut bytes = vec![0u8; row];
    for i in 0..n {
        bytes.fill(fill(i));
        gz.write_all(&bytes).unwrap();
    }
    gz.finish().unwrap().flush().unwrap();
}

/// A directory of IDX files, gzipped, with `n` training images (image i's pixels all i mod
/// 256) and labels, and 100 test images.
fn idx_dir(name: &str, n: usize) -> PathBuf {
    let dir = temp_dir(name);
    for (images, labels, count) in [
        (idx::TRAIN_IMAGES, idx::TRAIN_LABELS, n),
        (idx::TEST_IMAGES, idx::TEST_LABELS, 100),
    ] {
        let gz = |name: &str| dir.join(format!("{name}.gz"));
        write_gz(
            &gz(images),
            &header(&[count as u32, 28, 28]),
            count,
            784,
            |i| (i % 256) as u8,
        );
        write_gz(&gz(labels), &header(&[count as u32]), count, 1, |i| {
            (i % 10) as u8
        });
    }
    dir
}

/// What a run of `nndl` did: its exit code, standard error and peak resident memory in bytes.
struct Run {
    code: Option<i32>,
    stderr: String,
    peak: u64,
}

/// Runs `nndl args` with the address space limited to `address_space` bytes (`ulimit -v`) if
/// given, waiting for it with `wait4` to learn its peak resident memory.
#[allow(clippy::zombie_processes)] // reaped by wait4, which `Child::wait` does not expose
fn run(args: &[&str], address_space: Option<u64>, dir: &Path) -> Run {
    let err_path = dir.join("stderr.txt");
    let mut command = match address_space {
        Some(bytes) => {
            let mut c = Command::new("sh");
            let limit = format!("ulimit -v {} && exec \"$0\" \"$@\"", bytes / 1024);
            c.arg("-c").arg(limit).arg(env!("CARGO_BIN_EXE_nndl"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_nndl")),
    };
    let child = command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("run nndl");
    let mut status = 0;
    // SAFETY: wait4 writes only into `status` and `usage`, which outlive the call; the child is
    // ours and not waited for elsewhere.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Run {
        code,
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        // ru_maxrss is in KiB on Linux.
        peak: usage.ru_maxrss as u64 * 1024,
    }
}

fn train_args<'a>(dir: &'a str, precision: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        dir,
        "--precision",
        precision,
        "--epochs",
        "1",
        "--train-size",
        "10",
        "--mini-batch",
        "10",
    ]
}

const MB: f64 = 1e6;

#[test]
fn loading_takes_the_sets_in_the_runs_precision_and_their_bytes_and_no_more() {
    // 100,000 training images and 100 test images: 78.5 MB of pixels as bytes, 314 MB in f32,
    // 628 MB in f64. Before, loading kept the bytes, a copy of the split and every pixel in
    // f64 (then in f32 too for an f32 run): 1.1 GB for an f32 run.
    let n = 100_000;
    let dir = idx_dir("memory_idx", n);
    let dir_text = dir.to_str().unwrap();
    let pixels = ((n + 100) * 784) as f64;
    for (precision, size) in [("f32", 4.0), ("f64", 8.0)] {
        let r = run(&train_args(dir_text, precision), None, &dir);
        assert_eq!(r.code, Some(0), "{precision}: {}", r.stderr);
        let data = pixels * size;
        // The sets in the run's precision and their byte copy are 1.25 (f32) and 1.125 (f64)
        // times the data; what the process needs besides is well under 150 MB.
        let bound = 1.3 * data + 150.0 * MB;
        assert!(
            (r.peak as f64) < bound,
            "{precision}: peak {:.0} MB for {:.0} MB of images, more than the {:.0} MB bound",
            r.peak as f64 / MB,
            data / MB,
            bound / MB
        );
    }
}

#[test]
fn an_idx_header_just_under_the_cap_is_refused_beyond_the_memory_here() {
    // A 1.1 MB gzip whose header declares 1,369,000 images, just under the 1 GiB cap, and
    // holds them (zeros): 1.07 GB as bytes, 5.4 GB with their values in f32, 9.7 GB in f64.
    // Before, it took 10 GiB (the bytes, a copy, every pixel in f64), here an abort on a
    // failed allocation; now it is refused from the header, naming the size and the limit.
    let n: u32 = 1_369_000;
    let dir = temp_dir("memory_idx_cap");
    write_gz(
        &dir.join(format!("{}.gz", idx::TRAIN_IMAGES)),
        &header(&[n, 28, 28]),
        n as usize,
        784,
        |_| 0,
    );
    write_gz(
        &dir.join(format!("{}.gz", idx::TRAIN_LABELS)),
        &header(&[n]),
        n as usize,
        1,
        |_| 0,
    );
    for (name, count) in [(idx::TEST_IMAGES, 3u32), (idx::TEST_LABELS, 3)] {
        let head = match name {
            idx::TEST_IMAGES => header(&[count, 28, 28]),
            _ => header(&[count]),
        };
        let row = if name == idx::TEST_IMAGES { 784 } else { 1 };
        write_gz(&dir.join(format!("{name}.gz")), &head, 3, row, |_| 0);
    }
    let dir_text = dir.to_str().unwrap();
    let limit: u64 = 3 << 30;
    for (precision, needed) in [("f32", "5.4 GB"), ("f64", "9.7 GB")] {
        let r = run(&train_args(dir_text, precision), Some(limit), &dir);
        assert_eq!(
            r.code,
            Some(1),
            "{precision}: refused, not aborted: {}",
            r.stderr
        );
        let expected = format!(
            "the header's {n} images of 28×28, in {precision} with their bytes, take {needed}"
        );
        assert!(r.stderr.contains(&expected), "{precision}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("more than the 3.2 GB (3221225472 bytes) this process may use"),
            "{precision}: {}",
            r.stderr
        );
        assert!(
            r.peak < 100 << 20,
            "{precision}: refused before allocating, but the peak was {} MB",
            r.peak >> 20
        );
    }
}
