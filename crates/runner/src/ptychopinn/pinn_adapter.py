"""dose-overlap's PtychoPINN inference adapter: reconstructs both splits of a job with its trained
bundle, through PtychoPINN's own inference API, and stitches the patches onto objectGuess's grid.

Shipped inside the dose-overlap binary and written into each job's artifact dir; run there with
$PTYCHO_PYTHON (or the trainer's interpreter). It imports PtychoPINN at run time and copies none
of its code. Output: one NPZ with `train_object` and `test_object` (complex64, the shape of each
split's objectGuess), written atomically. Patch placement follows the native solver's rule:
top-left corner round(c - N/2), ties to even; patches are averaged with the probe's |P|^2 as
weight, and pixels no patch reaches are 1 (the native solver's flat start).

Both backends' bundles are read: a TensorFlow bundle through `ptycho.workflows.components.
load_inference_bundle` (Keras `diffraction_to_obj`, one patch per group at the group's centre);
a PyTorch bundle (Lightning weights, `diffraction_to_obj/model.pth`) through
`ptycho_torch.workflows.components.load_inference_bundle_torch` and the Lightning module's
`forward_predict` (one patch per position of each group, at that position). Either way the
patches go through the same `stitch`, so both backends are scored alike.
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
    p.add_argument("--facts", help="JSON to write: the bundle's intensity scale and its start")
    return p.parse_args()


def tf_intensity_scale():
    """The TensorFlow bundle's intensity scale (saved from the trained log_scale variable by
    ptycho.model_manager.save) beside its start, sqrt(nphotons) / (N / 2)
    (ptycho.train_pinn.calculate_intensity_scale), read from the loaded bundle's params."""
    import math
    from ptycho import params
    p = params.params()
    return {
        "initial": math.sqrt(float(p["nphotons"])) / (float(p["N"]) / 2),
        "trained": float(p["intensity_scale"]),
        "trainable": bool(p.get("intensity_scale.trainable", True)),
    }


def torch_intensity_scale(model, model_config, params_dict):
    """The PyTorch bundle's scale: exp of its `log_scale` parameter when the model has one
    (trainable), else the configured value, beside the configured start."""
    import math
    initial = getattr(model_config, "intensity_scale", None)
    if initial is None:
        initial = params_dict.get("intensity_scale")
    trainable = bool(getattr(model_config, "intensity_scale_trainable", False))
    trained = initial
    named = getattr(model, "named_parameters", None)
    for name, value in (named() if callable(named) else []):
        if name.split(".")[-1] == "log_scale":
            trained = math.exp(float(value.detach().cpu().reshape(-1)[0]))
    if initial is None:
        return None
    return {"initial": float(initial), "trained": float(trained), "trainable": trainable}


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


def torch_group_inputs(dset, probe_guess, n, channels):
    """The inputs PtychoPINN's PyTorch trainer fed the model, for one split's groups (NumPy).

    Its Lightning dataset (ptycho_torch.workflows.components._build_lightning_dataloaders) takes
    the container's X, which is `X_full` of RawData.generate_grouped_data (amplitudes normalised
    by ptycho.raw_data.normalize_data: mean sum of squares (N/2)^2), channel-last -> channel-
    first; `coords_relative` (B, 1, 2, C) -> (B, C, 1, 2); the probe as (C, 1, N, N) per sample;
    and an input scale of 1 (the container has no rms_scaling_constant). That is also what
    ptycho_torch.inference feeds it (raw diffraction times _training_normalization_scale, the
    same normalisation). A learned or parity scale is applied inside the model.
    """
    import numpy as np

    x = np.ascontiguousarray(np.asarray(dset["X_full"], dtype=np.float32).transpose(0, 3, 1, 2))
    positions = np.asarray(dset["coords_relative"], dtype=np.float32).transpose(0, 3, 1, 2)
    positions = np.ascontiguousarray(positions)
    if x.shape[1] != channels or x.shape[2:] != (n, n):
        sys.exit(f"pinn_adapter: grouped diffraction {x.shape} does not match the bundle's "
                 f"model ({channels} channels of {n}x{n})")
    probe = np.asarray(probe_guess, dtype=np.complex64).reshape(1, 1, n, n)
    return x, positions, np.ascontiguousarray(np.broadcast_to(probe, (channels, 1, n, n)))


def torch_reconstruct(model, n, path, args):
    """One split through the PyTorch model: (B * C, N, N) patches, each at its own position."""
    import numpy as np
    import torch
    from ptycho.workflows.components import load_data

    raw = load_data(path)
    count = len(raw.xcoords)
    channels = args.gridsize ** 2
    # One group seeded at every position, as the TensorFlow path (and training with this
    # toolkit's --n_groups) does.
    dset = raw.generate_grouped_data(
        n, K=args.neighbor_count, nsamples=count, gridsize=args.gridsize, seed=args.seed
    )
    x, positions, probe = torch_group_inputs(dset, raw.probeGuess, n, channels)
    groups = x.shape[0]
    batch = 16  # the trainer's batch size
    out = []
    with torch.no_grad():
        for start in range(0, groups, batch):
            b = len(x[start:start + batch])
            pred = model.forward_predict(
                torch.from_numpy(x[start:start + batch]),
                torch.from_numpy(positions[start:start + batch]),
                torch.from_numpy(np.ascontiguousarray(np.broadcast_to(probe, (b,) + probe.shape))),
                torch.ones((b, 1, 1, 1), dtype=torch.float32),
            )
            out.append(np.asarray(pred.detach().cpu().numpy()))
    patches = np.concatenate(out) if out else np.zeros((0, channels, n, n), np.complex64)
    if patches.shape != (groups, channels, n, n) or not np.iscomplexobj(patches):
        sys.exit(f"pinn_adapter: the model returned {patches.shape} ({patches.dtype}) for "
                 f"{groups} groups of {channels} (expected complex ({groups}, {channels}, {n}, "
                 f"{n}))")
    bad = int(np.count_nonzero(~np.isfinite(patches).all(axis=(2, 3))))
    if bad:
        sys.exit(f"pinn_adapter: {os.path.basename(path)}: the model returned non-finite patches "
                 f"({bad} of {groups * channels}): the trained weights are not "
                 "finite (a training loss of inf or nan in lightning_logs/*/metrics.csv says "
                 "the training diverged)")
    # Channel c of a group is the object at that group's c-th position (PtychoPINN's
    # reassembly shifts it by the position minus the group's centre), so each patch is placed
    # at its own position; positions in several groups are averaged by stitch().
    coords = np.asarray(dset["coords_nn"], dtype=np.float64)  # (B, 1, 2, C)
    xs = coords[:, 0, 0, :].reshape(-1)
    ys = coords[:, 0, 1, :].reshape(-1)
    patches = patches.reshape(groups * channels, n, n)
    with np.load(path) as data:
        truth_shape = data["objectGuess"].shape
        probe_guess = data["probeGuess"]
    amp = np.abs(patches)
    phase = np.angle(patches)
    print(f"pinn_adapter: {os.path.basename(path)}: {count} positions, {groups} groups of "
          f"{channels}, {patches.shape[0]} patches {patches.shape[1:]} -> object {truth_shape}; "
          f"patch |O| mean {amp.mean():.4g} (spread over patches {amp.mean(axis=(1, 2)).std():.3g}), "
          f"phase std {phase.std():.3g}", flush=True)
    return stitch(patches, xs, ys, probe_guess, truth_shape)


def torch_objects(args):
    """Both splits' objects from a PyTorch bundle, through PtychoPINN's PyTorch inference API."""
    try:
        import numpy as np
        import torch
        import ptycho_torch  # noqa: F401
    except ImportError as e:
        sys.exit(
            f"pinn_adapter: wts.h5.zip is a PyTorch bundle, and {sys.executable} cannot import "
            f"PtychoPINN's PyTorch backend: {e}; point $PTYCHO_PYTHON at the interpreter of "
            "its PyTorch environment (scripts/setup-ptychopinn-venv.sh --torch)"
        )
    from ptycho_torch.workflows.components import load_inference_bundle_torch

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    models, params_dict = load_inference_bundle_torch(args.bundle_dir)
    model = models["diffraction_to_obj"]
    if not hasattr(model, "forward_predict"):
        sys.exit(f"pinn_adapter: the PyTorch bundle's diffraction_to_obj is a "
                 f"{type(model).__name__}, not a trained Lightning module")
    model.to("cpu")
    model.eval()
    model_config = getattr(model, "model_config", None)
    data_config = getattr(model, "data_config", None)
    try:
        from ptycho_torch.scaling_contract import (
            CI_SCALE_CONTRACT, ci_scaling_active, resolve_scale_contract)
    except ImportError:
        pass
    else:
        if model_config is not None and ci_scaling_active(model_config):
            profile = resolve_scale_contract(
                getattr(data_config, "scale_contract_version", None),
                getattr(data_config, "measurement_domain", None),
            )
            if profile.version == CI_SCALE_CONTRACT:
                sys.exit("pinn_adapter: the bundle was trained with the ci_intensity_v2 scale "
                         "contract, whose patches PtychoPINN defines only through its own "
                         "barycentric VarPro reassembly; this adapter scores legacy-scaled "
                         "bundles only")
    n = int(getattr(data_config, "N", 0) or params_dict.get("N"))
    channels = int(getattr(data_config, "C", args.gridsize ** 2))
    if channels != args.gridsize ** 2:
        sys.exit(f"pinn_adapter: the bundle's model takes {channels} channels per group, not "
                 f"gridsize {args.gridsize}'s {args.gridsize ** 2}")
    FACTS["intensity_scale"] = torch_intensity_scale(model, model_config, params_dict)
    print(f"pinn_adapter: PyTorch bundle: N={n}, C={channels}, "
          f"mode={getattr(model_config, 'mode', '?')}, "
          f"object_big={getattr(model_config, 'object_big', '?')}, "
          f"intensity_scale={params_dict.get('intensity_scale')}", flush=True)
    return {
        f"{split}_object": torch_reconstruct(model, n, path, args)
        for split, path in (("train", args.train), ("test", args.test))
    }


def tf_objects(args):
    """Both splits' objects from a TensorFlow bundle, through PtychoPINN's inference API."""
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
    try:
        FACTS["intensity_scale"] = tf_intensity_scale()
    except (KeyError, TypeError, ValueError) as e:
        print(f"pinn_adapter: the bundle's intensity scale cannot be read: {e!r}", flush=True)
    params.cfg["gridsize"] = args.gridsize
    return {
        f"{split}_object": reconstruct(model, cfg, path, args)
        for split, path in (("train", args.train), ("test", args.test))
    }


# What the adapter learnt about the bundle, for --facts.
FACTS = {"intensity_scale": None}


def main():
    args = parse_args()
    import zipfile
    bundle = os.path.join(args.bundle_dir, "wts.h5.zip")
    try:
        with zipfile.ZipFile(bundle) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile) as e:
        sys.exit(f"pinn_adapter: cannot read the bundle {bundle} as a zip archive: {e}")
    # A PyTorch bundle holds Lightning weights (diffraction_to_obj/model.pth); PtychoPINN's
    # TensorFlow inference API cannot load them.
    pytorch = any(name.endswith(".pth") for name in names)
    objects = torch_objects(args) if pytorch else tf_objects(args)
    import numpy as np
    for key, obj in objects.items():
        if not np.all(np.isfinite(obj)):
            sys.exit(f"pinn_adapter: the {key.split('_')[0]} reconstruction holds non-finite "
                     "values")
    tmp = args.out + ".tmp.npz"
    np.savez(tmp, **objects)
    os.replace(tmp, args.out)
    print(f"pinn_adapter: wrote {args.out}", flush=True)
    if args.facts:
        import json
        scale = FACTS["intensity_scale"]
        if scale is not None:
            print(f"pinn_adapter: intensity scale: start {scale['initial']!r}, bundle "
                  f"{scale['trained']!r}, trainable {scale['trainable']}", flush=True)
        with open(args.facts + ".tmp", "w") as f:
            json.dump(FACTS, f)
        os.replace(args.facts + ".tmp", args.facts)


if __name__ == "__main__":
    main()
