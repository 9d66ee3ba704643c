"""Building `nndl` per backend and running it or a NumPy program, parsing the lines both print
(`Backend: …`, `Loaded … in S seconds`, `Epoch k: c / n (p%)`, `Training took S seconds`).
Shared by seed_runs.py, crosscheck.py and compare_numpy.py. Standard library only."""

import os
import platform
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = {"default": [], "openblas": ["--features", "openblas"], "accelerate": ["--features", "accelerate"]}


def available_backends():
    """The pure-Rust default, OpenBLAS when the system library is installed, Accelerate on macOS."""
    found = ["default"]
    if platform.system() == "Darwin":
        found.append("accelerate")
    elif shutil.which("pkg-config") and subprocess.run(
            ["pkg-config", "--exists", "openblas"], capture_output=True).returncode == 0:
        found.append("openblas")
    elif any(os.path.exists(p) for p in ("/usr/lib/x86_64-linux-gnu/libopenblas.so",
                                         "/usr/lib/aarch64-linux-gnu/libopenblas.so")):
        found.append("openblas")
    return found


def cpu_name():
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build(backend):
    """Builds nndl for `backend` in its own target dir (so switching backends rebuilds nothing)."""
    target = os.path.join(ROOT, "target", "backend-" + backend)
    print(f"Building nndl for the {backend} backend (cargo build --release; the first build takes "
          "a few minutes)…", file=sys.stderr, flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--target-dir", target] + FEATURES[backend],
                   cwd=ROOT, check=True)
    return os.path.join(target, "release", "nndl")


def run(cmd, env=None):
    """Runs a training command and returns what it printed, parsed."""
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    out = proc.stdout
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}{proc.stderr}")
    accuracy = [float(p) for p in re.findall(r"^Epoch \d+: \d+ / \d+ \(([\d.]+)%\)$", out, re.M)]
    took = re.search(r"^Training took ([\d.]+) seconds", out, re.M)
    loaded = re.search(r"^Loaded .* in ([\d.]+) seconds", out, re.M)
    backend = re.search(r"^Backend: (.*)$", out, re.M)
    if not (accuracy and took and loaded and backend):
        sys.exit(f"unexpected output from {' '.join(cmd)}:\n{out}")
    return {
        "accuracy": accuracy,
        "epoch_lines": re.findall(r"^Epoch .*$", out, re.M),
        "seconds": float(took.group(1)),
        "load_seconds": float(loaded.group(1)),
        "backend": backend.group(1),
    }


def run_logged(cmd, label):
    """`run`, then one line on stderr with the run's final and best accuracy and its time."""
    r = run(cmd)
    print(f"{label}: final {r['accuracy'][-1]:.2f}%, best {max(r['accuracy']):.2f}%, {r['seconds']:.2f} s",
          file=sys.stderr)
    return r


def short_backend(line):
    """The backend's name from a `Backend:` line, without its kernel and thread details."""
    return line.split(":")[0].split(",")[0]
