#!/usr/bin/env python3
"""NumPy peer of benches/npz_io.rs: times numpy.load on the same NPZ files the bench wrote.

Usage (after `cargo bench --bench npz_io` has written the files):
    benches/peers/setup_numpy_venv.sh
    target/peers-venv/bin/python benches/peers/npz_numpy.py [RUNS]
Files are read from $NPZ_BENCH_DIR (default: <repo>/target/npz-bench). Prints the median,
min and max seconds of each case, labelled like the criterion benches.
"""
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIR = os.environ.get("NPZ_BENCH_DIR", os.path.join(ROOT, "target", "npz-bench"))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 10


def headers(path):
    """What header-only validation does, the NumPy way: list members, read each .npy header."""
    out = {}
    with np.load(path) as f:
        for key in f.files:
            with f.zip.open(key + ".npy") as member:
                version = np.lib.format.read_magic(member)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read(member)
                out[key] = (shape, fortran, dtype)
    return out


def full_load(path):
    with np.load(path) as f:
        return f["diffraction"]


def full_check(path):
    """Load every array and run the value checks validate does (finite, >= 0)."""
    with np.load(path) as f:
        d = f["diffraction"]
        ok = bool(np.isfinite(d).all() and (d >= 0).all())
        for key in f.files:
            if key != "diffraction":
                f[key]
    return ok


def timed(fn, path, runs):
    fn(path)  # warm the page cache, as criterion's warm-up does
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


def main():
    cases = [
        ("npz_validate_header_only/small_5MB_stored", headers, "bench_small_stored.npz", RUNS * 10),
        ("npz_validate_header_only/stored_300MB", headers, "bench_stored.npz", RUNS * 10),
        ("npz_validate_header_only/deflated_300MB", headers, "bench_deflated.npz", RUNS * 10),
        ("npz_full_300MB/load_f32/stored", full_load, "bench_stored.npz", RUNS),
        ("npz_full_300MB/load_f32/deflated", full_load, "bench_deflated.npz", RUNS),
        ("npz_full_300MB/validate/stored", full_check, "bench_stored.npz", RUNS),
        ("npz_full_300MB/validate/deflated", full_check, "bench_deflated.npz", RUNS),
    ]
    print(f"numpy {np.__version__}, files in {DIR}", flush=True)
    for label, fn, name, runs in cases:
        path = os.path.join(DIR, name)
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `cargo bench --bench npz_io` first (it writes the files)")
        median, lo, hi = timed(fn, path, runs)
        print(f"{label:45s} median {median * 1e3:10.3f} ms  (min {lo * 1e3:.3f}, max {hi * 1e3:.3f}, {runs} runs)", flush=True)


if __name__ == "__main__":
    main()
