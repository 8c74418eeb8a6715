"""dose-overlap's PtychoPINN inference adapter: reconstructs both splits of a job with its trained
bundle, through PtychoPINN's own inference API, and stitches the patches onto objectGuess's grid.

Shipped inside the dose-overlap binary and written into each job's artifact dir; run there with
$PTYCHO_PYTHON (or the trainer's interpreter). It imports PtychoPINN at run time and copies none
of its code. Output: one NPZ with `train_object` and `test_object` (complex64, the shape of each
split's objectGuess), written atomically. Patch placement follows the native solver's rule:
top-left corner round(c - N/2), ties to even; patches are averaged with the probe's |P|^2 as
weight, and pixels no patch reaches are 1 (the native solver's flat start).
"""

import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle-dir", required=True, help="folder holding wts.h5.zip")
    p.add_argument("--train", required=True, help="training split NPZ")
    p.add_argument("--test", required=True, help="test split NPZ")
    p.add_argument("--out", required=True, help="NPZ to write (train_object, test_object)")
    p.add_argument("--gridsize", type=int, required=True)
    p.add_argument("--neighbor-count", type=int, required=True)
    p.add_argument("--seed", type=int, default=123)
    return p.parse_args()


def stitch(patches, xs, ys, probe, shape):
    """Probe-weighted average of (B, N, N) complex patches centred at (xs, ys) on `shape`."""
    import numpy as np

    n = patches.shape[-1]
    half = n // 2
    weight = (np.abs(probe) ** 2).astype(np.float64)
    h, w = shape
    acc = np.zeros((h, w), dtype=np.complex128)
    wsum = np.zeros((h, w), dtype=np.float64)
    for patch, x, y in zip(patches, xs, ys):
        top = int(np.round(y - half))  # np.round: ties to even, as the native solver
        left = int(np.round(x - half))
        r0, c0 = max(top, 0), max(left, 0)
        r1, c1 = min(top + n, h), min(left + n, w)
        if r0 >= r1 or c0 >= c1:
            continue
        pr, pc = r0 - top, c0 - left
        sl = (slice(pr, pr + r1 - r0), slice(pc, pc + c1 - c0))
        acc[r0:r1, c0:c1] += weight[sl] * patch[sl]
        wsum[r0:r1, c0:c1] += weight[sl]
    out = np.ones((h, w), dtype=np.complex128)
    lit = wsum > 1e-12 * weight.max()
    out[lit] = acc[lit] / wsum[lit]
    return out.astype(np.complex64)


def reconstruct(model, cfg, path, args):
    import numpy as np
    from ptycho import loader, params
    from ptycho.workflows.components import load_data

    raw = load_data(path)
    n = int(cfg["N"])
    count = len(raw.xcoords)
    # One group seeded at every position: the whole scanned region is covered, and no
    # oversampling is needed.
    dset = raw.generate_grouped_data(
        n, K=args.neighbor_count, nsamples=count, gridsize=args.gridsize, seed=args.seed
    )
    container = loader.load(lambda: dset, raw.probeGuess, which=None, create_split=False)
    # What ptycho.nbutils.reconstruct_image does, in batches of 8: at gridsize 2 a Keras
    # batch of 16 or more comes back as a single patch (seen with the pinned snapshot).
    scale = params.params()["intensity_scale"]
    patches = np.asarray(
        model.predict([container.X * scale, container.local_offsets], batch_size=8, verbose=0)
    )
    groups = container.X.shape[0]
    if patches.shape[0] != groups or patches.size != groups * n * n:
        sys.exit(f"pinn_adapter: the model returned {patches.shape} for {groups} groups of "
                 f"{args.gridsize ** 2} (expected ({groups}, {n}, {n}, 1))")
    # (B, N, N, 1): one patch per group, centred at the group's mean position.
    patches = patches.reshape(groups, n, n)
    offsets = np.asarray(dset["coords_offsets"]).reshape(-1, 2)
    xs, ys = offsets[:, 0], offsets[:, 1]
    with np.load(path) as data:
        truth_shape = data["objectGuess"].shape
        probe = data["probeGuess"]
    print(f"pinn_adapter: {os.path.basename(path)}: {count} positions, {patches.shape[0]} "
          f"groups of {args.gridsize ** 2}, patches {patches.shape[1:]} -> object {truth_shape}",
          flush=True)
    return stitch(patches, xs, ys, probe, truth_shape)


def main():
    args = parse_args()
    import zipfile
    bundle = os.path.join(args.bundle_dir, "wts.h5.zip")
    try:
        with zipfile.ZipFile(bundle) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile) as e:
        sys.exit(f"pinn_adapter: cannot read the bundle {bundle} as a zip archive: {e}")
    if any(name.endswith(".pth") for name in names):
        # PyTorch bundles hold Lightning weights (model.pth), which PtychoPINN's TensorFlow
        # inference API cannot load; its PyTorch inference path needs its own scaling
        # contract and reassembly, which this adapter does not drive yet.
        sys.exit(
            "pinn_adapter: wts.h5.zip is a PyTorch bundle (model.pth inside); this adapter "
            "reconstructs TensorFlow bundles only, so the PyTorch job is trained but not "
            "scored (train with --backend tensorflow to score PtychoPINN)"
        )
    try:
        import numpy as np
        import ptycho  # noqa: F401
    except ImportError as e:
        sys.exit(
            f"pinn_adapter: cannot import PtychoPINN with {sys.executable}: {e}; install it "
            "into this interpreter's environment or put its source on PYTHONPATH, or point "
            "$PTYCHO_PYTHON at an interpreter that has it"
        )
    from ptycho.workflows.components import load_inference_bundle
    import tensorflow as tf

    tf.random.set_seed(args.seed)
    np.random.seed(args.seed)
    model, cfg = load_inference_bundle(args.bundle_dir)
    from ptycho import params
    params.cfg["gridsize"] = args.gridsize
    objects = {}
    for split, path in (("train", args.train), ("test", args.test)):
        objects[f"{split}_object"] = reconstruct(model, cfg, path, args)
        if not np.all(np.isfinite(objects[f"{split}_object"])):
            sys.exit(f"pinn_adapter: the {split} reconstruction holds non-finite values")
    tmp = args.out + ".tmp.npz"
    np.savez(tmp, **objects)
    os.replace(tmp, args.out)
    print(f"pinn_adapter: wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
