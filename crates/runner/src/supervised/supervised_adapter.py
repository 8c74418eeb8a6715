"""dose-overlap's supervised-baseline adapter: trains PtychoPINN's supervised model
(`ptycho.baselines`, a PtychoNN-style U-Net with an amplitude and a phase decoder) on a job's
train split, infers both splits and stitches the patches onto objectGuess's grid.

Shipped inside the dose-overlap binary and written into each job's artifact dir beside
`pinn_adapter.py`, whose `stitch` it uses (so PtychoPINN and its supervised baseline are stitched
and scored alike); run there with $PTYCHO_PYTHON (or the trainer's interpreter). It imports
PtychoPINN at run time and copies none of its code: the model is `baselines.build_model`, the
training `baselines.train` (Adam, MAE on amplitude and phase, 5 % validation split,
ReduceLROnPlateau, EarlyStopping on the training loss with patience 3), with Keras's progress
printed once per epoch (verbose=2) instead of per step, so the job's log stays small.

Training pairs, as PtychoPINN's own comparison workflow builds them: inputs X are the split's
diffraction amplitudes normalised as `ptycho.raw_data.normalize_data` does (mean summed
intensity (N/2)^2, per split), targets the ground-truth object patches Y at each position
(amplitude and phase). Supervised means the truth of the TRAIN split is used; the test split is
only inferred. Gridsize: the supervised model is single-channel (PtychoPINN trains it on each
position alone); here each position is one sample whatever the job's gridsize.

Output: --out NPZ with `train_object` and `test_object` (complex64), written atomically; the
model's weights as `supervised.weights.h5` in --model-dir (the job's bundle); --facts JSON: epochs run,
loss history, devices, seed, times. Progress on stdout: Keras's `Epoch E/N` and loss lines.
"""

import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="training split NPZ (DATA-001, with Y)")
    p.add_argument("--test", required=True, help="test split NPZ (DATA-001)")
    p.add_argument("--out", required=True, help="NPZ to write (train_object, test_object)")
    p.add_argument("--model-dir", required=True, help="folder for supervised.weights.h5")
    p.add_argument("--facts", required=True, help="JSON to write")
    p.add_argument("--epochs", type=int, default=60, help="PtychoPINN's nepochs default: 60")
    p.add_argument("--batch-size", type=int, default=16, help="PtychoPINN's default: 16")
    p.add_argument("--n-filters-scale", type=int, default=2, help="PtychoPINN's default: 2")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    return p.parse_args()


def fail(msg, code=1):
    print("supervised_adapter: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(code)


def load_split(path, need_y):
    import numpy as np
    with np.load(path, allow_pickle=False) as d:
        if need_y and "Y" not in d.files:
            fail(f"{path} holds no Y (ground-truth patches): the supervised model needs them")
        x = d["diffraction"].astype(np.float64)
        out = dict(
            x=x,
            y=d["Y"].astype(np.complex64) if need_y else None,
            probe=d["probeGuess"],
            shape=d["objectGuess"].shape,
            xs=np.asarray(d["xcoords"], np.float64),
            ys=np.asarray(d["ycoords"], np.float64),
        )
    n = x.shape[-1]
    if n % 8:
        fail(f"{path}: patterns of {n} px: the U-Net's three 2x poolings need N divisible by 8")
    # ptycho.raw_data.normalize_data: mean over patterns of the summed intensity = (N/2)^2.
    mean_sum = float(np.mean(np.sum(x ** 2, axis=(1, 2))))
    if not mean_sum > 0:
        fail(f"{path}: the diffraction patterns hold no signal")
    norm = np.sqrt((n / 2) ** 2 / mean_sum)
    out["X"] = (norm * x).astype(np.float32)[..., None]
    out["norm"] = float(norm)
    return out


def write_atomic(path, write):
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       "." + os.path.basename(path) + ".tmp-" + str(os.getpid()))
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    args = parse_args()
    if args.epochs < 1 or args.batch_size < 1:
        fail("--epochs and --batch-size must be at least 1", 2)
    try:
        import numpy as np
        import tensorflow as tf
        from ptycho import params
    except ImportError as e:
        fail(f"cannot import PtychoPINN with {sys.executable}: {e}; point $PTYCHO_PYTHON at an "
             "interpreter that has it (scripts/setup-ptychopinn-venv.sh)")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pinn_adapter import stitch

    gpus = tf.config.list_physical_devices("GPU")
    if args.device == "gpu" and not gpus:
        fail("--accelerator gpu, but TensorFlow sees no GPU "
             f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})", 3)
    device = "gpu" if gpus else "cpu"
    params.cfg["n_filters_scale"] = args.n_filters_scale
    params.cfg["nepochs"] = args.epochs
    params.cfg["batch_size"] = args.batch_size
    tf.keras.utils.set_random_seed(args.seed)
    # Imported after the params: baselines reads n_filters_scale when imported.
    from ptycho import baselines
    baselines.n_filters_scale = args.n_filters_scale
    print(f"supervised_adapter: TensorFlow {tf.__version__} on {device} "
          f"({len(gpus)} GPU(s) seen)", flush=True)

    train = load_split(args.train, need_y=True)
    test = load_split(args.test, need_y=False)
    y_i = np.abs(train["y"])[..., None].astype(np.float32)
    y_phi = np.angle(train["y"])[..., None].astype(np.float32)

    model = baselines.build_model(train["X"], y_i, y_phi)
    fit = model.fit

    def fit_once_per_epoch(*a, **kw):
        # baselines.train asks for a progress bar per step (verbose=1); one line per epoch
        # says the same to a log.
        kw["verbose"] = 2
        return fit(*a, **kw)

    model.fit = fit_once_per_epoch
    t0 = time.perf_counter()
    model, history = baselines.train(train["X"], y_i, y_phi, model)
    train_s = time.perf_counter() - t0
    losses = [float(v) for v in history.history.get("loss", [])]
    val = [float(v) for v in history.history.get("val_loss", [])]
    if not losses or not all(np.isfinite(losses)):
        fail(f"training diverged or ran no epoch (loss history {losses[-5:]})")
    os.makedirs(args.model_dir, exist_ok=True)
    # The weights (what `baselines.build_model` needs to predict again), without the
    # optimiser's state: a third of a full `.keras` file.
    model_path = os.path.join(args.model_dir, "supervised.weights.h5")
    tmp_model = os.path.join(args.model_dir, f".supervised.tmp-{os.getpid()}.weights.h5")
    model.save_weights(tmp_model)
    os.replace(tmp_model, model_path)

    objects = {}
    t1 = time.perf_counter()
    for label, split in (("train", train), ("test", test)):
        amp, phase = model.predict(split["X"], batch_size=args.batch_size, verbose=0)
        patches = (amp[..., 0] * np.exp(1j * phase[..., 0])).astype(np.complex64)
        obj = stitch(patches, split["xs"], split["ys"], split["probe"], split["shape"])
        if not np.all(np.isfinite(obj)):
            fail(f"the {label} reconstruction holds non-finite values")
        objects[label + "_object"] = obj
    infer_s = time.perf_counter() - t1
    write_atomic(args.out, lambda f: np.savez(f, **objects))
    facts = {
        "model": "ptycho.baselines (supervised U-Net: build_model, train)",
        "tensorflow_version": tf.__version__,
        "device": device,
        "gpus_seen": len(gpus),
        "epochs_asked": args.epochs,
        "epochs_run": len(losses),
        "early_stopped": len(losses) < args.epochs,
        "batch_size": args.batch_size,
        "n_filters_scale": args.n_filters_scale,
        "seed": args.seed,
        "loss": losses,
        "val_loss": val,
        "train_s": train_s,
        "infer_s": infer_s,
        "x_norm": {"train": train["norm"], "test": test["norm"]},
        "train_positions": int(train["X"].shape[0]),
        "test_positions": int(test["X"].shape[0]),
    }
    write_atomic(args.facts, lambda f: f.write(json.dumps(facts, indent=2).encode()))
    print(f"supervised_adapter: {len(losses)} epoch(s) in {train_s:.1f} s, inference "
          f"{infer_s:.1f} s; wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
